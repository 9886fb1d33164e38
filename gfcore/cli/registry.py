"""The model registry: models, versions, promote, rollback, custom aliases."""

from __future__ import annotations

import argparse
import fnmatch
import json
from dataclasses import asdict

from gfcore.cli.common import fmt, table
from gfcore.core.vocabulary import DET_MAP50, DET_MAP50_95, SYS_LATENCY_P50_MS, SYSTEM


def matches(name: str, pattern: str) -> bool:
    """`--name`: a glob (`*.welding.*`) when it has one of * ? [, else a substring; case-insensitive."""
    name, pattern = name.lower(), pattern.lower()
    return fnmatch.fnmatchcase(name, pattern) if any(ch in pattern for ch in "*?[") else pattern in name


def cmd_models(args: argparse.Namespace) -> None:
    from gfcore.registry import lifecycle

    models = lifecycle.list_models(customer=args.customer, task=args.task)
    everything = len(models)
    if args.name:
        models = [m for m in models if matches(m.name, args.name)]
    if args.json:
        print(json.dumps([asdict(m) for m in models], indent=2))
        return
    rows = [{"name": m.name, "champion": m.aliases.get("champion"), "candidate": m.aliases.get("candidate"),
             "rollback": m.aliases.get("rollback"), "champion det.mAP50": fmt(m.champion_metrics.get(DET_MAP50)),
             "det.mAP50_95": fmt(m.champion_metrics.get(DET_MAP50_95)),
             "latency_p50_ms": fmt(m.champion_metrics.get(SYS_LATENCY_P50_MS)), "path": m.path} for m in models]
    if not rows:
        print(f"no registered model's name matches {args.name!r} ({everything} registered: `guardianflow models` "
              "lists them)" if args.name and everything else "no registered models")
        return
    print(table(rows, ["name", "champion", "candidate", "rollback", "champion det.mAP50", "det.mAP50_95",
                       "latency_p50_ms", "path"]))
    print(f"next: `guardianflow versions {rows[0]['name']}` for its versions and their figures, "
          f"`guardianflow promote {rows[0]['name']}` to make its candidate the champion")


def cmd_versions(args: argparse.Namespace) -> None:
    from gfcore.registry import lifecycle

    versions = lifecycle.list_versions(args.name)
    if args.json:
        out = [{**asdict(v), "metrics": {k: x for k, x in v.metrics.items() if not k.startswith(SYSTEM)}}
               for v in versions]
        print(json.dumps(out, indent=2))
        return
    rows = [{"version": v.version, "aliases": ",".join(v.aliases), "run_id": v.run_id,
             "det.mAP50": fmt(v.metrics.get(DET_MAP50)), "det.mAP50_95": fmt(v.metrics.get(DET_MAP50_95)),
             "backend": v.backend, "precision": v.precision, "created (UTC)": v.created}
            for v in versions]
    print(table(rows, ["version", "aliases", "run_id", "det.mAP50", "det.mAP50_95", "backend", "precision",
                       "created (UTC)"]))


def cmd_promote(args: argparse.Namespace) -> None:
    from gfcore.automation.promotion import promote

    result = promote(args.name, version=args.version, requires=args.require, challenge=args.challenge)
    if args.json:
        print(json.dumps(result))
    elif not result["changed"]:
        print(f"{args.name}: version {result['champion']} is already the champion; nothing changed.")
    else:
        print(f"{args.name}: version {result['champion']} is now the champion"
              + (f"; version {result['rollback']} is the rollback." if result["rollback"] else "."))
        for line in result["gates"]:
            print(f"  gate passed: {line}")
        if result["challenge_run_id"]:
            print(f"  gates on `champion` read challenge run {result['challenge_run_id']}")


def cmd_rollback(args: argparse.Namespace) -> None:
    from gfcore.registry import lifecycle

    result = lifecycle.rollback(args.name)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.name}: version {result['champion']} is the champion again"
              + (f"; version {result['candidate']} is back to candidate." if result["candidate"] else "."))


def cmd_alias(args: argparse.Namespace) -> None:
    from gfcore.registry import lifecycle

    result = lifecycle.set_alias(args.name, args.alias, args.version)
    print(json.dumps(result) if args.json else f"{args.name}@{args.alias} -> version {args.version}")


def _command(sub: argparse._SubParsersAction, name: str, help: str, func, *positional: str) -> argparse.ArgumentParser:
    """A registry command: its positional arguments (the model name first) and --json."""
    p = sub.add_parser(name, help=help)
    for arg in positional:
        p.add_argument(arg)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=func)
    return p


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "models", "registered models with their champion / candidate / rollback versions", cmd_models)
    p.add_argument("--name", metavar="PATTERN", help="only models whose name matches: a glob (*.welding.*) or a "
                                                     "substring (busan), case-insensitive")
    p.add_argument("--customer")
    p.add_argument("--task")
    _command(sub, "versions", "every version of a registered model, with aliases and metrics", cmd_versions, "name")
    p = _command(sub, "promote", "make the candidate (or --version) the champion, behind --require gates",
                 cmd_promote, "name")
    p.add_argument("--version")
    p.add_argument("--require", action="append", default=[], metavar="GATE",
                   help="e.g. 'det.mAP50>=0.8' (the version's run metrics) or 'det.mAP50>=champion-0.005', "
                        "'sys.latency_p95_ms<=champion*1.10' (a challenge against the champion); repeatable")
    p.add_argument("--challenge", action="store_true",
                   help="run the challenge that gates on `champion` need when there is none yet")
    _command(sub, "rollback", "make the rollback version the champion again", cmd_rollback, "name")
    _command(sub, "alias", "point a custom alias (not champion/candidate/rollback) at a version", cmd_alias,
             "name", "alias", "version")
