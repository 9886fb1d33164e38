"""What a challenge shows: one row per compared figure, both models' values, the difference with its 95 % interval,
the tolerance and what the verdict read; in the run's description, as an MLflow table, CSV / JSON, on the terminal,
and as a chart of the differences with error bars."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gfcore.core.vocabulary import (
    DET_F1,
    DET_MAP50,
    DET_MAP50_95,
    DET_OP,
    DET_PRECISION,
    DET_RECALL,
    MOT,
    MOT_HOTA,
    MOT_IDF1,
    NOTE_TAG,
    SYS_LATENCY_P50_MS,
    SYS_LATENCY_P95_MS,
    SYS_MODEL_SIZE_MB,
)
from gfcore.jobs.plots import differences_with_intervals
from gfcore.mot import FALSE_ALARMS_PER_1K_FRAMES
from gfcore.orchestration.results import write_table
from gfcore.verdicts.bootstrap import Interval
from gfcore.verdicts.decide import Reading

if TYPE_CHECKING:
    from pathlib import Path

    from gfcore.config.schema import Config

HEADLINE = (DET_MAP50, DET_MAP50_95, DET_PRECISION, DET_RECALL, DET_F1, f"{DET_OP}precision", f"{DET_OP}recall",
            f"{DET_OP}missed")
LATENCY = (SYS_LATENCY_P50_MS, SYS_LATENCY_P95_MS)
TRACKING = (MOT_HOTA, MOT_IDF1, f"{MOT}{FALSE_ALARMS_PER_1K_FRAMES}")
DIFFERENCE, DETECTABLE = "difference [95 % CI]", "smallest detectable"


@dataclass
class ChallengeResult:
    model: str
    candidate: str
    champion: str | None
    verdict: str
    reasons: list[str]
    run_id: str
    figures: dict[str, dict[str, float]] = field(default_factory=dict)  # role -> metric -> value
    deltas: dict[str, float] = field(default_factory=dict)  # candidate - champion
    intervals: dict[str, Interval] = field(default_factory=dict)  # figure -> delta (latency: ratio) interval
    readings: list[Reading] = field(default_factory=list)  # the figures the verdict read
    table: str = ""  # the result table, for the terminal
    bootstrap_s: float = 0.0  # the intervals' share of the wall time
    wall_s: float = 0.0


def figure_order(result: ChallengeResult, safety_classes: list[str]) -> list[str]:
    """Headline det.*, the operating point per class (safety classes first), latency, size, tracking."""
    names = list(result.figures.get("champion") or result.figures["candidate"])
    classes = sorted({k[len(f"{DET_OP}recall."):] for k in names if k.startswith(f"{DET_OP}recall.")},
                     key=lambda c: (c not in safety_classes, c))
    per_class = [f"{DET_OP}recall.{c}" for c in classes]
    order = [*HEADLINE, *per_class, *LATENCY, SYS_MODEL_SIZE_MB, *TRACKING]
    return [k for k in order if k in result.figures["candidate"]]


def rows(result: ChallengeResult, safety_classes: list[str]) -> list[dict[str, Any]]:
    """One row per figure; the models' columns are named after them (`champion v1`, `candidate v2`)."""
    read = {r.figure: r for r in result.readings}
    champion, candidate = f"champion v{result.champion}", f"candidate v{result.candidate}"
    out = []
    for figure in figure_order(result, safety_classes):
        cand = result.figures["candidate"].get(figure)
        champ = (result.figures.get("champion") or {}).get(figure)
        interval, reading = result.intervals.get(figure), read.get(figure)
        row = {"figure": figure, **({champion: _num(champ, figure)} if result.champion else {}),
               candidate: _num(cand, figure),
               DIFFERENCE: "", "tolerance": "", DETECTABLE: "", "verdict reads": ""}
        if interval is not None:
            ratio = figure in LATENCY
            fmt = "{:+.0f}" if figure.endswith("missed") else "{:+.3f}"
            row[DIFFERENCE] = (
                f"x{interval.point:.2f} [{interval.low:.2f}, {interval.high:.2f}]" if ratio else
                f"{fmt.format(interval.point)} [{fmt.format(interval.low)}, {fmt.format(interval.high)}]")
            if interval.mde is not None and math.isfinite(interval.mde):
                row[DETECTABLE] = f"{interval.mde:.0%}" if ratio else f"{interval.mde:.3f}"
        elif cand is not None and champ is not None:
            d = cand - champ
            row[DIFFERENCE] = f"{d:+.0f}" if float(d).is_integer() else f"{d:+.1f}" if figure.endswith(
                ("_ms", "_mb")) else f"{d:+.3f}"
        if reading is not None:
            row["tolerance"] = reading.tolerance_text()
            row["verdict reads"] = reading.status()
        out.append(row)
    return out


