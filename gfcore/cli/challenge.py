"""Challenger vs champion: measure a candidate version against the champion on the same data and machine.

`guardianflow challenge` is also the verb of the `challenge` entry point (gfcore/cli/verbs.py has the others): it
takes that entry point's arguments (`name=NAME candidate=V variant=B KEY=VALUE ...`) as well as its own
(`NAME --candidate V --variant B`); it measures in this process (a table or --json, exit 1 on `worse`), or with
`--launch` starts the entry point through the launcher as an MLflow Project run, as the other verbs do."""

from __future__ import annotations

import argparse
import dataclasses
import json

from gfcore.core.errors import ConfigError


def entry_arguments(args: argparse.Namespace) -> tuple[str, str | None, str | None, list[str]]:
    """(name, candidate, variant, overrides) from `NAME [--candidate V] [--variant B] [KEY=VALUE ...]` or from the
    challenge entry point's own arguments `name=NAME [candidate=V] [variant=B] [KEY=VALUE ...]`, mixed as given."""
    from gfcore.config import split_overrides

    given = {"candidate": args.candidate, "variant": args.variant}
    name, overrides = None, []
    for i, word in enumerate([args.name, *split_overrides(args.overrides)]):
        key, eq, value = word.partition("=")
        if i == 0 and not eq:
            name = word
        elif eq and key in ("name", "candidate", "variant"):
            previous = name if key == "name" else given[key]
            if previous not in (None, "", value):
                raise ConfigError(f"challenge: {key} given twice ({previous} and {value}): give it once.")
            if key == "name":
                name = value
            else:
                given[key] = value or None
        else:
            overrides.append(word)
    if not name:
        raise ConfigError("challenge: which registered model? Give NAME (or name=NAME), e.g. "
                          "`guardianflow challenge acme.north-plant1.gate.ppe`; `guardianflow models` lists them.")
    return name, given["candidate"], given["variant"], overrides


def cmd_challenge(args: argparse.Namespace) -> int:
    """Exit status 1 when the verdict is `worse` (for scripts that gate on it)."""
    from gfcore.automation import challenge
    from gfcore.cli.common import result_only_on_stdout
    from gfcore.yolo import env

    name, candidate, variant, overrides = entry_arguments(args)
    if args.launch:
        return _launched(args, name, candidate, variant, overrides)
    env.configure()
    with result_only_on_stdout():
        result = challenge.challenge(name, candidate=candidate, variant=variant, overrides=overrides)
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


def _launched(args: argparse.Namespace, name: str, candidate: str | None, variant: str | None,
              overrides: list[str]) -> int:
    """The challenge entry point through the launcher (`mlflow run -e challenge`), like the other verbs."""
    from gfcore.cli.common import result_only_on_stdout
    from gfcore.cli.verbs import launch_challenge

    with result_only_on_stdout():
        run_id, version, verdict = launch_challenge(name, candidate, variant, overrides, args.env_manager)
    model = f"{name}__{variant}" if variant else name
    if args.json:
        print(json.dumps({"model": model, "candidate": version, "verdict": verdict, "run_id": run_id}, indent=2))
    else:
        print(f"{model}: candidate v{version}: {verdict or 'no verdict recorded'}; run {run_id}")
    return 1 if verdict == "worse" else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("challenge", help="measure the candidate against the champion on the same data, back to "
                                         "back, in one run; the verdict (better / worse only when the 95 %% "
                                         "intervals clear the tolerances) is tagged on the candidate version")
    p.add_argument("name", help="the registered model (the base name, e.g. acme.north-plant1.gate.ppe); or, as the "
                                "challenge entry point takes them, name=NAME candidate=V variant=BACKEND_PRECISION")
    p.add_argument("overrides", nargs="*", help="key=value changes to the candidate's logged scenario, e.g. "
                                                "data.path=/data/site/new.yaml or latency.runs=200")
    p.add_argument("--candidate", metavar="V", help="the version to challenge (default: the `candidate` alias)")
    p.add_argument("--variant", metavar="BACKEND_PRECISION",
                   help="challenge within a quantized variant's model, e.g. openvino_int8 (NAME__openvino_int8)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--launch", action="store_true",
                   help="run it as the MLproject entry point `challenge` through the launcher (an MLflow Project run "
                        "in the candidate's experiment, as the other verbs and automation start it) instead of in "
                        "this process; prints the verdict the run tagged on the version")
    p.add_argument("--env-manager", default="local", choices=["local", "virtualenv", "uv", "conda"],
                   help="with --launch: how `mlflow run` makes the entry point's environment")
    p.set_defaults(func=cmd_challenge)
