"""Challenger vs champion: measure a candidate version against the champion on the same data and machine.

`guardianflow challenge` is also the verb of the `challenge` entry point (gfcore/cli/verbs.py has the others): it
takes that entry point's arguments (`name=NAME candidate=V variant=B KEY=VALUE ...`) as well as its own
(`NAME --candidate V --variant B`); it measures in this process (a table or --json, exit 1 on `worse`), or with
`--launch` starts the entry point through the launcher as an MLflow Project run, as the other verbs do."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
from collections.abc import Sequence

from gfcore.core.errors import ConfigError

CHALLENGE_TEXT = """Measures the candidate against the champion on the same data and machine, back to back, in one
run, and tags the verdict on the candidate version: better or worse only when the 95 % intervals clear the
tolerances, else tie. Exit status 1 on worse.

examples:
  guardianflow challenge demo.local-plant1.yard.ppe
  guardianflow challenge demo.local-plant1.yard.ppe latency.runs=200 --candidate 3
  guardianflow challenge demo.local-plant1.yard.ppe --variant openvino_int8 --launch"""


def entry_arguments(args: argparse.Namespace) -> tuple[str, str | None, str | None, list[str]]:
    """(name, candidate, variant, overrides) from `NAME [--candidate V] [--variant B] [KEY=VALUE ...]` or from the
    challenge entry point's own arguments `name=NAME [candidate=V] [variant=B] [KEY=VALUE ...]`, mixed as given."""
    from gfcore.config import split_overrides

    given = {"candidate": args.candidate, "variant": args.variant}
    # KEY=VALUE words after an option (`NAME --candidate 3 latency.runs=400`) reach here as argparse's leftovers
    later = list(getattr(args, "unknown", None) or [])
    for word in later:
        if word.startswith("-"):
            raise ConfigError(f"challenge takes no option {word}; see `guardianflow challenge --help`")
    name, overrides = None, []
    for i, word in enumerate([args.name, *split_overrides([*args.overrides, *later])]):
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
    from gfcore.registry import client as registry
    from gfcore.yolo import env

    name, candidate, variant, overrides = entry_arguments(args)
    # A misspelled model or variant is refused (with "did you mean") before Ultralytics and torch load: seconds.
    registry.require_model(registry.mlflow_client(), f"{name}__{variant}" if variant else name)
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
    else:  # the table, then the verdict once, then what to do with it
        against = f"champion v{result.champion}" if result.champion else "no champion"
        print(result.table + "\n")
        print(f"{result.model}: candidate v{result.candidate} vs {against}: {result.verdict} "
              f"({'; '.join(result.reasons)}); run {result.run_id}")
        print(next_step(name, variant, result.candidate, result.champion, result.verdict,
                        [r.figure for r in result.readings if r.status() == "unclear"]))
    return 1 if result.verdict == "worse" else 0


def next_step(name: str, variant: str | None, candidate: str, champion: str | None, verdict: str | None,
              unclear: Sequence[str] = ()) -> str:
    """What to do with a verdict: promote a better (or unopposed) candidate; for a tie, what would decide it (more
    images for an unclear accuracy figure, more timed calls for latency) or promote anyway; for worse, keep the
    champion."""
    model = f"{name}__{variant}" if variant else name
    promote = f"guardianflow promote {model} --version {candidate}"
    kept = f"champion v{champion}" if champion else "the champion"
    if verdict == "better":
        return f"next: `{promote}` (it beat {kept})"
    if verdict == "unopposed":
        return f"next: `{promote}` (there is no champion to beat)"
    if verdict == "worse":
        return f"next: keep {kept}; train a better candidate, or pick another in `guardianflow versions {model}`"
    if verdict != "tie":
        return f"next: `guardianflow versions {model}` shows the verdict once the run has recorded it"
    if not unclear:
        return f"next: no figure differs beyond its tolerance: keep {kept}, or `{promote}` anyway"
    latency, accuracy = [f.startswith("sys.") for f in unclear], [not f.startswith("sys.") for f in unclear]
    more = " and ".join([w for w, on in (("images", any(accuracy)), ("timed calls", any(latency))) if on])
    again = shlex.join(["guardianflow", "challenge", name, "--candidate", candidate,
                        *(["--variant", variant] if variant else []), *(["data.path=BIGGER.yaml"] if any(accuracy)
                                                                          else []),
                        *(["latency.runs=400"] if any(latency) else [])])
    return f"next: to decide, rerun with more {more}: `{again}`; or `{promote}` anyway"


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
        print(next_step(name, variant, version, None, verdict))
    return 1 if verdict == "worse" else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("challenge", help="measure the candidate against the champion, back to back",
                       description=CHALLENGE_TEXT)
    p.add_argument("name", help="the registered model (the base name, e.g. acme.north-plant1.gate.ppe); or, as the "
                                "challenge entry point takes them, name=NAME candidate=V variant=BACKEND_PRECISION")
    p.add_argument("overrides", nargs="*", help="key=value changes to the candidate's logged scenario, e.g. "
                                                "data.path=/data/site/new.yaml or latency.runs=200")
    p.add_argument("--candidate", metavar="V", help="the version to challenge (default: the `candidate` alias)")
    p.add_argument("--variant", metavar="BACKEND_PRECISION",
                   help="challenge within a quantized variant's model, e.g. openvino_int8 (NAME__openvino_int8)")
    p.add_argument("--json", action="store_true", help="print the verdict and every figure as JSON")
    p.add_argument("--launch", action="store_true",
                   help="run it as the MLproject entry point `challenge` through the launcher (an MLflow Project run "
                        "in the candidate's experiment, as the other verbs and automation start it) instead of in "
                        "this process; prints the verdict the run tagged on the version")
    p.add_argument("--env-manager", default="local", choices=["local", "virtualenv", "uv", "conda"],
                   help="with --launch: how `mlflow run` makes the entry point's environment")
    p.set_defaults(func=cmd_challenge, unknown=[])
