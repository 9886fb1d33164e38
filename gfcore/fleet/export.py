"""The fleet's runs as tables for BI tools: one row per run (Parquet or CSV through pandas / pyarrow), and with
`history` a long table of every per-step metric value. Read straight from MLflow, paged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gfcore.errors import ConfigError
from gfcore.fleet.queries import client, iter_runs, site_experiments

FIGURE_PREFIXES = ("det.", "sys.", "mot.", "val.", "original.", "comparison.", "best.")
RUN_COLUMNS = ("run_id", "run_name", "experiment", "customer", "region", "plant", "zone", "task", "exp_type",
               "architecture", "backend", "precision", "entry_point", "status", "start_time", "end_time",
               "duration_s", "eval_split", "eval_dataset_digest", "registered_model", "registered_version",
               "source_run_id", "error")


def export(out_dir: Path, fmt: str = "parquet", history: bool = False, customer: str | None = None) -> list[Path]:
    """runs.{parquet,csv} (and history.{parquet,csv}) in `out_dir`; returns the files written."""
    import pandas as pd

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format {fmt}: use parquet or csv.")
    c = client()
    experiments = site_experiments(c, customer)
    by_id = {v: k for k, v in experiments.items()}
    rows, histories = [], []
    for run in iter_runs(c, list(by_id), ""):
        rows.append(run_row(run, by_id[run.info.experiment_id]))
        if history:
            histories += _history(c, run)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = pd.DataFrame(rows, columns=_columns(rows))
    for col in ("start_time", "end_time"):
        runs[col] = pd.to_datetime(runs[col], unit="ms", utc=True)
    written = [_write(runs, out_dir / f"runs.{fmt}", fmt)]
    if history:
        frame = pd.DataFrame(histories, columns=["run_id", "key", "step", "timestamp", "value"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
        written.append(_write(frame, out_dir / f"history.{fmt}", fmt))
    return written


def run_row(run: Any, experiment: str) -> dict[str, Any]:
    tags, params = run.data.tags, run.data.params
    end = run.info.end_time
    row = {
        "run_id": run.info.run_id, "run_name": run.info.run_name, "experiment": experiment,
        "customer": tags.get("site.customer"), "region": tags.get("site.region"), "plant": tags.get("site.plant"),
        "zone": tags.get("site.zone"), "task": tags.get("task.type"), "exp_type": tags.get("exp.type"),
        "architecture": tags.get("model.architecture"),
        "backend": tags.get("backend.name") or params.get("backend.name"),
        "precision": tags.get("backend.precision") or params.get("backend.precision"),
        "entry_point": tags.get("mlflow.project.entryPoint") or tags.get("exp.type"),
        "status": run.info.status, "start_time": run.info.start_time, "end_time": end,
        "duration_s": (end - run.info.start_time) / 1000 if end else None,
        "eval_split": tags.get("eval.split"), "eval_dataset_digest": tags.get("eval.dataset_digest"),
        "registered_model": tags.get("gf.registered_model"), "registered_version": tags.get("gf.registered_version"),
        "source_run_id": tags.get("source.run_id"), "error": tags.get("gf.error"),
    }
    row.update({k: v for k, v in sorted(run.data.metrics.items()) if k.startswith(FIGURE_PREFIXES)})
    return row


def _history(c: Any, run: Any) -> list[tuple]:
    out = []
    for key in run.data.metrics:
        if not key.startswith(FIGURE_PREFIXES + ("train.", "lr.")):
            continue
        out += [(run.info.run_id, key, m.step, m.timestamp, m.value)
                for m in c.get_metric_history(run.info.run_id, key)]
    return out


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    figures = sorted({k for r in rows for k in r if k not in RUN_COLUMNS})
    return [*RUN_COLUMNS, *figures]


def _write(frame: Any, path: Path, fmt: str) -> Path:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path
