"""The model registry: models, versions, promote, rollback, custom aliases."""

from __future__ import annotations

import argparse
import fnmatch
import json
from dataclasses import asdict

from gfcore.cli.tables import MB, MS, RATE, WIDE_HELP, Column, table
from gfcore.core.vocabulary import (
    DET_MAP50,
    DET_MAP50_95,
    SYS_LATENCY_P50_MS,
    SYS_LATENCY_P95_MS,
    SYS_MODEL_SIZE_MB,
    SYSTEM,
)

MODELS = [Column("name", cut=False), Column("champion"), Column("candidate"), Column("rollback", priority=1),
          Column(DET_MAP50, "mAP50", RATE), Column(DET_MAP50_95, "mAP50-95", RATE, 2),
          Column(SYS_LATENCY_P50_MS, "p50 ms", MS), Column("path", priority=3)]
VERSIONS = [Column("version"), Column("aliases"), Column(DET_MAP50, "mAP50", RATE),
            Column(DET_MAP50_95, "mAP50-95", RATE, 2), Column(SYS_LATENCY_P50_MS, "p50 ms", MS),
            Column(SYS_LATENCY_P95_MS, "p95 ms", MS, 2), Column(SYS_MODEL_SIZE_MB, "size MB", MB, 3),
            Column("challenge"), Column("variant", priority=1), Column("created", "created (UTC)", priority=2),
            Column("run_id", "run", priority=3)]


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
             "rollback": m.aliases.get("rollback"), **m.champion_metrics, "path": m.path} for m in models]
    if not rows:
        print(f"no registered model's name matches {args.name!r} ({everything} registered: `guardianflow models` "
              "lists them)" if args.name and everything else "no registered models")
        return
    print("mAP50, mAP50-95, p50 ms (batch-1 latency): the champion's, on its evaluation split")
    print(table(rows, MODELS, wide=args.wide))
    print(f"next: `guardianflow versions {rows[0]['name']}` for its versions, figures and challenge verdicts")


def cmd_versions(args: argparse.Namespace) -> None:
    from gfcore.registry import lifecycle

    versions = lifecycle.list_versions(args.name)
    if args.json:  # numbers as numbers: the figures once (raw), not again as the tags' rounded strings
        out = [{**asdict(v), "metrics": {k: x for k, x in v.metrics.items() if not k.startswith(SYSTEM)},
                "tags": {k: x for k, x in v.tags.items() if k not in v.figures},
                "verdict": v.verdict, "verdict_against": v.verdict_against} for v in versions]
        print(json.dumps(out, indent=2))
        return
    rows = [{"version": v.version, "aliases": ",".join(v.aliases), "run_id": v.run_id,
             **{k: x for k, x in v.metrics.items() if k in (c.key for c in VERSIONS)}, **v.figures,
             "challenge": challenge_cell(v.verdict, v.verdict_against),
             "variant": " ".join(x for x in (v.backend, v.precision) if x) or None, "created": v.created}
            for v in versions]
    print(table(rows, VERSIONS, wide=args.wide))
    print(versions_next(args.name, versions))


def challenge_cell(verdict: str | None, against: str | None) -> str | None:
    """`better vs v1`; `unopposed` (measured alone); None without a challenge."""
    if not verdict:
        return None
    return verdict if not against or against == "none" else f"{verdict} vs v{against}"


def versions_next(name: str, versions: list) -> str:
    """The next command: challenge a candidate without a verdict against the champion, promote a better one."""
    by_alias = {a: v for v in versions for a in v.aliases}
    cand, champ = by_alias.get("candidate"), by_alias.get("champion")
    if cand is not None and champ is not None and cand.verdict_against != champ.version:
        return f"next: `guardianflow challenge {name}` (candidate v{cand.version} against champion v{champ.version})"
    if cand is not None and (champ is None or cand.verdict == "better"):
        return f"next: `guardianflow promote {name} --version {cand.version}`"
    if cand is not None and cand.verdict == "tie":
        return (f"next: v{cand.version} tied: `guardianflow challenge {name}` with more data to decide, or "
                f"`guardianflow promote {name} --version {cand.version}` anyway")
    if cand is not None and cand.verdict == "worse":
        return f"next: keep champion v{champ.version}: candidate v{cand.version} lost its challenge"
    return "next: `guardianflow metrics summary` for every site's champion, `guardianflow models` for the models"


def cmd_promote(args: argparse.Namespace) -> None:
    from gfcore.registry import client as registry

    registry.require_model(registry.mlflow_client(), args.name)  # refused before the promotion's modules load
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


POSITIONAL_HELP = {"name": "the registered model, e.g. demo.local-plant1.yard.ppe (`guardianflow models` lists them)",
                   "alias": "the alias to set, e.g. edge-box-3",
                   "version": "the version it points at, e.g. 4"}
PROMOTE_TEXT = """Makes the candidate (or --version) the champion; the champion before it becomes `rollback`. Every
--require gate must hold first: a gate on a number reads the version's run metrics, a gate on `champion` reads
the latest challenge of the version against the champion (on the same data; --challenge runs it when there is none).

examples:
  guardianflow promote demo.local-plant1.yard.ppe --require 'det.mAP50>=0.8'
  guardianflow promote demo.local-plant1.yard.ppe --challenge --require 'det.mAP50>=champion-0.005'
  guardianflow promote demo.local-plant1.yard.ppe --version 3"""


def _command(sub: argparse._SubParsersAction, name: str, help: str, func, *positional: str,
             description: str | None = None) -> argparse.ArgumentParser:
    """A registry command: its positional arguments (the model name first) and --json."""
    p = sub.add_parser(name, help=help, description=description)
    for arg in positional:
        p.add_argument(arg, help=POSITIONAL_HELP[arg])
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=func)
    return p


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "models", "registered models with champion, candidate, rollback", cmd_models,
                 description="Registered models with their champion, candidate and rollback versions.")
    p.add_argument("--name", metavar="PATTERN", help="only models whose name matches: a glob (*.welding.*) or a "
                                                     "substring (busan), case-insensitive")
    p.add_argument("--customer", help="only this customer's models")
    p.add_argument("--task", help="only models of this task: ppe, fall, fire ...")
    p.add_argument("--wide", action="store_true", help=WIDE_HELP)
    p = _command(sub, "versions", "every version of a model: aliases, figures, challenge verdict",
                 cmd_versions, "name")
    p.add_argument("--wide", action="store_true", help=WIDE_HELP)
    p = _command(sub, "promote", "make the candidate the champion, behind --require gates", cmd_promote, "name",
                 description=PROMOTE_TEXT)
    p.add_argument("--version", help="the version to promote (default: the `candidate` alias)")
    p.add_argument("--require", action="append", default=[], metavar="GATE",
                   help="e.g. 'det.mAP50>=0.8' (the version's run metrics) or 'det.mAP50>=champion-0.005', "
                        "'sys.latency_p95_ms<=champion*1.10' (a challenge against the champion); repeatable")
    p.add_argument("--challenge", action="store_true",
                   help="run the challenge that gates on `champion` need when there is none yet")
    _command(sub, "rollback", "make the rollback version the champion again", cmd_rollback, "name")
    _command(sub, "alias", "point a custom alias at a version", cmd_alias, "name", "alias", "version",
             description="Points a custom alias (not champion, candidate or rollback, which promote and rollback "
                         "move) at a version.")
