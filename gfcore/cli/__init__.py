"""The `guardianflow` command: the entry points as verbs (train, quant, infer, sweep, compare, pipeline,
challenge), scenarios, data, the model registry, the fleet, MOT scoring, old folders and the stack. One module per
command group; this one wires them."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from gfcore import __version__
from gfcore.core.errors import GuardianFlowError

GROUPS = ("verbs", "run", "sync", "data", "experiments", "registry", "challenge", "metrics", "alerts", "optimize",
          "eval_mot", "wrap", "stack", "site")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guardianflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"guardianflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        import_module(f"gfcore.cli.{group}").add_commands(sub)
    return parser


def console() -> int:
    """The `guardianflow` executable: `main` in a process of its own (gfcore.core.gcpolicy)."""
    from gfcore.core import gcpolicy

    gcpolicy.starting()
    try:
        return main()
    finally:
        gcpolicy.exiting()


def main(argv: list[str] | None = None) -> int:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # a command that explains what it takes instead (the verbs) sets `unknown`; the others refuse here
        if not hasattr(args, "unknown"):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.unknown = unknown
    try:
        code = args.func(args)  # a command returns an exit status where it has one of its own
    except (GuardianFlowError, HydraException, OmegaConfBaseException) as exc:
        # Hydra's composition errors (unknown option, wrong type) already say what is wrong.
        cause = f"\n{exc.__cause__}" if exc.__cause__ else ""
        print(f"guardianflow: error: {exc}{cause}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("guardianflow: stopped (Ctrl-C or SIGTERM)", file=sys.stderr)
        return 130
    return code or 0
