"""Generated data is built once per settings into the cache, atomically: into a temporary folder that
is renamed into place, so parallel jobs (sweeps) never see a half-written folder."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from gfcore.core.errors import DataError

MANIFEST = "manifest.json"


def build_once(target: Path, build: Callable[[Path], dict], what: str) -> Path:
    """`target`, built by `build(tmp)` (which returns the manifest's content) unless a finished one exists."""
    if (target / MANIFEST).is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    except OSError as exc:
        raise DataError(f"could not write {what} under {target.parent}: {exc}. Set GF_CACHE_DIR (or "
                        "data.cache_dir) to a writable folder.") from exc
    try:
        manifest = build(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        try:
            tmp.rename(target)
        except OSError:
            if not (target / MANIFEST).is_file():  # lost a race only if the winner finished
                raise
    except OSError as exc:
        raise DataError(f"could not write {what} under {target.parent}: {exc}. Set GF_CACHE_DIR (or "
                        "data.cache_dir) to a writable folder.") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
