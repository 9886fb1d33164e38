"""`guardianflow sync`: send what runs left in their journals (an outage, an offline box) to the server."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from gfcore.cli.tables import table


def cmd_sync(args: argparse.Namespace) -> int:
    """Exit 1 when something could not be sent (the server did not answer, a run was deleted, a journal is busy)."""
    import logging

    from gfcore.tracking.journal import sync
    from gfcore.tracking.offline.publish import publish_pending

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    results = [asdict(r) for r in sync.sync(run_id=args.run, dry_run=args.dry_run)]
    published = publish_pending(run_id=args.run, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"journals": results, "offline": [asdict(p) for p in published]}, indent=2))
    elif not results and not published:
        print("nothing to send: every run's records are on its server" + (f" (run {args.run})" if args.run else ""))
    else:
        rows = [{"run": r["run_id"], "server": r["tracking_uri"], "pending": r["pending"], "sent": r["sent"],
                 "outcome": r["outcome"]} for r in results]
        rows += [{"run": p.offline_run_id, "server": p.tracking_uri, "pending": "offline run",
                  "sent": p.published_run_id or "-", "outcome": p.outcome} for p in published]
        print(table(rows, ["run", "server", "pending", "sent", "outcome"]))
        for r in results:
            if r["detail"]:
                print(f"run {r['run_id']}: {r['detail']}")
        for p in published:
            if p.detail:
                print(f"offline run {p.offline_run_id}: {p.detail}")
    failed = [r for r in results if r["outcome"] in ("busy", "run deleted", "unreachable")]
    failed += [p for p in published if p.outcome == "failed"]
    return 1 if failed else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sync", help="send journaled records and offline runs to the server",
                       description="Sends what runs left in their local journals ($GF_JOURNAL_DIR) while their "
                                   "server did not answer, then publishes ended offline runs ($GF_OFFLINE_DIR) on "
                                   "MLFLOW_TRACKING_URI. Every GuardianFlow command that reaches a server sends its "
                                   "pending journals first; this does it on demand. Exit 1 when something could not "
                                   "be sent.")
    p.add_argument("--run", metavar="RUN_ID", help="only this run")
    p.add_argument("--dry-run", action="store_true", help="say what would be sent; send nothing")
    p.add_argument("--json", action="store_true", help="the outcome per run as JSON")
    p.set_defaults(func=cmd_sync)
