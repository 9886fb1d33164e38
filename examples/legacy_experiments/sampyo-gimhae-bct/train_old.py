"""The 2023 trainer: needs the old NAS mount, which is gone."""
import sys

print("loading /mnt/old_nas/bct/data.yaml ...", flush=True)
print("FileNotFoundError: /mnt/old_nas/bct/data.yaml", file=sys.stderr, flush=True)
sys.exit(3)
