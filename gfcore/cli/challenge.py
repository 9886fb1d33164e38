"""Challenger vs champion: measure a candidate version against the champion on the same data and machine."""

from __future__ import annotations

import argparse
import dataclasses
import json


def cmd_challenge(args: argparse.Namespace) -> int:
    """Exit status 1 when the verdict is `worse` (for scripts that gate on it)."""
    from gfcore.automation import challenge
    from gfcore.cli.common import result_only_on_stdout
    from gfcore.yolo import env

    env.configure()
    with result_only_on_stdout():
        result = challenge.challenge(args.name, candidate=args.candidate, variant=args.variant,
                                     overrides=args.overrides)
    if args.json:
        print(json.dumps({"model": result.model, "candidate": result.candidate, "champion": result.champion,
                          "verdict": result.verdict, "reasons": result.reasons, "run_id": result.run_id,
                          "figures": result.figures, "deltas": result.deltas,
                          "intervals": {k: dataclasses.asdict(v) for k, v in result.intervals.items()},
                          "read": {r.figure: r.status() for r in result.readings}}, indent=2))
    else:
        against = f"champion v{result.champion}" if result.champion else "no champion"
        print(result.table + "\n")
        print(f"{result.model}: candidate v{result.candidate} vs {against}: {result.verdict} "
              f"({'; '.join(result.reasons)}); run {result.run_id}")
    return 1 if result.verdict == "worse" else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("challenge", help="measure the candidate against the champion on the same data, back to "
                                         "back, in one run; the verdict (better / worse only when the 95 %% "
                                         "intervals clear the tolerances) is tagged on the candidate version")
    p.add_argument("name", help="the registered model (the base name, e.g. acme.north-plant1.gate.ppe)")
    p.add_argument("overrides", nargs="*", help="key=value changes to the candidate's logged scenario, e.g. "
                                                "data.path=/data/site/new.yaml or latency.runs=200")
    p.add_argument("--candidate", metavar="V", help="the version to challenge (default: the `candidate` alias)")
    p.add_argument("--variant", metavar="BACKEND_PRECISION",
                   help="challenge within a quantized variant's model, e.g. openvino_int8 (NAME__openvino_int8)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_challenge)
