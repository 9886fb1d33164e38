"""Automatic improvement: what the fleet's records call for, and launching it."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict, replace
from typing import Any

from gfcore.cli.common import result_only_on_stdout
from gfcore.cli.tables import WIDE_HELP, Column, table

NOT_RUN = "not run: pass --yes to act (for cron)"
RUN_HELP = """Launch what fired, outside cooldowns (each as `mlflow run`). The plan (what fired, for which model, which
entry point it launches) is printed first; it is carried out only when confirmed at a terminal (`Go ahead? [y/N]`)
or with --yes. Without a terminal and without --yes (cron, a systemd timer) it prints the plan and `not run`, and
exits 2, so that a schedule missing --yes is noticed on its first night. Exit status: 0 done (or declined at the
prompt), 1 an action failed (a launched run failed, or a promotion was refused), 2 an unknown --model, a bad
override, or not confirmed."""
# `why`, `action` and `status` are cut to fit (--wide shows them whole); what is launched and for which model never is.
COLUMNS = [Column("trigger", cut=False), Column("model", cut=False), Column("version"), Column("why"),
           Column("action"), Column("launches", priority=2, cut=False), Column("status"),
           Column("runs", priority=1)]
PLAN = [replace(c, priority=0) for c in COLUMNS[:-1]]  # before it is confirmed, what it launches is never left out


def cmd_optimize(args: argparse.Namespace) -> int:
    """Exit status: 1 when an action failed (a launched run failed, or a promotion was refused); 2 when `run` was
    not confirmed without a terminal (RUN_HELP)."""
    from gfcore.automation import optimize

    cfg = optimize.load_config(args.overrides)
    if args.optimize_command == "check" or args.dry_run:
        with result_only_on_stdout(args.json):
            outcome = optimize.optimize(cfg, launch=False, model=args.model, record=not args.no_record)
        _show(outcome, args)
        return 0
    # `run`: the plan first (recording nothing), acted on only once confirmed.
    with result_only_on_stdout(args.json):
        plan = optimize.optimize(cfg, launch=False, model=args.model, record=False)
    if not args.yes and not sys.stdin.isatty():
        if args.json:
            _show(plan, args)
        else:
            _plan_table(plan, to=sys.stdout, wide=args.wide)
        print(f"guardianflow: {NOT_RUN}", file=sys.stderr)
        return 2
    acting = [d for d in plan.decisions if d.status == "would run"]
    _plan_table(plan, to=sys.stderr if args.json else sys.stdout, wide=args.wide)
    if acting and not args.yes and not _confirmed():
        print("not run: declined", file=sys.stderr)
        return 0
    with result_only_on_stdout(args.json):
        outcome = optimize.optimize(cfg, launch=True, model=args.model, record=not args.no_record,
                                    planned=plan.decisions)
    _show(outcome, args)
    return 1 if any(d.status in ("failed", "refused") for d in outcome.decisions) else 0


def _confirmed() -> bool:
    sys.stderr.write("Go ahead? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()  # "" at end of input: no
    return answer.strip().lower() in ("y", "yes")


def _rows(outcome: Any) -> list[dict[str, str]]:
    return [{"trigger": d.trigger, "model": d.model, "version": d.version or "-", "why": d.reason,
             "action": d.action, "launches": d.launches, "status": d.status + (f": {d.detail}" if d.detail else ""),
             "runs": ", ".join(d.runs) or "-"} for d in outcome.decisions]


def _plan_table(plan: Any, to: Any, wide: bool = False) -> None:
    if plan.decisions:
        print("plan:\n" + table(_rows(plan), PLAN, wide=wide), file=to)
    else:
        print("plan: nothing fired", file=to)


def _show(outcome: Any, args: argparse.Namespace) -> None:
    from gfcore.automation import optimize

    if args.json:
        print(json.dumps({"decisions": [asdict(d) for d in outcome.decisions], "run_id": outcome.run_id}, indent=2,
                         default=str))
        return
    print(table(_rows(outcome), COLUMNS, wide=args.wide) if outcome.decisions else "nothing fired")
    if outcome.run_id:
        print(f"recorded as run {outcome.run_id} in {optimize.EXPERIMENT}")
    if (args.optimize_command == "check" or args.dry_run) and any(d.status == "would run" for d in outcome.decisions):
        print(f"next: `{run_command(args.model, args.overrides)}` to launch what would run")


def run_command(model: str | None, overrides: list[str]) -> str:
    """The `optimize run --yes` that carries out what `check` planned: the same model and overrides."""
    return shlex.join(["guardianflow", "optimize", "run", "--yes", *(["--model", model] if model else []),
                       *overrides])


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optimize", help="triggers that launch sweeps, quant, retraining, promotions",
                       description="Triggers over the fleet's records (conf/automation) that launch sweeps, "
                                   "quantization, retraining, challenges and promotions.\n\nexamples:\n"
                                   "  guardianflow optimize check\n"
                                   "  guardianflow optimize run --model demo.local-plant1.yard.ppe --yes")
    group = p.add_subparsers(dest="optimize_command", required=True)
    for name, text, description in (
            ("check", "say what would run and why; launch nothing", None),
            ("run", "print the plan, then launch what fired once confirmed (a terminal's y, or --yes)", RUN_HELP)):
        c = group.add_parser(name, help=text, description=description or text)
        c.add_argument("overrides", nargs="*", help="Hydra overrides of conf/automation, e.g. auto_promote=true "
                                                    "triggers.low_accuracy.threshold=0.8")
        c.add_argument("--model", help="only this registered model (and its variants); `guardianflow models` "
                                       "lists them")
        if name == "run":
            c.add_argument("--dry-run", action="store_true", help="as check: launch nothing")
            c.add_argument("--yes", "-y", action="store_true",
                           help="act on the plan without asking (for cron and systemd timers)")
        else:
            c.set_defaults(dry_run=True, yes=False)
        c.add_argument("--no-record", action="store_true", help="do not record it in guardianflow/automation")
        c.add_argument("--json", action="store_true", help="print the plan (and what ran) as JSON")
        c.add_argument("--wide", action="store_true", help=WIDE_HELP)
        c.set_defaults(func=cmd_optimize)
