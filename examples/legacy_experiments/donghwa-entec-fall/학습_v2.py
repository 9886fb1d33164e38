# 넘어짐 감지 학습 v2 (hard-coded paths; run from this folder)
import csv
import math
import os

import yaml

CONFIG = "./config.yaml"
OUT_DIR = "./results"
PLOT_DIR = "./plots"

with open(CONFIG, encoding="utf-8") as fh:
    cfg = yaml.safe_load(fh)
os.makedirs(OUT_DIR, exist_ok=True)
os.makedirs(PLOT_DIR, exist_ok=True)

rows = []
for epoch in range(1, cfg["epochs"] + 1):
    loss = cfg["lr"] * 100 * math.exp(-epoch / 3)
    rows.append({"epoch": epoch, "loss": round(loss, 4)})
    print(f"epoch {epoch}/{cfg['epochs']} loss {loss:.4f}", flush=True)
with open(os.path.join(OUT_DIR, "metrics.csv"), "w", newline="") as fh:
    writer = csv.DictWriter(fh, fieldnames=["epoch", "loss"])
    writer.writeheader()
    writer.writerows(rows)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.plot([r["epoch"] for r in rows], [r["loss"] for r in rows])
plt.savefig(os.path.join(PLOT_DIR, "loss.png"))
print("완료")
