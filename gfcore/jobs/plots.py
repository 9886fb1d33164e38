"""Charts people would rather look at than read; matplotlib without a display."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from gfcore.core.paths import cache_dir
from gfcore.core.vocabulary import (
    BEST,
    DET,
    DET_MAP50,
    DET_MAP50_95,
    MOT,
    SYS_LATENCY_P50_MS,
    SYS_LATENCY_P95_MS,
    SYS_MODEL_SIZE_MB,
    VAL,
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, layout: bool = True) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout()
    fig.savefig(out, dpi=110)
    fig.clf()
    return out


def source_vs_variant(original: dict[str, float], quantized: dict[str, float], label: str, out: Path,
                      base_label: str = "source (pytorch fp32)", heading: str | None = None) -> Path:
    """Three panels, source (or champion) vs variant (or candidate): accuracy (mAP50, mAP50-95), batch-1 latency
    (p50, p95), size."""
    plt = _pyplot()
    panels = [("accuracy", [("mAP50", DET_MAP50), ("mAP50-95", DET_MAP50_95)], ""),
              ("batch-1 latency", [("p50", SYS_LATENCY_P50_MS), ("p95", SYS_LATENCY_P95_MS)], "ms"),
              ("model size", [("size", SYS_MODEL_SIZE_MB)], "MB")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, (title, keys, unit) in zip(axes, panels):
        xs = range(len(keys))
        width = 0.38
        for offset, (name, values, colour) in ((-width / 2, (base_label, original, "#8c8c8c")),
                                               (width / 2, (label, quantized, "#1f77b4"))):
            heights = [values.get(k, 0.0) for _, k in keys]
            bars = ax.bar([x + offset for x in xs], heights, width, label=name, color=colour)
            ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_xticks(list(xs), [n for n, _ in keys])
        ax.set_title(title)
        if unit:
            ax.set_ylabel(unit)
        if title == "accuracy":
            ax.set_ylim(0, 1.1)
        else:
            ax.margins(y=0.2)
    # One legend above the panels, where it covers no bar.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.93))
    fig.suptitle(heading or f"source vs {label}")
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    _save(fig, out, layout=False)
    plt.close(fig)
    return out


def latency_vs_batch(per_batch: dict[int, dict[str, float]], label: str, out: Path) -> Path:
    """Latency per call (p50 with p95 above it) and throughput, against the batch size."""
    plt = _pyplot()
    sizes = sorted(per_batch)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    p50 = [per_batch[b]["latency_p50_ms"] for b in sizes]
    p95 = [per_batch[b]["latency_p95_ms"] for b in sizes]
    ax1.plot(sizes, p50, "o-", label="p50")
    ax1.plot(sizes, p95, "s--", label="p95", alpha=0.7)
    ax1.set(xlabel="batch size", ylabel="ms per batch", title="latency")
    ax1.set_ylim(bottom=0)  # from zero: a small spread must not look like a cliff
    ax1.set_xticks(sizes)
    ax1.legend(fontsize=8, loc="upper left")
    bars = ax2.bar(range(len(sizes)), [per_batch[b]["throughput_ips"] for b in sizes], color="#1f77b4")
    ax2.set_xticks(range(len(sizes)), [str(b) for b in sizes])
    ax2.bar_label(bars, fmt="%.0f", fontsize=8)
    ax2.set(xlabel="batch size", ylabel="images / s", title="throughput")
    ax2.margins(y=0.15)
    fig.suptitle(label)
    _save(fig, out)
    plt.close(fig)
    return out


def mot_per_sequence(rows: dict[str, dict[str, float]], out: Path) -> Path:
    """HOTA, MOTA and IDF1 per sequence and combined."""
    plt = _pyplot()
    names = list(rows)
    keys = [("HOTA", "hota"), ("MOTA", "mota"), ("IDF1", "idf1")]
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(names) + 2), 3.6))
    width = 0.8 / len(keys)
    for i, (label, key) in enumerate(keys):
        xs = [n + (i - 1) * width for n in range(len(names))]
        bars = ax.bar(xs, [rows[s][key] for s in names], width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="score")
    ax.set_title("tracking quality per sequence", pad=24)
    ax.set_ylim(min(0.0, min(rows[s]["mota"] for s in names) - 0.05), 1.0)
    # Above the plot, not over the bars.
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=len(keys), frameon=False)
    _save(fig, out)
    plt.close(fig)
    return out


def metric_per_variant(values: list[tuple[str, float]], metric: str, best: str | None, out: Path) -> Path:
    """One bar per child or variant, the best highlighted."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(values) + 2), 3.8))
    labels = [label for label, _ in values]
    colours = ["#d62728" if label == best else "#1f77b4" for label in labels]
    bars = ax.bar(range(len(values)), [v for _, v in values], color=colours)
    ax.bar_label(bars, fmt="%.3g", fontsize=8)
    ax.set_xticks(range(len(values)), labels, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=metric, title=f"{metric} per run" + (f" (best: {best})" if best else ""))
    if _is_score(metric) and all(0 <= v <= 1 for _, v in values):
        ax.set_ylim(0, 1.08)  # the whole 0..1 scale: a 0.003 difference looks like one
    else:
        ax.margins(y=0.15)
    _save(fig, out)
    plt.close(fig)
    return out


