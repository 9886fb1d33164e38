"""Result tables of parent runs (pipeline, sweep, compare): one CSV and one JSON artifact each."""

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


def log_table(client: Any, run_id: str, rows: list[dict[str, Any]], stem: Path, artifact_dir: str) -> None:
    for path in write_table(rows, stem):
        client.log_artifact(run_id, str(path), artifact_dir)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value
