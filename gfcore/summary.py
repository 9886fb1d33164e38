"""Result tables of parent runs (pipeline, sweep, compare): one CSV and one JSON artifact each, the figures of
a benchmarked variant, and its accuracy-vs-latency chart."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def write_table(rows: list[dict[str, Any]], stem: Path) -> tuple[Path, Path]:
    """`stem`.csv and `stem`.json; columns in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = stem.with_suffix(".csv"), stem.with_suffix(".json")
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: _cell(row.get(c)) for c in columns} for row in rows)
    json_path.write_text(json.dumps(rows, indent=2, default=str))
    return csv_path, json_path


FIGURES = ("det.mAP50", "det.mAP50_95", "sys.latency_p50_ms", "sys.model_size_mb", "sys.throughput_ips", "mot.hota",
           "mot.idf1")


def figures(metrics: dict[str, float]) -> dict[str, float | None]:
    """A variant's figures from its run: an infer run's own, or a quant run's `quantized.*` copies."""
    return {key: metrics.get(key, metrics.get(f"quantized.{key}")) for key in FIGURES}


def log_accuracy_vs_latency(client: Any, run_id: str, rows: list[dict[str, Any]], out: Path) -> None:
    """The chart of the rows that have both a det.mAP50 and a batch-1 latency."""
    import math

    from gfcore.plots import accuracy_vs_latency

    points = [(r["variant"], r["sys.latency_p50_ms"], r["det.mAP50"]) for r in rows
              if r.get("sys.latency_p50_ms") is not None and r.get("det.mAP50") is not None
              and math.isfinite(r["det.mAP50"])]
    if points:
        client.log_artifact(run_id, str(accuracy_vs_latency(points, out)), "plots")


def log_table(client: Any, run_id: str, rows: list[dict[str, Any]], stem: Path, artifact_dir: str) -> None:
    for path in write_table(rows, stem):
        client.log_artifact(run_id, str(path), artifact_dir)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value