def markdown(title: str, sentence: str, table: list[dict[str, Any]], bootstrap: str) -> str:
    cols = _columns(table)
    lines = [f"### {title}", "", sentence, "", "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if c in ("figure", "verdict reads") else "--:" for c in cols) + "|"]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in table]
    lines += ["", f"Intervals: {bootstrap}. Latency differences are ratios (candidate / champion); those of mot.* "
              "are the range over the sequences. `verdict reads`: better or worse when the whole interval lies beyond "
              "the tolerance, within when its bad end stays inside it, unclear otherwise."]
    return "\n".join(lines)


def text(title: str, table: list[dict[str, Any]]) -> str:
    """The table fitted to its content, for the terminal (the command prints the verdict once, after it)."""
    cols = _columns(table)
    grid = [cols] + [[str(r[c]) for c in cols] for r in table]
    widths = [max(len(line[i]) for line in grid) for i in range(len(cols))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in grid]
    if any(r["figure"].startswith(MOT) and "[" in str(r.get(DIFFERENCE, "")) for r in table):
        lines.append("(mot.*: the range over the sequences, too few for an interval)")
    return "\n".join([title, "", *lines])


def report(result: ChallengeResult, cfg: Config, work: Path, per_sequence: dict[str, Any]) -> None:
    """The description, table files, MLflow table and chart of the challenge run; `result.table` for the
    terminal."""
    import mlflow
    import pandas as pd

    client = mlflow.MlflowClient()
    run = client.get_run(result.run_id)
    label = {role: f"{role} v{getattr(result, role)}" for role in ("candidate", "champion") if getattr(result, role)}
    title = f"Challenge of {result.model}: {' vs '.join(label.values())}"
    sentence = f"Verdict: **{result.verdict}**. " + "; ".join(result.reasons) + "."
    ordered = rows(result, list(cfg.task.safety_classes))
    bootstrap = run.data.tags.get("challenge.bootstrap", "")
    client.set_tag(result.run_id, NOTE_TAG, markdown(title, sentence, ordered, bootstrap))
    for path in write_table(ordered, work / "summary" / "challenge"):
        client.log_artifact(result.run_id, str(path), "summary")
    client.log_table(result.run_id, pd.DataFrame(ordered), "summary/challenge_table.json")
    result.table = text(title, ordered)
    if cfg.tracking.log_plots and result.intervals:
        chart = differences_with_intervals(result.intervals, {r.figure: r for r in result.readings},
                                           per_sequence, work / "plots" / "challenge.png",
                                           f"{title}: {result.verdict}")
        client.log_artifact(result.run_id, str(chart), "plots")


def _columns(table: list[dict[str, Any]]) -> list[str]:
    """Every column some row has a value in."""
    keys = list(table[0]) if table else []
    return [k for k in keys if any(str(r.get(k, "")) not in ("", "–") for r in table) or k == "figure"]


def _num(v: float | None, figure: str = "") -> str:
    """The rounding rule of the tables (gfcore.cli.tables): counts whole, ms and MB 1 decimal, rates 3."""
    if v is None or not math.isfinite(v):
        return "–"
    if figure.endswith(("_ms", "_mb")):
        return f"{v:.1f}"
    return f"{v:.0f}" if float(v).is_integer() and abs(v) >= 1 else f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
