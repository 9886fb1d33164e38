"""The fleet view: `guardianflow metrics summary|trend|compare|export` (gfcore.fleet)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gfcore.cli.common import table
from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import DET_MAP50, SYS_LATENCY_P50_MS


def _cell(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return value


def _print(rows: list[dict], columns: list[str], empty: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
    elif not rows:
        print(empty)
    else:
        print(table([{c: _cell(r.get(c)) for c in columns} for r in rows], columns))


def tag_args(given: list[str] | None) -> dict[str, str]:
    """`--tag K=V` (repeatable) as {K: V}: a scenario's own tags (`exp.tags`), every one required."""
    tags: dict[str, str] = {}
    for item in given or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--tag {item!r}: give a tag as NAME=VALUE, e.g. --tag purpose=baseline.")
        tags[key.strip()] = value
    return tags


def _add_tag_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--tag", action="append", metavar="K=V", help=f"{what} carrying tag K with value V (a "
                   "scenario's exp.tags, e.g. purpose=baseline); repeatable, all must match")


def cmd_summary(args: argparse.Namespace) -> None:
    from gfcore.fleet import queries

    rows = [r.as_dict() for r in queries.summary(args.customer, args.task, args.days, tag_args(args.tag))]
    _print(rows, ["site", "task", "model", "champion", "champion_days", "det_mAP50", "det_mAP50_95", "eval_split",
                  "deployed", "latency_p50_ms", "latency_p95_ms", "hota", "idf1", "candidate",
                  "candidate_same_basis", "data", "data_newer", "runs", "failed_runs"],
           "no site has runs or registered models in this store yet: run `python -m guardianflow.full_pipeline`.",
           args.json)


def cmd_trend(args: argparse.Namespace) -> None:
    from gfcore.fleet import trends

    rows = trends.trend(args.metric, args.customer, args.task, args.days, args.by, tag_args(args.tag))
    _print(rows, ["site", "task", args.by, args.metric, "runs", "last"],
           f"no finished run logged {args.metric} in the last {args.days} days.", args.json)
    if args.plot and rows:
        from gfcore.jobs.plots import fleet_trend

        print(f"wrote {fleet_trend(rows, args.metric, args.by, Path(args.plot))}", file=sys.stderr)


def cmd_compare(args: argparse.Namespace) -> None:
    from gfcore.fleet import trends

    metric = SYS_LATENCY_P50_MS if args.latency else args.metric
    rows = trends.compare(args.by, metric, args.days, args.customer, lower_is_better=args.latency)
    _print(rows, [args.by, "mean", "best", "count"], f"no finished run logged {metric}.", args.json)
    if args.plot and rows:
        from gfcore.jobs.plots import metric_per_variant

        best = rows[0][args.by]
        out = metric_per_variant([(str(r[args.by]), r["mean"]) for r in rows], f"{metric} (mean)", str(best),
                                 Path(args.plot))
        print(f"wrote {out}", file=sys.stderr)


def cmd_export(args: argparse.Namespace) -> None:
    from gfcore.fleet.export import export

    files = export(Path(args.output), args.format, args.history, args.customer, tag_args(args.tag))
    if args.json:
        print(json.dumps([str(f) for f in files]))
    else:
        print("\n".join(f"wrote {f}" for f in files))


def cmd_report(args: argparse.Namespace) -> None:
    from gfcore.fleet.report import EXPERIMENT, write

    out, run_id = write(Path(args.output), log=args.log, customer=args.customer, task=args.task, days=args.days)
    if args.json:
        print(json.dumps({"file": str(out), "run_id": run_id, "experiment": EXPERIMENT if run_id else None}))
        return
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opens without network)")
    if run_id:
        print(f"logged as artifact {out.name} of run {run_id} in experiment {EXPERIMENT}")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics", help="the fleet view: every site's models and figures over time")
    group = p.add_subparsers(dest="metrics_command", required=True)

    s = group.add_parser("summary", help="one row per site model: champion, figures, latency, candidate, runs")
    s.add_argument("--customer")
    s.add_argument("--task")
    s.add_argument("--days", type=int, default=30, help="runs and failed runs counted over these days (30)")
    _add_tag_option(s, "only site models whose champion (its version, or the run that registered it) is, and runs "
                       "counted,")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_summary)

    t = group.add_parser("trend", help="a metric over time per site, from the runs that produced it")
    t.add_argument("--metric", default=DET_MAP50)
    t.add_argument("--customer")
    t.add_argument("--task")
    t.add_argument("--days", type=int, default=90)
    t.add_argument("--by", choices=["day", "week"], default="day")
    t.add_argument("--plot", metavar="FILE.png")
    _add_tag_option(t, "only runs")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_trend)

    c = group.add_parser("compare", help="a metric per architecture, backend, site or task: mean, best, count")
    c.add_argument("--by", choices=["architecture", "backend", "site", "task"], required=True)
    c.add_argument("--metric", default=DET_MAP50)
    c.add_argument("--latency", action="store_true", help="compare batch-1 p50 latency (lower is better)")
    c.add_argument("--customer")
    c.add_argument("--days", type=int, help="only runs that ended in the last N days")
    c.add_argument("--plot", metavar="FILE.png")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compare)

    e = group.add_parser("export", help="one row per run (and --history: per-step values) as Parquet or CSV")
    e.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    e.add_argument("-o", "--output", required=True, metavar="DIR")
    e.add_argument("--history", action="store_true", help="also history.{parquet,csv}: run_id, key, step, value")
    e.add_argument("--customer")
    _add_tag_option(e, "only runs")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_export)

    r = group.add_parser("report", help="one self-contained HTML page: summary, trends, accuracy vs latency")
    r.add_argument("-o", "--output", default="fleet.html", metavar="FILE.html")
    r.add_argument("--log", action="store_true", help="also record it as an artifact in experiment guardianflow/fleet")
    r.add_argument("--customer")
    r.add_argument("--task")
    r.add_argument("--days", type=int, default=30, help="runs and failed runs counted over these days (30)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_report)
