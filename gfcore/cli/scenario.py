"""Scenarios without training: names, data, and launching or reproducing runs."""

from __future__ import annotations

import argparse
import json
import sys

from gfcore.cli.common import typed


def cmd_names(args: argparse.Namespace) -> None:
    """The MLflow names a scenario's runs and models get."""
    from gfcore import naming

    cfg = typed(args.overrides)
    base = naming.registered_model_name(cfg)
    names = {
        "experiment": naming.experiment_name(cfg.site),
        "train_run": naming.run_name(cfg, "train"),
        "registered_model": base,
        "variant_example": naming.variant_model_name(base, "openvino", "int8"),
    }
    print(json.dumps(names, indent=2) if args.json else "\n".join(f"{k:18} {v}" for k, v in names.items()))


def cmd_data(args: argparse.Namespace) -> None:
    """Generate (or find, or download) the scenario's dataset and print where it is and its hash; or, as
    `data push DATA_YAML s3://BUCKET/PREFIX/`, upload a YOLO dataset."""
    if args.overrides[:1] == ["push"]:
        return _push(args.overrides[1:])
    from gfcore.data.dataset import resolve_dataset
    from gfcore.yolo import env as yolo_env

    yolo_env.configure()
    cfg = typed(args.overrides)
    info = resolve_dataset(cfg.data, cfg.task)
    out = {"name": info.name, "data_yaml": str(info.data_yaml), "hash": info.hash, "classes": info.names,
           "images": info.counts, **({"source": info.source} if info.source else {})}
    print(json.dumps(out, indent=2))


def _push(argv: list[str]) -> None:
    from pathlib import Path

    from gfcore.cluster import s3data

    p = argparse.ArgumentParser(prog="guardianflow data push", description="upload a YOLO dataset (its splits' "
                                "images and labels, and its yaml with relative paths) to S3")
    p.add_argument("data_yaml", type=Path)
    p.add_argument("dest", help="s3://BUCKET/PREFIX/")
    args = p.parse_args(argv)
    if not s3data.is_s3(args.dest):
        from gfcore.errors import ConfigError

        raise ConfigError(f"{args.dest!r} is not an s3:// URI: write s3://BUCKET/PREFIX/.")
    result = s3data.push(args.data_yaml, args.dest)
    print(f"pushed {result['files']} files ({result['bytes'] / 2**20:.1f} MiB); use it with "
          f"data=yolo data.path={result['uri']}")


def cmd_reproduce(args: argparse.Namespace) -> None:
    """Rerun a past run with its logged config."""
    from gfcore.reproduce import reproduce

    code = reproduce(args.run_id, dry_run=args.dry_run)
    if code:
        sys.exit(code)


def cmd_run(args: argparse.Namespace) -> None:
    """An entry point as an MLflow Project run, in its site's experiment."""
    from gfcore.config import split_overrides
    from gfcore.reproduce import launch

    run_id = launch(args.entry, split_overrides(args.overrides), env_manager=args.env_manager)
    print(run_id)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("names", help="experiment, run and registered model names of a scenario")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. scenario=smoke site.zone=gate")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_names)

    p = sub.add_parser("data", help="generate, check or download a scenario's dataset and print its path and hash; "
                                    "`data push DATA_YAML s3://BUCKET/PREFIX/` uploads one")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. scenario=smoke data=yolo "
                                                "data.path=s3://datasets/yard/data.yaml; or push DATA_YAML S3_URI")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("reproduce", help="rerun a past run of any entry point with the config it logged")
    p.add_argument("run_id")
    p.add_argument("--dry-run", action="store_true", help="print the command, start nothing")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("run", help="launch an entry point as an MLflow Project run in its site's experiment",
                       description="e.g. guardianflow run train scenario=smoke train.epochs=5; "
                                   "guardianflow run quant scenario=demo quant.source_run_id=ID backend=onnx_int8")
    p.add_argument("entry", help="train, quant, infer, sweep, compare or full_pipeline")
    p.add_argument("overrides", nargs="*", help="scenario=NAME and Hydra overrides")
    p.add_argument("--env-manager", default="local", choices=["local", "virtualenv", "uv", "conda"])
    p.set_defaults(func=cmd_run)
