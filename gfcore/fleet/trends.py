"""The fleet over time and across groups: a metric's trend per site and task (`metrics trend`), and a metric
compared by architecture, backend, site or task (`metrics compare`), over finished, non-parent runs."""

from __future__ import annotations

import difflib
import math
import time
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import (
    BACKEND_NAME,
    BACKEND_PRECISION,
    DET_MAP50,
    EXP_TYPE,
    MODEL_ARCHITECTURE,
    SYSTEM,
    TASK_TYPE,
)
from gfcore.fleet.queries import DAY_MS, PARENTS, bulk_read, client, iter_runs, site_experiments
from gfcore.fleet.tagged import both, tag_filter


@bulk_read
def trend(metric: str, customer: str | None = None, task: str | None = None, days: int = 90,
          by: str = "day", tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """`metric` per site and task over time: per day or week, the mean over the finished runs that logged it
    (by end time; only those carrying `tags`, when given), with their count and the last value."""
    if by not in ("day", "week"):
        raise ConfigError(f"--by {by}: use day or week.")
    c = client()
    experiments = site_experiments(c, customer)
    since = int(time.time() * 1000) - days * DAY_MS
    points: dict[tuple, list[tuple[int, float]]] = defaultdict(list)
    by_id = {v: k for k, v in experiments.items()}
    known = False
    for run in iter_runs(c, list(by_id), both(f"attributes.end_time >= {since} and attributes.status = 'FINISHED'"
                                              f" and {has_metric(metric)}" + (f" and tags.`{TASK_TYPE}` = '{task}'"
                                                                        if task else ""), tag_filter(tags))):
        value = run.data.metrics.get(metric)
        if value is None or not math.isfinite(value) or run.data.tags.get(EXP_TYPE) in PARENTS:
            continue
        known = True
        bucket = _bucket(run.info.end_time, by)
        points[(by_id[run.info.experiment_id], run.data.tags.get(TASK_TYPE), bucket)].append(
            (run.info.end_time, value))
    if not known and experiments:
        _check_metric(c, list(by_id), metric)
    rows = []
    for (site, run_task, bucket), values in sorted(points.items(), key=lambda kv: (kv[0][0], kv[0][1] or "",
                                                                                   kv[0][2])):
        values.sort()
        rows.append({"site": site, "task": run_task, by: bucket, metric: sum(v for _, v in values) / len(values),
                     "runs": len(values), "last": values[-1][1]})
    return rows


GROUPS = {"architecture": MODEL_ARCHITECTURE, "backend": BACKEND_NAME, "site": None, "task": TASK_TYPE}


@bulk_read
def compare(by: str, metric: str = DET_MAP50, days: int | None = None, customer: str | None = None,
            lower_is_better: bool = False) -> list[dict[str, Any]]:
    """`metric` grouped by architecture, backend, site or task: mean, best and count over finished runs."""
    if by not in GROUPS:
        raise ConfigError(f"--by {by}: use one of {', '.join(GROUPS)}.")
    c = client()
    experiments = site_experiments(c, customer)
    by_id = {v: k for k, v in experiments.items()}
    since = f" and attributes.end_time >= {int(time.time() * 1000) - days * DAY_MS}" if days else ""
    groups: dict[str, list[float]] = defaultdict(list)
    for run in iter_runs(c, list(by_id), f"attributes.status = 'FINISHED' and {has_metric(metric)}" + since):
        value = run.data.metrics.get(metric)
        if value is None or not math.isfinite(value) or run.data.tags.get(EXP_TYPE) in PARENTS:
            continue
        key = by_id[run.info.experiment_id] if by == "site" else run.data.tags.get(GROUPS[by], "?")
        if by == "backend":
            key = "_".join(run.data.tags.get(k) or run.data.params.get(k, "?")
                           for k in (BACKEND_NAME, BACKEND_PRECISION))
        groups[key].append(value)
    if not groups and experiments:
        _check_metric(c, list(by_id), metric)
    best = min if lower_is_better else max
    return [{by: k, "mean": sum(v) / len(v), "best": best(v), "count": len(v)}
            for k, v in sorted(groups.items(), key=lambda kv: sum(kv[1]) / len(kv[1]), reverse=not lower_is_better)]


def has_metric(metric: str) -> str:
    """A filter clause for runs that logged `metric` (on the server: runs without it are never sent)."""
    return f"metrics.`{metric}` > -1e300"


def _check_metric(c: Any, experiment_ids: list[str], metric: str) -> None:
    """No run has `metric`: say which metrics exist (from a few recent runs), the likely typo."""
    recent = c.search_runs(experiment_ids, max_results=50, order_by=["attributes.start_time DESC"])
    names = sorted({k for r in recent for k in r.data.metrics if not k.startswith(SYSTEM)})
    if names and metric not in names:
        close = difflib.get_close_matches(metric, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"no run has the metric {metric!r}{hint}. Metrics the recent runs have: "
                          f"{', '.join(names[:40])}.")


def _bucket(ms: int, by: str) -> str:
    day = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date()
    if by == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()
