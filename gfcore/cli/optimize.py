"""Automatic improvement: what the fleet's records call for, and launching it."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from gfcore.cli.common import result_only_on_stdout, table


def cmd_optimize(args: argparse.Namespace) -> int:
    """Exit status 1 when an action failed (a launched run failed, or a promotion was refused)."""
    from gfcore.automation import optimize

    cfg = optimize.load_config(args.overrides)
    launch = args.optimize_command == "run" and not args.dry_run
    with result_only_on_stdout(args.json):
        outcome = optimize.optimize(cfg, launch=launch, model=args.model, record=not args.no_record)
    if args.json:
        print(json.dumps({"decisions": [asdict(d) for d in outcome.decisions], "run_id": outcome.run_id}, indent=2,
                         default=str))
    elif outcome.decisions:
        print(table([{"trigger": d.trigger, "model": d.model, "version": d.version or "-", "why": d.reason,
                      "action": d.action, "status": d.status + (f": {d.detail}" if d.detail else ""),
                      "runs": ", ".join(d.runs) or "-"} for d in outcome.decisions],
                    ["trigger", "model", "version", "why", "action", "status", "runs"]))
    else:
        print("nothing fired")
    if not args.json and outcome.run_id:
        print(f"recorded as run {outcome.run_id} in {optimize.EXPERIMENT}")
    return 1 if any(d.status in ("failed", "refused") for d in outcome.decisions) else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optimize", help="triggers over the fleet's records (conf/automation) that launch sweeps, "
                                        "quantization, retraining, challenges and promotions")
    group = p.add_subparsers(dest="optimize_command", required=True)
    for name, text in (("check", "say what would run and why; launch nothing"),
                       ("run", "launch what fired, outside cooldowns (each as `mlflow run`)")):
        c = group.add_parser(name, help=text)
        c.add_argument("overrides", nargs="*", help="Hydra overrides of conf/automation, e.g. auto_promote=true "
                                                    "triggers.low_accuracy.threshold=0.8")
        c.add_argument("--model", help="only this registered model (and its variants)")
        if name == "run":
            c.add_argument("--dry-run", action="store_true", help="as check: launch nothing")
        else:
            c.set_defaults(dry_run=True)
        c.add_argument("--no-record", action="store_true", help="do not record it in guardianflow/automation")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=cmd_optimize)
