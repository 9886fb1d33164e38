"""`guardianflow data`: a scenario's dataset (generated, found or downloaded) and `data push` to S3."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gfcore.cli.common import typed


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
    from gfcore.data import s3 as s3data

    p = argparse.ArgumentParser(prog="guardianflow data push", description="upload a YOLO dataset (its splits' "
                                "images and labels, and its yaml with relative paths) to S3")
    p.add_argument("data_yaml", type=Path)
    p.add_argument("dest", help="s3://BUCKET/PREFIX/")
    args = p.parse_args(argv)
    if not s3data.is_s3(args.dest):
        from gfcore.core.errors import ConfigError

        raise ConfigError(f"{args.dest!r} is not an s3:// URI: write s3://BUCKET/PREFIX/.")
    result = s3data.push(args.data_yaml, args.dest)
    print(f"pushed {result['files']} files ({result['bytes'] / 2**20:.1f} MiB); use it with "
          f"data=yolo data.path={result['uri']}")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate, check or download a scenario's dataset and print its path and hash; "
                                    "`data push DATA_YAML s3://BUCKET/PREFIX/` uploads one")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. scenario=smoke data=yolo "
                                                "data.path=s3://datasets/yard/data.yaml; or push DATA_YAML S3_URI")
    p.set_defaults(func=cmd_data)
