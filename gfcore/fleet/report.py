"""`metrics report`: the fleet on one self-contained HTML page, to mail, attach or open in the MLflow UI.

The page needs no network: plotly's JavaScript bundle is embedded once and every chart is drawn from data in the
page. It holds the summary table (one row per site model), a trend chart per task, the accuracy against batch-1
latency of every champion (trained model and variants) and, when given, the open alerts. With `log=True` the page
is also an artifact of a run in the `guardianflow/fleet` experiment, so the MLflow UI shows it.
"""

from __future__ import annotations

import contextlib
import html
import json
import sys
import time
from pathlib import Path
from typing import Any

from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import DET_MAP50, EXP_TYPE, FLEET, FLEET_SCOPE, NOTE_TAG, RunKind
from gfcore.fleet import queries, trends
from gfcore.tracking.experiments import ensure_experiment

EXPERIMENT = "guardianflow/fleet"
EXPERIMENT_DESCRIPTION = ("**The fleet report.** Each run is one `guardianflow metrics report --log`: its artifact "
                          "`fleet.html` is the page (summary per site model, trends, accuracy against latency of "
                          "the champions); its metrics count the site models, champions and failed runs.")
SUMMARY_COLUMNS = [("site", "site"), ("task", "task"), ("model", "registered model"), ("champion", "champion"),
                   ("champion_days", "days"), ("det_mAP50", "mAP50"), ("det_mAP50_95", "mAP50-95"),
                   ("eval_split", "split"), ("deployed", "deployed"), ("latency_p50_ms", "p50 ms"),
                   ("latency_p95_ms", "p95 ms"), ("hota", "HOTA"), ("idf1", "IDF1"), ("candidate", "candidate"),
                   ("candidate_same_basis", "same basis"), ("data", "data"),
                   ("data_newer", "newer data"), ("runs", "runs"), ("failed_runs", "failed")]
STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #666; font-size: 13px; } .cards { display: flex; gap: 12px; margin: 16px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; } .card b { font-size: 20px; display: block; }
table { border-collapse: collapse; font-size: 13px; } th, td { border-bottom: 1px solid #e4e4e4; padding: 4px 8px; }
th { background: #f4f4f4; text-align: left; position: sticky; top: 0; } td.num { text-align: right; }
td.bad { color: #b00020; font-weight: 600; } .charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { width: 640px; height: 400px; border: 1px solid #eee; } .empty { color: #666; font-style: italic; }
"""


def build(customer: str | None = None, task: str | None = None, days: int = 30, trend_days: int = 90,
          alerts: list[dict[str, Any]] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The page and its summary rows (for the logged run's counts and table)."""
    rows = [r.as_dict() for r in queries.summary(customer, task, days)]
    try:
        points = trends.trend(DET_MAP50, customer, task, trend_days, "day") if rows else []
    except ConfigError:  # runs, but none with det.mAP50 yet (only failures, say): the page says so
        points = []
    champions = queries.champions(customer, task)
    charts = [_trend_chart(t, [p for p in points if p["task"] == t], trend_days)
              for t in sorted({p["task"] or "?" for p in points})]
    if any(c["latency_p50_ms"] is not None and c["det_mAP50"] is not None for c in champions):
        charts.append(_accuracy_latency_chart(champions))
    page = _page(rows, charts, alerts, customer, task, days)
    return page, rows


def write(out: Path, log: bool = False, **kwargs: Any) -> tuple[Path, str | None]:
    """Write the page to `out`; with `log`, record it in the `guardianflow/fleet` experiment. Returns the file and
    the run id (None without `log`)."""
    page, rows = build(**kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    if not log:
        return out, None
    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints "View run ..." for a server: keep stdout for --json
        return out, _log(out, rows, kwargs)


def _log(out: Path, rows: list[dict[str, Any]], kwargs: dict[str, Any]) -> str:
    import mlflow

    client = mlflow.MlflowClient()
    scope = " ".join(f"{k}={v}" for k, v in kwargs.items() if v is not None and k in ("customer", "task"))
    run = client.create_run(ensure_experiment(EXPERIMENT, EXPERIMENT_DESCRIPTION),
                            run_name=f"fleet-report-{time.strftime('%Y-%m-%d-%H%M')}",
                            tags={EXP_TYPE: RunKind.fleet_report.value, FLEET_SCOPE: scope or "all sites",
                                  NOTE_TAG: f"The fleet report ({scope or 'all sites'}): open "
                                                         f"`{out.name}` under Artifacts."})
    run_id = run.info.run_id
    try:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        figures = {f"{FLEET}site_models": len(rows),
                   f"{FLEET}champions": sum(r["champion"] is not None for r in rows),
                   f"{FLEET}candidates_waiting": sum(r["candidate"] is not None for r in rows),
                   f"{FLEET}runs": sum(r["runs"] for r in rows),
                   f"{FLEET}failed_runs": sum(r["failed_runs"] for r in rows)}
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in figures.items()])
        client.log_artifact(run_id, str(out))
        if rows:
            client.log_table(run_id, {c: [r[c] for r in rows] for c, _ in SUMMARY_COLUMNS}, "fleet_summary.json")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _trend_chart(task: str, points: list[dict[str, Any]], days: int) -> dict[str, Any]:
    series: dict[str, dict[str, list]] = {}
    for p in points:
        s = series.setdefault(p["site"], {"x": [], "y": [], "text": []})
        s["x"].append(p["day"])
        s["y"].append(round(p[DET_MAP50], 4))
        s["text"].append(f"{p['runs']} run(s), last {p['last']:.3f}")
    traces = [{"type": "scatter", "mode": "lines+markers", "name": site, **s,
               "hovertemplate": "%{x}: %{y:.3f}<br>%{text}<extra>" + html.escape(site) + "</extra>"}
              for site, s in sorted(series.items())]
    layout = {"title": _title(f"{task}: det.mAP50 per site, last {days} days (mean per day)"), "showlegend": True,
              "yaxis": {"title": {"text": "det.mAP50"}, "range": [0, 1.02]}, "xaxis": {"type": "date"},
              "legend": {"orientation": "h", "y": -0.2}, "margin": {"t": 50, "r": 40}, "modebar": {"orientation": "v"}}
    return {"id": f"trend-{task}", "data": traces, "layout": layout}


def _title(text: str) -> dict[str, Any]:
    # Left-aligned, so the chart's tool bar (top right, on hover) does not cover it.
    return {"text": text, "x": 0.01, "xanchor": "left", "font": {"size": 14}}


def _accuracy_latency_chart(champions: list[dict[str, Any]]) -> dict[str, Any]:
    by_variant: dict[str, dict[str, list]] = {}
    for c in champions:
        if c["latency_p50_ms"] is None or c["det_mAP50"] is None:
            continue
        s = by_variant.setdefault(c["variant"], {"x": [], "y": [], "text": []})
        s["x"].append(c["latency_p50_ms"])
        s["y"].append(c["det_mAP50"])
        s["text"].append(f"{c['model']} v{c['version']}")
    traces = [{"type": "scatter", "mode": "markers", "name": v, **s, "marker": {"size": 10},
               "hovertemplate": "%{text}<br>p50 %{x:.2f} ms, mAP50 %{y:.3f}<extra>" + html.escape(v) + "</extra>"}
              for v, s in sorted(by_variant.items())]
    layout = {"title": _title("Champions: accuracy against batch-1 latency (up and left is better)"),
              "xaxis": {"title": {"text": "sys.latency_p50_ms"}, "rangemode": "tozero"},
              "yaxis": {"title": {"text": "det.mAP50"}, "range": [0, 1.02]},
              "legend": {"orientation": "h", "y": -0.2}, "margin": {"t": 50, "r": 40}, "modebar": {"orientation": "v"}}
    return {"id": "accuracy-latency", "data": traces, "layout": layout}


def _page(rows: list[dict[str, Any]], charts: list[dict[str, Any]], alerts: list[dict[str, Any]] | None,
          customer: str | None, task: str | None, days: int) -> str:
    from plotly.offline import get_plotlyjs

    scope = ", ".join(f"{k} {v}" for k, v in (("customer", customer), ("task", task)) if v) or "all sites"
    cards = [("site models", len(rows)), ("champions", sum(r["champion"] is not None for r in rows)),
             ("candidates waiting", sum(r["candidate"] is not None for r in rows)),
             (f"runs, last {days} days", sum(r["runs"] for r in rows)),
             ("failed runs", sum(r["failed_runs"] for r in rows))]
    parts = [f"<h1>GuardianFlow fleet</h1><div class='meta'>{html.escape(scope)}; generated "
             f"{time.strftime('%Y-%m-%d %H:%M %Z')}; figures on each version's evaluation split (column split)</div>",
             "<div class='cards'>" + "".join(f"<div class='card'><b>{v}</b>{html.escape(k)}</div>" for k, v in cards)
             + "</div>"]
    if alerts is not None:
        parts.append(_alerts(alerts))
    parts.append("<h2>Site models</h2>" + (_summary_table(rows) if rows else
                                           "<p class='empty'>No site has runs or registered models yet.</p>"))
    parts.append("<h2>Charts</h2><div class='charts'>" + "".join(
        f"<div class='chart' id='{html.escape(c['id'])}'></div>" for c in charts) + "</div>"
                 + ("" if charts else "<p class='empty'>No finished run logged det.mAP50 yet.</p>"))
    figures = json.dumps([{k: c[k] for k in ("id", "data", "layout")} for c in charts]).replace("</", "<\\/")
    draw = ("const figures = " + figures + ";\nfor (const f of figures) { Plotly.newPlot(f.id, f.data, f.layout, "
            "{displaylogo: false, responsive: true}); }")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>GuardianFlow fleet</title>"
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
            + "\n".join(parts) + f"<script>{draw}</script></body></html>")


def _summary_table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in SUMMARY_COLUMNS)
    body = []
    for r in rows:
        cells = []
        for key, _ in SUMMARY_COLUMNS:
            value = r.get(key)
            bad = (key == "candidate_same_basis" and value is False) or (key == "failed_runs" and value)
            text = ("yes" if value else "NO") if isinstance(value, bool) else \
                (f"{value:.1f}" if key == "champion_days" and value is not None else
                 f"{value:.3f}" if isinstance(value, float) and abs(value) < 100 else
                 f"{value:.0f}" if isinstance(value, float) else "" if value is None else str(value))
            cls = ("num " if isinstance(value, (int, float)) and not isinstance(value, bool) else "") + \
                ("bad" if bad else "")
            cells.append(f"<td class='{cls.strip()}'>{html.escape(text)}</td>")
        body.append("<tr class='site-model'>" + "".join(cells) + "</tr>")
    return f"<table id='summary'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _alerts(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return "<h2>Alerts</h2><p class='empty'>No open alert.</p>"
    keys = [k for k in ("severity", "rule", "model", "version", "message") if any(k in a for a in alerts)]
    head = "".join(f"<th>{k}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(a.get(k, '')))}</td>" for k in keys) + "</tr>"
                   for a in alerts)
    return f"<h2>Alerts</h2><table id='alerts'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
