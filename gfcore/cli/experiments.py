"""`guardianflow experiments`: the site experiments with their runs, newest run and registered models
(gfcore.fleet.experiments)."""

from __future__ import annotations

import argparse
import json

from gfcore.cli.tables import COUNT, WIDE_HELP, Column, table

COLUMNS = [Column("experiment", cut=False), Column("runs", kind=COUNT), Column("failed", kind=COUNT),
           Column("newest run (UTC)", priority=1), Column("registered models")]


def cmd_experiments(args: argparse.Namespace) -> None:
    from gfcore.fleet.experiments import site_experiments

    rows = site_experiments(args.customer)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    if not rows:
        print("no site experiment in this store yet: start one with `guardianflow train scenario=smoke`.")
        return
    cells = [{"experiment": r.experiment, "runs": r.runs, "failed": r.failed_runs, "newest run (UTC)": r.newest_run,
              "registered models": ", ".join(r.registered_models)} for r in rows]
    print(table(cells, COLUMNS, wide=args.wide))
    named = next((m for r in rows for m in r.registered_models), None)
    print(f"next: `guardianflow models --name {named.rsplit('.', 1)[0] if named else 'PATTERN'}` for a site's "
          "models, `guardianflow metrics summary` for their figures")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiments", help="site experiments: runs, failures, newest run, models",
                       description="The site experiments: runs, failed runs, the newest run and the registered "
                                   "models of each.")
    p.add_argument("--customer", help="only this customer's sites")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--wide", action="store_true", help=WIDE_HELP)
    p.set_defaults(func=cmd_experiments)
