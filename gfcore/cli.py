"""The `guardianflow` command: looking at scenarios and data without training."""

from __future__ import annotations

import argparse
import json
import sys

from gfcore import __version__
from gfcore.errors import GuardianFlowError


def _typed(overrides: list[str]):
    from gfcore.config import compose, split_overrides, to_typed

    return to_typed(compose(split_overrides(overrides)))


def cmd_names(args: argparse.Namespace) -> None:
    """The MLflow names a scenario's runs and models get."""
    from gfcore import naming

    cfg = _typed(args.overrides)
    base = naming.registered_model_name(cfg)
    names = {
        "experiment": naming.experiment_name(cfg.site),
        "train_run": naming.run_name(cfg, "train"),
        "registered_model": base,
        "variant_example": naming.variant_model_name(base, "openvino", "int8"),
    }
    print(json.dumps(names, indent=2) if args.json else "\n".join(f"{k:18} {v}" for k, v in names.items()))


def cmd_data(args: argparse.Namespace) -> None:
    """Generate (or find) the scenario's dataset and print where it is and its hash."""
    from gfcore.data.dataset import resolve_dataset
    from gfcore.yolo import env as yolo_env

    yolo_env.configure()
    cfg = _typed(args.overrides)
    info = resolve_dataset(cfg.data, cfg.task)
    out = {"name": info.name, "data_yaml": str(info.data_yaml), "hash": info.hash, "classes": info.names,
           "images": info.counts}
    print(json.dumps(out, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guardianflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"guardianflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("names", help="experiment, run and registered model names of a scenario")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. scenario=smoke site.zone=gate")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_names)

    p = sub.add_parser("data", help="generate or check a scenario's dataset; print its path and hash")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. scenario=smoke")
    p.set_defaults(func=cmd_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (GuardianFlowError, HydraException, OmegaConfBaseException) as exc:
        # Hydra's composition errors (unknown option, wrong type) already say what is wrong.
        cause = f"\n{exc.__cause__}" if exc.__cause__ else ""
        print(f"guardianflow: error: {exc}{cause}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
