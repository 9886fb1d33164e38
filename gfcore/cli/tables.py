"""Tables for people: declared columns with short headers and units, one rounding rule, fitted to 120 columns.

The rounding rule, everywhere on the terminal: mAP, precision / recall, HOTA / IDF1 and other rates 3 decimals;
milliseconds (and MB) 1 decimal; ages `12 min`, `5 h`, `3 d`; counts integers. `--json` prints raw numbers instead
(never rounded strings), so a script reads what was measured.

A table wider than the limit drops its lowest-priority columns first (highest `priority` number, the rightmost of
equals), then shortens its longest text cells with `…`, and says in one line what `--wide` would add."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH = 120  # a default terminal fits this; --wide lifts it
GAP = "  "
ELLIPSIS = "…"
MIN_TEXT = 8  # a text column is never shortened below this (or its header)
WIDE_HELP = "show every column, uncut (by default a table fits 120 columns: the least important go first)"

TEXT, RATE, MS, MB, DAYS, COUNT, FLAG, NUMBER = "text", "rate", "ms", "mb", "days", "count", "flag", "number"


@dataclass(frozen=True)
class Column:
    """`key` of the row, `header` as printed (short, with its unit), `kind` (how its numbers round), `priority`
    (0: always shown; higher numbers are dropped first when the table is too wide), `cut`: whether its text may be
    shortened to fit (not a name a person copies into the next command)."""

    key: str
    header: str = ""
    kind: str = TEXT
    priority: int = 0
    cut: bool = True

    @property
    def title(self) -> str:
        return self.header or self.key


def cell(value: Any, kind: str = TEXT) -> str:
    """One value as the rounding rule prints it; missing values print as '-'."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        if not math.isfinite(v):
            return "-"
        if kind == DAYS:
            return age(v)
        if kind == COUNT or (kind in (TEXT, NUMBER) and isinstance(value, int)):
            return f"{round(v):d}"
        if kind in (MS, MB):
            return f"{v:.1f}"
        if kind == NUMBER and abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.3f}"
    return str(value)


def age(days: float) -> str:
    """`12 min`, `5 h`, `3 d`: whole units, rounded down (never `0.001` days)."""
    minutes = max(days, 0.0) * 1440
    if minutes < 60:
        return f"{int(minutes)} min"
    if minutes < 1440:
        return f"{int(minutes // 60)} h"
    return f"{int(days)} d"


def table(rows: list[dict[str, Any]], columns: Sequence[Column | str], wide: bool = False, width: int = WIDTH) -> str:
    """An aligned text table of `rows` fitted to `width` (unless `wide`), with the `--wide` line when it left
    something out. Plain string columns are text shown always and whole (for a command without --wide)."""
    cols = [c if isinstance(c, Column) else Column(c, cut=False) for c in columns]
    cells = [{c.key: cell(r.get(c.key), c.kind) for c in cols} for r in rows]
    shown, dropped, cut = list(cols), [], False
    if not wide:
        while _width(shown, cells) > width and any(c.priority for c in shown):
            lowest = max(c.priority for c in shown)
            victim = [c for c in shown if c.priority == lowest][-1]
            shown.remove(victim)
            dropped.append(victim)
        cut = _shorten(shown, cells, width)
    widths = {c.key: max([len(c.title)] + [len(r[c.key]) for r in cells]) for c in shown}
    lines = [GAP.join(c.title.ljust(widths[c.key]) for c in shown).rstrip()]
    lines += [GAP.join(r[c.key].ljust(widths[c.key]) for c in shown).rstrip() for r in cells]
    if dropped or cut:
        added = ", ".join(c.title for c in sorted(dropped, key=cols.index))
        lines.append(f"(--wide: {'+ ' + added if added else ''}{'; ' if added and cut else ''}"
                     f"{'whole cells' if cut else ''})")
    return "\n".join(lines)


def _width(cols: list[Column], cells: list[dict[str, str]]) -> int:
    return sum(max([len(c.title)] + [len(r[c.key]) for r in cells]) for c in cols) + len(GAP) * (len(cols) - 1)


def _shorten(cols: list[Column], cells: list[dict[str, str]], width: int) -> bool:
    """Cut the longest text cells, one character at a time from the widest text column, until the table fits or
    no text column can shrink further; True when something was cut."""
    excess = _width(cols, cells) - width
    if excess <= 0:
        return False
    limits = {c.key: max(len(r[c.key]) for r in cells) if cells else 0 for c in cols if c.kind == TEXT and c.cut}
    floor = {c.key: max(MIN_TEXT, len(c.title)) for c in cols if c.key in limits}
    while excess > 0:
        shrinkable = [k for k in limits if limits[k] > floor[k]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda k: limits[k])
        limits[widest] -= 1
        excess -= 1
    cut = False
    for key, limit in limits.items():
        for r in cells:
            if len(r[key]) > limit:
                r[key] = r[key][:limit - 1] + ELLIPSIS
                cut = True
    return cut


# --- figures: a metric's short name, its unit and which way is better, for headers and title lines

SHORT = {"det.mAP50": "mAP50", "det.mAP50_95": "mAP50-95", "det.precision": "precision", "det.recall": "recall",
         "det.f1": "F1", "sys.latency_p50_ms": "p50 ms", "sys.latency_p95_ms": "p95 ms",
         "sys.latency_p99_ms": "p99 ms", "sys.latency_ms": "latency ms", "mot.hota": "HOTA", "mot.idf1": "IDF1",
         "sys.fps": "fps", "sys.throughput_ips": "images/s", "sys.model_size_mb": "size MB"}
COUNTS = ("id_switches", "frag", "mt", "pt", "ml", "fp", "fn", "gt_tracks", "pred_tracks", "missed")


def kind_of(metric: str) -> str:
    """How a metric's values round: ms and MB 1 decimal, counts integers, everything else as a rate."""
    last = metric.rsplit(".", 1)[-1]
    if last.endswith("_ms"):
        return MS
    if last.endswith("_mb") or last in ("fps", "throughput_ips", "model_gflops", "model_params_m"):
        return MB  # one decimal as well
    if last in COUNTS:
        return COUNT
    return RATE


def short(metric: str) -> str:
    """`det.mAP50` -> `mAP50`, `sys.latency_p50_ms` -> `p50 ms`; other names as they are."""
    return SHORT.get(metric, metric)


def lower_is_better(metric: str) -> bool:
    last = metric.rsplit(".", 1)[-1]
    return last.endswith(("_ms", "_mb")) or last in ("id_switches", "frag", "fp", "fn", "missed", "ml")


def describe(metric: str) -> str:
    """A figure for a title line: `det.mAP50 (higher is better)`, `p50 latency, ms (lower is better)`."""
    if metric.startswith("sys.latency_") and metric.endswith("_ms"):
        what = f"{metric[len('sys.latency_'):-len('_ms')]} latency, ms"
    else:
        what = metric
    return f"{what} ({'lower' if lower_is_better(metric) else 'higher'} is better)"
