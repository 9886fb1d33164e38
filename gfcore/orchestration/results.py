"""Result tables of parent runs (pipeline, sweep, compare), as a person meets them.

One table, four places: the run's description (Markdown, what the MLflow UI shows first), an MLflow table
(`mlflow.log_table`, the UI's table view), CSV and JSON artifacts, and the terminal at the end of the
command. The best row's figures are the parent's `best.*` metrics, so the runs table shows them.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gfcore.core.vocabulary import (
    BEST,
    DET_MAP50,
    DET_MAP50_95,
    MOT_HOTA,
    MOT_IDF1,
    NOTE_TAG,
    QUANTIZED,
    REGISTERED_MODEL,
    REGISTERED_VERSION,
    SYS_LATENCY_P50_MS,
    SYS_LATENCY_P95_MS,
    SYS_MODEL_SIZE_MB,
    SYS_THROUGHPUT_IPS,
)
from gfcore.jobs.plots import accuracy_vs_latency
from gfcore.tracking.naming import sanitize_metric_name

# A variant's figures, as every train, quant and infer run records them.
FIGURES = (DET_MAP50, DET_MAP50_95, SYS_LATENCY_P50_MS, SYS_LATENCY_P95_MS, SYS_MODEL_SIZE_MB, SYS_THROUGHPUT_IPS,
           MOT_HOTA, MOT_IDF1)

# The columns a person reads: (row key, header, format).
COLUMNS = (("variant", "variant", "{}"), (DET_MAP50, "mAP50", "{:.3f}"), (DET_MAP50_95, "mAP50-95", "{:.3f}"),
           (SYS_LATENCY_P50_MS, "p50 ms", "{:.2f}"), (SYS_LATENCY_P95_MS, "p95 ms", "{:.2f}"),
           (SYS_MODEL_SIZE_MB, "size MB", "{:.1f}"), (MOT_HOTA, "HOTA", "{:.3f}"),
           ("registered_model", "registered model", "{}"), ("registered_version", "version", "{}"))


def figures(metrics: dict[str, float]) -> dict[str, float | None]:
    """A variant's figures from its run (runs recorded before the variant's own names: `quantized.*`)."""
    return {key: metrics.get(key, metrics.get(f"{QUANTIZED}{key}")) for key in FIGURES}


def variant_row(label: str, run: Any, registered_by: Any = None) -> dict[str, Any]:
    """One table row: the run's figures and the registered model version it is (from `registered_by`, the train
    or quant run that registered it, else the run itself)."""
    tags = (registered_by or run).data.tags
    return {"variant": label, **figures(run.data.metrics), "registered_model": tags.get(REGISTERED_MODEL),
            "registered_version": tags.get(REGISTERED_VERSION), "run_id": run.info.run_id}


def value(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def pick_best(rows: list[dict[str, Any]], metric: str, maximize: bool = True) -> dict[str, Any] | None:
    """The row with the best `metric`; ties go to the lower batch-1 latency."""
    scored = [r for r in rows if value(r, metric) is not None]
    if not scored:
        return None
    sign = 1 if maximize else -1
    return max(scored, key=lambda r: (sign * r[metric], -(value(r, SYS_LATENCY_P50_MS) or math.inf)))


@dataclass
class Report:
    """What a parent says about its children: the table, the best row and one sentence about it."""

    title: str
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    sentence: str
    stem: str  # file stem of the CSV / JSON / MLflow table
    artifact_dir: str = "summary"

    def markdown(self) -> str:
        cols = _columns(self.rows)
        lines = [f"### {self.title}", "", self.sentence, "",
                 "| " + " | ".join(h for _, h, _ in cols) + " |",
                 "|" + "|".join("---" if k in ("variant", "registered_model") else "--:" for k, _, _ in cols) + "|"]
        for row in self.rows:
            cells = [_cell(row, k, f) for k, _, f in cols]
            if row is self.best:
                cells[0] = f"**{cells[0]}**"
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Latency: batch 1 on the evaluation split (each run's tag `sys.latency_protocol` says how); "
                  "figures comparable where the runs' `eval.split` and `eval.dataset_digest` match."]
        return "\n".join(lines)

    def text(self) -> str:
        """The same table for the terminal."""
        cols = _columns(self.rows)
        grid = [[h for _, h, _ in cols]] + [[_cell(r, k, f) for k, _, f in cols] for r in self.rows]
        widths = [max(len(line[i]) for line in grid) for i in range(len(cols))]
        out = [self.title, ""]
        for n, line in enumerate(grid):
            marker = "* " if n and self.rows[n - 1] is self.best else "  "
            out.append(marker + "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
        return "\n".join([*out, "", self.sentence.replace("**", "")])

    def publish(self, client: Any, run_id: str, work: Path, echo: bool = True) -> None:
        """Description, MLflow table, CSV / JSON, `best.*` metrics; then print the table (unless `echo` is off)."""
        import pandas as pd
        from mlflow.entities import Metric

        client.set_tag(run_id, NOTE_TAG, self.markdown())
        for path in write_table(self.rows, work / self.artifact_dir / self.stem):
            client.log_artifact(run_id, str(path), self.artifact_dir)
        frame = pd.DataFrame([{k: _plain(v) for k, v in r.items()} for r in self.rows])
        client.log_table(run_id, frame, f"{self.artifact_dir}/{self.stem}_table.json")
        if self.best is not None:
            import time

            now = int(time.time() * 1000)
            best = [Metric(sanitize_metric_name(f"{BEST}{k}"), float(self.best[k]), now, 0) for k in FIGURES
                    if value(self.best, k) is not None]
            client.log_batch(run_id, metrics=best)
        if echo:
            print("\n" + self.text() + "\n", flush=True)


def _columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """COLUMNS, less those no row has a value for, plus any other columns the rows carry (e.g. a sweep's
    params, status)."""
    extra = [k for r in rows for k in r if k not in {c for c, _, _ in COLUMNS} and k not in FIGURES
             and k not in ("run_id", "source_run_id", "infer_run_id", "job", "params")]
    extra = list(dict.fromkeys(extra))
    cols = [c for c in COLUMNS if any(r.get(c[0]) not in (None, "") for r in rows)]
    return cols[:1] + [(k, k, "{}") for k in extra] + cols[1:]


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    v = row.get(key)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, (int, float)) and fmt == "{}":
        return f"{v:.4g}"
    return fmt.format(v)


def _plain(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


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
        writer.writerows({c: _csv_cell(row.get(c)) for c in columns} for row in rows)
    json_path.write_text(json.dumps(rows, indent=2, default=str))
    return csv_path, json_path


def log_accuracy_vs_latency(client: Any, run_id: str, rows: list[dict[str, Any]], out: Path) -> None:
    """The chart of the rows that have both a det.mAP50 and a batch-1 latency."""
    points = [(r["variant"], r[SYS_LATENCY_P50_MS], r[DET_MAP50]) for r in rows
              if value(r, SYS_LATENCY_P50_MS) is not None and value(r, DET_MAP50) is not None]
    if points:
        client.log_artifact(run_id, str(accuracy_vs_latency(points, out)), "plots")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value
