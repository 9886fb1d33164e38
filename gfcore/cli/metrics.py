"""The fleet view: `guardianflow metrics summary|trend|compare|export` (gfcore.fleet)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gfcore.cli.tables import COUNT, DAYS, FLAG, MS, RATE, WIDE_HELP, Column, describe, kind_of, short, table
from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import DET_MAP50, SYS_LATENCY_P50_MS

# `metrics summary`: what a person scans first has priority 0; the rest goes first when 120 columns are too few.
SUMMARY = [Column("site", priority=5), Column("model", cut=False), Column("task"), Column("champion", "champion"),
           Column("champion_days", "champion for", DAYS, 1), Column("det_mAP50", "mAP50", RATE),
           Column("det_mAP50_95", "mAP50-95", RATE, 2), Column("eval_split", "split", priority=4),
           Column("deployed", "serves", priority=3), Column("latency_p50_ms", "p50 ms", MS),
           Column("latency_p95_ms", "p95 ms", MS, 2), Column("hota", "HOTA", RATE, 3),
           Column("idf1", "IDF1", RATE, 4), Column("candidate", "candidate"),
           Column("candidate_verdict", "challenge", priority=1), Column("candidate_same_basis", "same basis", FLAG, 2),
           Column("data", "data", priority=5), Column("data_newer", "newer data", priority=5),
           Column("runs", "runs", COUNT, 2), Column("failed_runs", "failed", COUNT)]


def _print(rows: list[dict], columns: list[Column], empty: str, args: argparse.Namespace,
           title: str | None = None) -> None:
    """--json: the rows as they are (raw numbers); else a title line (what the figures are) and the table."""
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif not rows:
        print(empty)
    else:
        print((f"{title}\n" if title else "") + table(rows, columns, wide=args.wide))


def tag_args(given: list[str] | None) -> dict[str, str]:
    """`--tag K=V` (repeatable) as {K: V}: a scenario's own tags (`exp.tags`), every one required."""
    tags: dict[str, str] = {}
    for item in given or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--tag {item!r}: give a tag as NAME=VALUE, e.g. --tag purpose=baseline.")
        tags[key.strip()] = value
    return tags


METRICS_TEXT = """The fleet view, read from MLflow: every site's models and their figures over time.

examples:
  guardianflow metrics summary --customer donghwa-entec
  guardianflow metrics trend --metric det.mAP50 --by week --plot trend.png
  guardianflow metrics compare --by backend --latency
  guardianflow metrics export -o fleet/ --format csv --history
  guardianflow metrics report -o fleet.html --log"""
CUSTOMER_HELP = "only this customer's sites"
TASK_HELP = "only this task: ppe, fall, fire ..."
METRIC_HELP = "the metric, as the runs log it: det.mAP50, det.recall, sys.latency_p50_ms, mot.hota ..."
JSON_HELP = "print the rows as JSON"


def _add_tag_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--tag", action="append", metavar="K=V", help=f"{what} carrying tag K with value V (a "
                   "scenario's exp.tags, e.g. purpose=baseline); repeatable, all must match")


def cmd_summary(args: argparse.Namespace) -> None:
    from gfcore.fleet import queries

    rows = [r.as_dict() for r in queries.summary(args.customer, args.task, args.days, tag_args(args.tag))]
    if not args.json:  # a site with runs but no registered model is named in the model column
        rows = [{**r, "model": r["model"] or f"({r['site']}: runs only)"} for r in rows]
    _print(rows, SUMMARY,
           "no site has runs or registered models in this store yet: run `python -m guardianflow.full_pipeline`.",
           args, f"runs and failed: the last {args.days} days; p50 / p95 ms: batch-1 latency of what the site serves")
    if rows and not args.json:
        waiting = next((r for r in rows if r["candidate"] and not r["candidate_verdict"]), None)
        print(f"next: `guardianflow challenge {waiting['model']}` (its candidate v{waiting['candidate']} has no "
              "verdict yet)" if waiting else f"next: `guardianflow versions {rows[0]['model']}` for a model's "
              "versions, `guardianflow alerts list` for what needs attention")


def cmd_trend(args: argparse.Namespace) -> None:
    from gfcore.fleet import trends

    rows = trends.trend(args.metric, args.customer, args.task, args.days, args.by, tag_args(args.tag))
    kind, name = kind_of(args.metric), short(args.metric)
    _print(rows, [Column("site"), Column("task"), Column(args.by), Column(args.metric, f"{name} mean", kind),
                  Column("runs", "runs", COUNT), Column("last", f"{name} last run", kind)],
           f"no finished run logged {args.metric} in the last {args.days} days.", args,
           f"{describe(args.metric)} per {args.by}: the mean over the finished runs that ended that {args.by}, "
           "and the last one's value")
    if args.plot and rows:
        from gfcore.jobs.plots import fleet_trend

        print(f"wrote {fleet_trend(rows, args.metric, args.by, Path(args.plot))}", file=sys.stderr)


