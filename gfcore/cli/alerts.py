"""Alerts: evaluate the rules on the fleet, record the evaluation, notify what changed."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from gfcore.cli.tables import WIDE_HELP, Column, table

if TYPE_CHECKING:
    from gfcore.automation.rules import Alert

COLUMNS = [Column("severity", cut=False), Column("rule", cut=False), Column("site", priority=2),
           Column("model", cut=False), Column("version"), Column("alert")]


def cmd_list(args: argparse.Namespace) -> int:
    """Exit status 1 when an alert at or above --fail-on is open."""
    from gfcore.automation import alerts
    from gfcore.automation.rules import SEVERITIES

    cfg = alerts.load_rules(args.overrides)
    result = alerts.evaluate(cfg, notify=args.notify, record=not args.no_record, days=args.days)
    if args.json:
        print(json.dumps({"open": [a.as_dict() for a in result.open], "new": [a.key for a in result.new],
                          "resolved": [r["key"] for r in result.resolved], "run_id": result.run_id,
                          "notified": result.notified}, indent=2, default=str))
    elif result.open:
        print(table([{"severity": a.severity, "rule": a.rule, "site": a.site, "model": a.model,
                      "version": a.version, "alert": a.message} for a in result.open], COLUMNS, wide=args.wide))
    else:
        print("no open alerts")
    if not args.json:
        print(f"{len(result.new)} new, {len(result.resolved)} resolved since the last evaluation"
              + (f"; recorded as run {result.run_id} in {alerts.EXPERIMENT}" if result.run_id else ""))
        if result.open:
            print(next_step(result.open[0]))
    worst, order = result.worst(), SEVERITIES
    return 1 if args.fail_on and worst and order.index(worst) >= order.index(args.fail_on) else 0


def next_step(alert: Alert) -> str:
    """The command that acts on an open alert, by its rule's kind (gfcore.automation.rules)."""
    model, base = alert.model, (alert.model or "").split("__")[0]
    if not model:
        command, why = f"guardianflow experiments --customer {alert.site.split('/')[0]}", "the site's runs"
    elif alert.kind == "candidate_worse":
        command, why = f"guardianflow versions {model}", "its candidate lost the challenge: train or pick another"
    elif alert.kind == "tracking_drop":
        command, why = f"guardianflow rollback {model}", "serve the previous champion again"
    elif alert.kind == "failed_runs":
        command, why = f"guardianflow experiments --customer {alert.site.split('/')[0]}", "which runs failed"
    else:  # champion_below, latency_over_budget, stale_champion: what automation would launch for it
        command, why = f"guardianflow optimize check --model {base}", "what would fix it: sweep, quantize, retrain"
    return f"next: `{command}` ({why})"


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="alert rules over the fleet: what is wrong, and where",
                       description="Alert rules over the fleet (conf/alerts, overridable per site): what is wrong at "
                                   "which site, recorded in MLflow, and notifications.\n\nexamples:\n"
                                   "  guardianflow alerts list\n"
                                   "  guardianflow alerts list rules.low_accuracy.threshold=0.8 --fail-on critical\n"
                                   "  guardianflow alerts list --notify")
    group = p.add_subparsers(dest="alerts_command", required=True)
    lst = group.add_parser("list", help="evaluate the rules (conf/alerts/default.yaml) and list the open alerts")
    lst.add_argument("overrides", nargs="*", help="Hydra overrides of the rules, e.g. rules.low_accuracy.threshold=0.8")
    lst.add_argument("--notify", action="store_true",
                     help="send what is new or resolved since the last notified evaluation to $GF_ALERT_WEBHOOK_URL")
    lst.add_argument("--fail-on", choices=["warning", "critical"],
                     help="exit 1 when an alert of this severity or worse is open (for cron and CI)")
    lst.add_argument("--days", type=int, default=30, metavar="N", help="failed runs counted over the last N days")
    lst.add_argument("--no-record", action="store_true", help="do not record the evaluation in MLflow")
    lst.add_argument("--json", action="store_true", help="print the alerts as JSON")
    lst.add_argument("--wide", action="store_true", help=WIDE_HELP)
    lst.set_defaults(func=cmd_list)
