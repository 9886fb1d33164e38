"""The `guardianflow` command: the entry points as verbs (train, quant, infer, sweep, compare, pipeline,
challenge), scenarios, data, the model registry, the fleet, MOT scoring, old folders and the stack. One module per
command group; this one wires them."""

from __future__ import annotations

import argparse
import re
import sys
from importlib import import_module

from gfcore import __version__
from gfcore.cli.helptext import EXAMPLES, Parser, overview
from gfcore.core.errors import GuardianFlowError

GROUPS = ("verbs", "run", "sync", "data", "experiments", "registry", "challenge", "metrics", "alerts", "optimize",
          "eval_mot", "wrap", "stack", "site")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="guardianflow", usage="%(prog)s [OPTIONS] COMMAND [ARGS ...]", epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"guardianflow {__version__}")
    parser.add_argument("--verbose", action="store_true", help="show everything: MLflow's download bars and the "
                                                               "warnings hidden by default (default: off)")
    # each command is listed once, in its group (the description), not also as argparse's {a,b,...} and list
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS,
                                prog="guardianflow")
    for group in GROUPS:
        import_module(f"gfcore.cli.{group}").add_commands(sub)
    parser.description = overview({choice.dest: choice.help for choice in sub._choices_actions})
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

    from gfcore.core import quiet

    argv = sys.argv[1:] if argv is None else list(argv)
    # --verbose anywhere on the line (as kubectl takes its global flags), and before anything imports MLflow or torch
    end = argv.index("--") if "--" in argv else len(argv)  # after `--`, words are someone else's
    verbose = "--verbose" in argv[:end]
    quiet.defaults(show_all=verbose)
    parser = build_parser()
    args, unknown = parser.parse_known_args(["--verbose"] * verbose + [a for a in argv[:end] if a != "--verbose"]
                                            + argv[end:])
    if unknown:  # a command that explains what it takes instead (the verbs) sets `unknown`; the others refuse here
        if not hasattr(args, "unknown"):
            words = [args.command] + [v for k, v in vars(args).items() if k.endswith("_command") and v]
            parser.prog = " ".join(["guardianflow", *words])  # the help to read is the command's own
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.unknown = unknown
    try:
        code = args.func(args)  # a command returns an exit status where it has one of its own
    except (GuardianFlowError, HydraException, OmegaConfBaseException) as exc:
        print(f"guardianflow: error: {_said(exc, getattr(args, 'overrides', None) or [])}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("guardianflow: stopped (Ctrl-C or SIGTERM)", file=sys.stderr)
        return 130
    return code or 0


_OMEGACONF_DETAIL = re.compile(r"^\s*(full_key|reference_type|object_type)[:=]|^To append to your config use \+")


def _said(exc: BaseException, overrides: list[str]) -> str:
    """What went wrong: Hydra's and OmegaConf's errors in one line (gfcore.config.explain), the others with their
    cause, without OmegaConf's `full_key: ...` block."""
    if not isinstance(exc, GuardianFlowError):
        from gfcore.config import explain, split_overrides

        said = explain.one_line(exc, split_overrides(overrides) if isinstance(overrides, list) else [])
        if said:
            return said
    text = str(exc).strip()
    cause = str(exc.__cause__).strip() if exc.__cause__ else ""
    if cause and cause not in text:
        text += "\n" + cause
    return "\n".join(line for line in text.splitlines() if not _OMEGACONF_DETAIL.match(line)).strip()