def cmd_compare(args: argparse.Namespace) -> None:
    from gfcore.fleet import trends

    metric = SYS_LATENCY_P50_MS if args.latency else args.metric
    rows = trends.compare(args.by, metric, args.days, args.customer, lower_is_better=args.latency)
    kind, name = kind_of(metric), short(metric)
    _print(rows, [Column(args.by), Column("mean", f"{name} mean", kind), Column("best", f"{name} best", kind),
                  Column("count", "runs", COUNT)], f"no finished run logged {metric}.", args,
           f"{describe(metric)} per {args.by}, over finished runs"
           + (f" of the last {args.days} days" if args.days else "") + "; best first")
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
    p = sub.add_parser("metrics", help="the fleet view: every site's models and figures over time",
                       description=METRICS_TEXT)
    group = p.add_subparsers(dest="metrics_command", required=True)

    s = group.add_parser("summary", help="one row per site model: champion, figures, latency, candidate, runs")
    s.add_argument("--customer", help=CUSTOMER_HELP)
    s.add_argument("--task", help=TASK_HELP)
    s.add_argument("--days", type=int, default=30, metavar="N", help="runs and failed runs counted over the last N days")
    _add_tag_option(s, "only site models whose champion (its version, or the run that registered it) is, and runs "
                       "counted,")
    s.add_argument("--json", action="store_true", help=JSON_HELP)
    s.add_argument("--wide", action="store_true", help=WIDE_HELP)
    s.set_defaults(func=cmd_summary)

    t = group.add_parser("trend", help="a metric over time per site, from the runs that produced it")
    t.add_argument("--metric", default=DET_MAP50, help=METRIC_HELP)
    t.add_argument("--customer", help=CUSTOMER_HELP)
    t.add_argument("--task", help=TASK_HELP)
    t.add_argument("--days", type=int, default=90, metavar="N", help="runs that ended in the last N days")
    t.add_argument("--by", choices=["day", "week"], default="day", help="one row per site, task and day or week")
    t.add_argument("--plot", metavar="FILE.png", help="also draw the trend into FILE.png")
    _add_tag_option(t, "only runs")
    t.add_argument("--json", action="store_true", help=JSON_HELP)
    t.add_argument("--wide", action="store_true", help=WIDE_HELP)
    t.set_defaults(func=cmd_trend)

    c = group.add_parser("compare", help="a metric per architecture, backend, site or task: mean, best, count")
    c.add_argument("--by", choices=["architecture", "backend", "site", "task"], required=True,
                   help="what the rows are")
    c.add_argument("--metric", default=DET_MAP50, help=METRIC_HELP)
    c.add_argument("--latency", action="store_true", help="compare batch-1 p50 latency in ms instead (lower is better)")
    c.add_argument("--customer", help=CUSTOMER_HELP)
    c.add_argument("--days", type=int, metavar="N", help="only runs that ended in the last N days (default: all)")
    c.add_argument("--plot", metavar="FILE.png", help="also draw the means as bars into FILE.png")
    c.add_argument("--json", action="store_true", help=JSON_HELP)
    c.add_argument("--wide", action="store_true", help=WIDE_HELP)
    c.set_defaults(func=cmd_compare)

    e = group.add_parser("export", help="one row per run (and --history: per-step values) as Parquet or CSV")
    e.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="the files' format")
    e.add_argument("-o", "--output", required=True, metavar="DIR", help="the folder to write runs.{parquet,csv} into")
    e.add_argument("--history", action="store_true", help="also history.{parquet,csv}: run_id, key, step, value")
    e.add_argument("--customer", help=CUSTOMER_HELP)
    _add_tag_option(e, "only runs")
    e.add_argument("--json", action="store_true", help="print the written files as a JSON list")
    e.set_defaults(func=cmd_export)

    r = group.add_parser("report", help="one self-contained HTML page: summary, trends, accuracy vs latency")
    r.add_argument("-o", "--output", default="fleet.html", metavar="FILE.html", help="the page to write")
    r.add_argument("--log", action="store_true", help="also record it as an artifact in experiment guardianflow/fleet")
    r.add_argument("--customer", help=CUSTOMER_HELP)
    r.add_argument("--task", help=TASK_HELP)
    r.add_argument("--days", type=int, default=30, metavar="N", help="runs and failed runs counted over the last N days")
    r.add_argument("--json", action="store_true", help="print the file and the run id as JSON")
    r.set_defaults(func=cmd_report)
