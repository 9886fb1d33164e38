"""Charts people would rather look at than read; matplotlib without a display."""

from __future__ import annotations

from pathlib import Path


def source_vs_variant(original: dict[str, float], quantized: dict[str, float], label: str, out: Path) -> Path:
    """Three panels, source vs variant: accuracy (mAP50, mAP50-95), batch-1 latency (p50, p95), size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("accuracy", [("mAP50", "det.mAP50"), ("mAP50-95", "det.mAP50_95")], ""),
              ("batch-1 latency", [("p50", "sys.latency_p50_ms"), ("p95", "sys.latency_p95_ms")], "ms"),
              ("model size", [("size", "sys.model_size_mb")], "MB")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, (title, keys, unit) in zip(axes, panels):
        xs = range(len(keys))
        width = 0.38
        for offset, (name, values, colour) in ((-width / 2, ("source (pytorch fp32)", original, "#8c8c8c")),
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
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"source vs {label}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
