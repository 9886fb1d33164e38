"""`guardianflow data`: a scenario's dataset (generated, found or downloaded), and dataset versions: `push`,
`versions`, `diff`, `get` and `alias` (gfcore.data.versions)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gfcore.cli.common import typed
from gfcore.cli.helptext import Parser
from gfcore.cli.tables import COUNT, WIDE_HELP, Column, table

VERBS = ("push", "versions", "diff", "get", "alias")
DATA_TEXT = """Without a verb: generates (demo), checks or downloads a scenario's dataset and prints its path and hash.
With a verb: dataset versions, immutable and content-addressed on S3 (`guardianflow data VERB -h` for each).

verbs:
  push DATA_YAML NAME       store a YOLO dataset as a new version (or find it stored)
  versions NAME             list a dataset's versions, oldest first
  diff NAME@A NAME@B        what changed between two versions
  get NAME@VERSION -o DIR   write a version into a folder
  alias NAME@VERSION ALIAS  point an alias at a version

examples:
  guardianflow data scenario=demo
  guardianflow data push /data/yard/data.yaml yard --alias audited-2026-q4
  guardianflow data versions yard
  guardianflow data diff yard@audited-2026-q4 yard@latest"""


def cmd_data(args: argparse.Namespace) -> int | None:
    """Generate (or find, or download) the scenario's dataset and print where it is and its hash; or one of the
    version commands."""
    if args.overrides[:1] and args.overrides[0] in VERBS:
        verb = _verb_parser().parse_args(args.overrides)
        return verb.func(verb)
    from gfcore.data.dataset import resolve_dataset
    from gfcore.yolo import env as yolo_env

    yolo_env.configure()
    cfg = typed(args.overrides)
    info = resolve_dataset(cfg.data, cfg.task)
    out = {"name": info.name, "data_yaml": str(info.data_yaml), "hash": info.hash, "classes": info.names,
           "images": info.counts, **({"source": info.source} if info.source else {}),
           **({"version": info.pin.version} if info.pin and info.pin.version else {}),
           **({"rev": info.pin.rev} if info.pin and info.pin.rev else {})}
    print(json.dumps(out, indent=2))
    return None


def _push(args: argparse.Namespace) -> None:
    from gfcore.data import s3 as s3data
    from gfcore.data.versions import store as versions

    if s3data.is_s3(args.name):  # the first form: a plain upload under a prefix (the next push overwrites it)
        if args.alias or args.store:
            from gfcore.core.errors import ConfigError

            raise ConfigError("--alias and --store belong to versions: `data push DATA_YAML NAME`.")
        result = s3data.push(args.data_yaml, args.name)
        if args.json:
            print(json.dumps(result, indent=2))
            return
        print(f"pushed {result['files']} files ({_size(result['bytes'])}); use it with data=yolo "
              f"data.path={result['uri']}")
        return
    result = versions.push(args.data_yaml, args.name, versions.Store.at(args.store), tuple(args.alias))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    up = result["uploaded"]
    head = f"{args.name}@{result['version']}: "
    if result["new"]:
        head += (f"new version, {result['files']} files ({_size(result['bytes'])}); uploaded what the store lacked: "
                 f"{up['files']} file{'s' if up['files'] != 1 else ''} ({_size(up['bytes'])})")
    else:
        head += "unchanged (this content is that version already); uploaded nothing"
    print(head)
    moved = result["aliases_moved"]
    if moved:
        print(f"aliases now on it: {', '.join(moved)}")
    print(f"train on it: data=versioned data.name={args.name} data.version={result['version']}")


def _versions(args: argparse.Namespace) -> None:
    from gfcore.data.versions import store as versions

    rows = versions.versions(args.name, versions.Store.at(args.store))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    classes = list(rows[-1]["boxes"]) if rows else []
    print(table([{"version": r["version"], "created (UTC)": r["created"].replace("T", " ").rstrip("Z"),
                  "images": r["images"], **{f"{c} boxes": r["boxes"].get(c, 0) for c in classes},
                  "size": _size(r["bytes"]), "aliases": ", ".join(r["aliases"])} for r in rows],
                [Column("version", cut=False), Column("created (UTC)", priority=2), Column("images", kind=COUNT),
                 *(Column(f"{c} boxes", kind=COUNT, priority=1) for c in classes), Column("size"),
                 Column("aliases")], wide=args.wide))
    print(f"compare two: guardianflow data diff {args.name}@{rows[0]['version']} {args.name}@latest"
          if len(rows) > 1 else f"train on it: data=versioned data.name={args.name}")


def _diff(args: argparse.Namespace) -> None:
    from gfcore.data.versions import diff as diffs
    from gfcore.data.versions import store as versions

    store = versions.Store.at(args.store)
    manifests = []
    for ref in (args.a, args.b):
        name, version = _ref(ref)
        manifests.append(versions.read_manifest(name, versions.resolve(name, version, store), store)[0])
    d = diffs.diff(*manifests)
    if args.json:
        print(json.dumps(d, indent=2))
        return
    print(f"{d['from']['name']}@{d['from']['version']} -> {d['to']['name']}@{d['to']['version']}: {diffs.summary(d)}")
    listed = [{"change": "added", "file": f} for f in d["images"]["added"]] + \
             [{"change": "removed", "file": f} for f in d["images"]["removed"]] + \
             [{"change": c["what"], "file": c["label"] if c["what"] == "labels" else c["image"],
               "boxes": " ".join(f"{k} {v:+d}" for k, v in c["boxes"].items())} for c in d["images"]["changed"]]
    if listed:
        print()
        print(table(listed[:20], ["change", "file", "boxes"]))
        if len(listed) > 20:
            print(f"... and {len(listed) - 20} more (--json lists every file)")
    print()
    print(table([{"class": c, **b} for c, b in d["boxes"].items()], ["class", "before", "after", "added", "removed"]))


def _get(args: argparse.Namespace) -> None:
    from gfcore.data.versions import store as versions

    name, ref = _ref(args.ref)
    version, data_yaml = versions.get(name, ref, versions.Store.at(args.store), args.out)
    print(f"wrote {name}@{version} to {args.out}; use it with data=yolo data.path={data_yaml}")


def _alias(args: argparse.Namespace) -> None:
    from gfcore.data.versions import store as versions

    name, ref = _ref(args.ref)
    version = versions.set_alias(name, args.alias, ref, versions.Store.at(args.store))
    print(f"{name}: {args.alias} -> {version}")


def _ref(text: str) -> tuple[str, str | None]:
    name, _, version = text.partition("@")
    return name, version or None


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB" if n >= 2**10 else f"{n} B"


def _verb_parser() -> argparse.ArgumentParser:
    p = Parser(prog="guardianflow data")
    sub = p.add_subparsers(dest="verb", required=True)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", help="s3://BUCKET/PREFIX of the versions (default $GF_DATA_STORE, else the local "
                                       "stack's s3://mlflow/datasets)")
    push = sub.add_parser("push", parents=[store], help="store a YOLO dataset as a new version (or find it stored)",
                          description="Store a YOLO dataset as an immutable version of NAME: files the store has "
                                      "already are not uploaded again; identical content is the same version. The "
                                      "older form `push DATA_YAML s3://BUCKET/PREFIX/` uploads under a prefix.")
    push.add_argument("data_yaml", type=Path, help="the dataset's YOLO data yaml")
    push.add_argument("name", help="the dataset's name, e.g. yard (or s3://BUCKET/PREFIX/ for a plain upload)")
    push.add_argument("--alias", action="append", default=[], help="also point this alias at the version "
                                                                  "(repeatable); `latest` always moves")
    push.add_argument("--json", action="store_true", help="print one JSON object: the version and what was uploaded")
    push.set_defaults(func=_push)
    versions = sub.add_parser("versions", parents=[store], help="list a dataset's versions, oldest first")
    versions.add_argument("name", help="the dataset's name, e.g. yard")
    versions.add_argument("--json", action="store_true", help="print the versions as JSON")
    versions.add_argument("--wide", action="store_true", help=WIDE_HELP)
    versions.set_defaults(func=_versions)
    diff = sub.add_parser("diff", parents=[store], help="what changed between two versions (from their manifests)")
    diff.add_argument("a", metavar="NAME@A", help="the version before: a version or an alias, e.g. yard@latest")
    diff.add_argument("b", metavar="NAME@B", help="the version after")
    diff.add_argument("--json", action="store_true", help="print every changed file as JSON")
    diff.set_defaults(func=_diff)
    get = sub.add_parser("get", parents=[store], help="write a version into a folder")
    get.add_argument("ref", metavar="NAME@VERSION", help="the version (or alias) to write, e.g. yard@latest")
    get.add_argument("-o", "--out", type=Path, required=True, help="a new or empty folder")
    get.set_defaults(func=_get)
    alias = sub.add_parser("alias", parents=[store], help="point an alias (e.g. audited-2026-q4) at a version")
    alias.add_argument("ref", metavar="NAME@VERSION", help="the version to name, e.g. yard@latest")
    alias.add_argument("alias", help="the alias to point at it")
    alias.set_defaults(func=_alias)
    return p


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="a scenario's dataset; dataset versions: push, diff, get ...",
                       description=DATA_TEXT)
    p.add_argument("overrides", nargs=argparse.REMAINDER,
                   help="Hydra overrides, e.g. scenario=smoke data=versioned data.name=yard; "
                        "or a verb and its arguments (`data push -h`)")
    p.set_defaults(func=cmd_data)