def _cached(name: str, inputs: object, out: Path) -> tuple[Path, Path | None]:
    """(the cache entry of a chart drawn by this module from `inputs`, `out` when it was copied from there).

    A pipeline rerun whose steps are all reused publishes the same chart again: copying it spares importing
    matplotlib and drawing (about 0.7 s). The key covers the inputs and this module's code."""
    key = hashlib.sha256(Path(__file__).read_bytes() + json.dumps([name, inputs], default=str).encode()).hexdigest()
    entry = cache_dir() / "charts" / f"{key[:32]}.png"
    if entry.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry, out)
        return entry, out
    return entry, None


def _keep(out: Path, entry: Path) -> None:
    """Store a drawn chart as its cache entry (written aside and renamed: parallel writers never see half)."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, suffix=".tmp")
        os.close(fd)
        shutil.copyfile(out, tmp)
        os.replace(tmp, entry)
    except OSError:  # a read-only or full cache only costs the next rerun a drawing
        pass


def accuracy_vs_latency(points: list[tuple[str, float, float]], out: Path, metric: str = DET_MAP50) -> Path:
    """Each variant at (batch-1 latency p50, accuracy): up and to the left is better. Both axes start at zero
    and accuracy spans 0..1, so distances on the chart are the real ones."""
    entry, copied = _cached("accuracy_vs_latency", [points, metric], out)
    if copied is not None:
        return copied
    _draw_accuracy_vs_latency(points, out, metric)
    _keep(out, entry)
    return out


def _draw_accuracy_vs_latency(points: list[tuple[str, float, float]], out: Path, metric: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    top = max(latency for _, latency, _ in points)
    for label, latency, accuracy in points:
        ax.scatter([latency], [accuracy], s=50, zorder=3)
        # Labels stay inside the axes: to the left of points in the right third.
        right = latency > 0.66 * top
        ax.annotate(f"{label}\n{accuracy:.3f} @ {latency:.2f} ms", (latency, accuracy), textcoords="offset points",
                    xytext=(-6 if right else 6, -14), ha="right" if right else "left", va="top", fontsize=8)
    ax.set(xlabel="batch-1 latency p50 (ms)", ylabel=metric, title=f"{metric} vs latency")
    ax.set_xlim(0, top * 1.15)
    if _is_score(metric):
        ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    _save(fig, out)
    plt.close(fig)


def _is_score(metric: str) -> bool:
    """Detection and tracking scores live on 0..1."""
    return metric.startswith((DET, MOT, f"{BEST}{DET}", VAL)) and not metric.endswith(
        ("_switches", "frag", "mt", "pt", "ml", "fp", "fn", "_tracks"))


def fleet_trend(rows: list[dict], metric: str, by: str, out: Path) -> Path:
    """One line per site and task over time; scores on their whole 0..1 scale."""
    plt = _pyplot()
    series: dict[str, list[tuple[str, float]]] = {}
    for r in rows:
        series.setdefault(f"{r['site']} {r['task'] or ''}".strip(), []).append((r[by], r[metric]))
    buckets = sorted({b for points in series.values() for b, _ in points})
    index = {b: i for i, b in enumerate(buckets)}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, points in sorted(series.items()):
        ax.plot([index[b] for b, _ in points], [v for _, v in points], "o-", label=label)
    step = max(1, len(buckets) // 12)
    ax.set_xticks(range(0, len(buckets), step), buckets[::step], rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=metric, title=f"{metric} per site ({by})")
    if _is_score(metric):
        ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _save(fig, out)
    plt.close(fig)
    return out


_STATUS_COLOURS = {"better": "#2ca02c", "worse": "#d62728", "within": "#7f7f7f", "unclear": "#ff7f0e"}


def differences_with_intervals(intervals: dict, readings: dict, per_sequence: dict, out: Path, heading: str) -> Path:
    """A challenge's differences with their 95 % intervals as error bars: detection (candidate - champion, the
    tolerance of each figure the verdict reads shaded), latency (candidate / champion) and, with tracking, each
    sequence's HOTA / IDF1 difference. Colour: what the verdict read (green better, red worse, grey within, orange
    unclear; blue: shown, not read)."""
    plt = _pyplot()
    det = [k for k in intervals if k.startswith(DET) and not k.split(".")[-1] == "missed"
           and not k.startswith(f"{DET}ap50_95.")]
    lat = [k for k in (SYS_LATENCY_P50_MS, SYS_LATENCY_P95_MS) if k in intervals]
    seqs = {role: {s: r for s, r in rows.items() if s != "COMBINED"} for role, rows in per_sequence.items()}
    panels = [p for p in (("detection: candidate - champion", det, 0.0), ("latency: candidate / champion", lat, 1.0))
              if p[1]] + ([("tracking per sequence", None, 0.0)] if len(seqs) == 2 else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 0.5 * max(len(det), 4) + 1.6), squeeze=False)
    for ax, (title, keys, zero) in zip(axes[0], panels):
        ax.axvline(zero, color="black", linewidth=0.8)
        if keys is None:
            cand, champ = seqs["candidate"], seqs["champion"]
            names = [s for s in cand if s in champ]
            for n, metric in enumerate(("hota", "idf1")):
                ax.scatter([cand[s][metric] - champ[s][metric] for s in names], [n] * len(names), color="#1f77b4")
            ax.set_yticks([0, 1], ["HOTA", "IDF1"])
            ax.set_ylim(-0.6, 1.6)
            ax.set_xlabel(f"difference, one dot per sequence ({len(names)})")
        else:
            ys = list(range(len(keys)))[::-1]
            for y, key in zip(ys, keys):
                i, reading = intervals[key], readings.get(key)
                colour = _STATUS_COLOURS.get(reading.status(), "#1f77b4") if reading else "#1f77b4"
                ax.errorbar(i.point, y, xerr=[[max(i.point - i.low, 0)], [max(i.high - i.point, 0)]], fmt="o",
                            color=colour, capsize=3)
                if reading:
                    ax.fill_betweenx([y - 0.35, y + 0.35], zero - reading.tolerance, zero + reading.tolerance,
                                     color="#bbbbbb", alpha=0.35, linewidth=0)
            ax.set_yticks(ys, [k.replace(DET, "").replace("sys.", "") for k in keys], fontsize=8)
            ax.margins(x=0.15)
        ax.set_title(title, fontsize=10)
    fig.suptitle(heading, fontsize=10)
    _save(fig, out)
    plt.close(fig)
    return out
