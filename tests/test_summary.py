"""Parents' result tables and the charts people read: what the description, the terminal and the axes show."""

from __future__ import annotations

import math

import pytest

from gfcore.jobs import plots
from gfcore.orchestration.results import Report, pick_best

ROWS = [
    {"variant": "pytorch_fp32", "det.mAP50": 0.965, "det.mAP50_95": 0.712, "sys.latency_p50_ms": 12.3,
     "sys.latency_p95_ms": 13.0, "sys.model_size_mb": 5.9, "mot.hota": 0.739, "registered_model": "a.b.c.ppe",
     "registered_version": "3", "run_id": "r1"},
    {"variant": "openvino_int8", "det.mAP50": 0.967, "det.mAP50_95": 0.712, "sys.latency_p50_ms": 4.4,
     "sys.latency_p95_ms": 5.1, "sys.model_size_mb": 3.3, "mot.hota": None,
     "registered_model": "a.b.c.ppe__openvino_int8", "registered_version": "1", "run_id": "r2"},
]


def test_best_row_ties_go_to_the_faster_and_missing_values_never_win():
    assert pick_best(ROWS, "det.mAP50_95")["variant"] == "openvino_int8"
    assert pick_best(ROWS, "sys.latency_p50_ms", maximize=False)["variant"] == "openvino_int8"
    assert pick_best(ROWS, "mot.hota")["variant"] == "pytorch_fp32"
    assert pick_best([{"variant": "x", "det.mAP50": math.nan}], "det.mAP50") is None


def test_markdown_and_terminal_show_the_same_table():
    report = Report("Pipeline results", ROWS, ROWS[1], "Most accurate: **openvino_int8**.", "s")
    md = report.markdown().splitlines()
    assert md[0] == "### Pipeline results" and md[2] == "Most accurate: **openvino_int8**."
    assert md[4] == "| variant | mAP50 | mAP50-95 | p50 ms | p95 ms | size MB | HOTA | registered model | version |"
    assert md[6] == "| pytorch_fp32 | 0.965 | 0.712 | 12.30 | 13.00 | 5.9 | 0.739 | a.b.c.ppe | 3 |"
    assert md[7].startswith("| **openvino_int8** | 0.967 |") and "| – |" in md[7]  # no HOTA: a dash, not 0
    text = report.text().splitlines()
    assert text[2].split() == ["variant", "mAP50", "mAP50-95", "p50", "ms", "p95", "ms", "size", "MB", "HOTA",
                               "registered", "model", "version"]
    assert text[4].startswith("* openvino_int8") and text[-1] == "Most accurate: openvino_int8."


def test_columns_without_any_value_are_left_out_and_extra_columns_shown():
    rows = [{"variant": "#0 train.lr0=0.01", "det.mAP50": 0.5, "status": "FINISHED", "job": "0", "params": "x"},
            {"variant": "#1 train.lr0=0.1", "det.mAP50": None, "status": "FAILED", "job": "1", "params": "y"}]
    header = Report("Sweep", rows, rows[0], "Best.", "s").markdown().splitlines()[4]
    assert header == "| variant | status | mAP50 |"


@pytest.fixture
def axes(monkeypatch, tmp_path):
    """The axes of the last chart drawn, captured before it is saved (an empty chart cache: every chart is drawn)."""
    monkeypatch.setenv("GF_CACHE_DIR", str(tmp_path / "cache"))
    seen = []
    real = plots._save

    def capture(fig, out, layout=True):
        fig.canvas.draw()
        # Per axes: limits, and whether its legend (if any) lies clear above the plotting area.
        seen.append([(ax.get_xlim(), ax.get_ylim(), ax.get_legend() and
                      ax.get_legend().get_window_extent().y0 >= ax.get_window_extent().y1 - 1) for ax in fig.axes])
        return real(fig, out, layout)

    monkeypatch.setattr(plots, "_save", capture)
    return seen


def test_accuracy_axes_are_honest(axes, tmp_path):
    plots.accuracy_vs_latency([("pytorch_fp32", 12.3, 0.965), ("openvino_int8", 4.4, 0.968)], tmp_path / "a.png")
    (xlim, ylim, _), = axes[-1]
    assert ylim == (0, 1.05) and xlim[0] == 0, "a 0.003 difference must not look like a cliff"
    plots.metric_per_variant([("a", 0.965), ("b", 0.968)], "det.mAP50", "b", tmp_path / "b.png")
    assert axes[-1][0][1][0] == 0 and axes[-1][0][1][1] >= 1
    plots.latency_vs_batch({1: {"latency_p50_ms": 10.0, "latency_p95_ms": 10.4, "throughput_ips": 100},
                            8: {"latency_p50_ms": 60.0, "latency_p95_ms": 61.0, "throughput_ips": 133}},
                           "x", tmp_path / "c.png")
    assert axes[-1][0][1][0] == 0


def test_same_chart_is_copied_not_drawn_again(axes, tmp_path):
    points = [("pytorch_fp32", 12.3, 0.965), ("openvino_int8", 4.4, 0.968)]
    first = plots.accuracy_vs_latency(points, tmp_path / "first.png")
    again = plots.accuracy_vs_latency([tuple(p) for p in points], tmp_path / "again" / "a.png")
    assert len(axes) == 1, "the second chart came from the cache"
    assert again.read_bytes() == first.read_bytes()
    plots.accuracy_vs_latency([points[0], ("openvino_int8", 4.5, 0.968)], tmp_path / "other.png")
    assert len(axes) == 2, "other figures draw a new chart"


def test_legends_stay_off_the_bars(axes, tmp_path):
    plots.source_vs_variant({"det.mAP50": 0.96, "det.mAP50_95": 0.7, "sys.latency_p50_ms": 12, "sys.latency_p95_ms": 13,
                             "sys.model_size_mb": 5.9}, {"det.mAP50": 0.96, "det.mAP50_95": 0.7,
                                                         "sys.latency_p50_ms": 4, "sys.latency_p95_ms": 5,
                                                         "sys.model_size_mb": 3.3}, "openvino_int8", tmp_path / "d.png")
    assert all(legend is None for _, _, legend in axes[-1]), "one figure legend above the panels"
    plots.mot_per_sequence({"s1": {"hota": 0.9, "mota": 0.95, "idf1": 0.97}}, tmp_path / "e.png")
    (_, ylim, legend_above), = axes[-1]
    assert legend_above, "the legend sits above the axes, not over the bars"
    assert ylim[1] == 1.0
