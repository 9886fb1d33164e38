"""A champion's figures beyond the fleet summary's fixed columns: those at the site's operating confidence
(`det.op.{precision,recall,f1,missed}`, pooled over classes and per class `det.op.recall.helmet`) and per-class AP
(`det.ap50_95.{class}`), as the champion's run recorded them on its evaluation split (docs/metrics.md); the grammar
of their names, which alert rules check (gfcore.automation.rules); and a "did you mean" for a name that is not one.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

from gfcore.core.vocabulary import DET, DET_OP, TASK_CLASSES

DET_AP_CLASS = f"{DET}ap50_95."  # + class: AP50-95 of that class
OP_STATS = ("precision", "recall", "f1", "missed")  # det.op.{stat}[.{class}]
FORMS = f"{DET_OP}{{{','.join(OP_STATS)}}}[.CLASS] or {DET_AP_CLASS}CLASS"


def split(metric: Any) -> tuple[str, str | None] | None:
    """(the figure, its class or None) of an operating-point or per-class name: `det.op.recall.helmet` ->
    (`det.op.recall`, `helmet`), `det.op.f1` -> (`det.op.f1`, None), `det.ap50_95.vest` -> (`det.ap50_95`, `vest`);
    None for a name of neither form (`det.op.recal`, `det.ap50_95`, `det.op.recall.`). Class names hold no dots
    (gfcore.config.schema.check_name_part)."""
    if not isinstance(metric, str):
        return None
    if metric.startswith(DET_OP):
        stat, dot, cls = metric[len(DET_OP):].partition(".")
        if stat not in OP_STATS or (dot and (not cls or "." in cls)):
            return None
        return f"{DET_OP}{stat}", cls or None
    cls = metric[len(DET_AP_CLASS):] if metric.startswith(DET_AP_CLASS) else ""
    return (DET_AP_CLASS[:-1], cls) if cls and "." not in cls else None


def is_figure(name: str) -> bool:
    return name.startswith((DET_OP, DET_AP_CLASS))


def classes_of(tag: str | None) -> list[str] | None:
    """The classes of a `task.classes` tag (comma-separated), or None where it is not set."""
    names = [c.strip() for c in (tag or "").split(",") if c.strip()]
    return names or None


def champion_figures(c: Any, run_id: str | None, classes: str | None = None) -> tuple[dict[str, float],
                                                                                    list[str] | None]:
    """(the run's det.op.* and det.ap50_95.{class} figures, its task's classes: its tag `task.classes`, else
    `classes`, the registered model's); no figures for a version without a run, or one the store no longer has."""
    from mlflow.exceptions import MlflowException

    try:
        run = c.get_run(run_id) if run_id else None
    except MlflowException:
        run = None
    if run is None:
        return {}, classes_of(classes)
    figures = {k: v for k, v in run.data.metrics.items() if is_figure(k) and v is not None and math.isfinite(v)}
    return figures, classes_of(run.data.tags.get(TASK_CLASSES) or classes)


def did_you_mean(name: str, names: Iterable[str], spelled: str = "{}") -> str:
    """` (did you mean X?)` with the closest of `names` (each written as `spelled` formats it), or nothing."""
    close = difflib.get_close_matches(name, list(names), n=2)
    return f" (did you mean {' or '.join(spelled.format(c) for c in close)}?)" if close else ""
