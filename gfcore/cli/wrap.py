"""Old experiment folders: scan, list, wrap."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gfcore.cli.tables import table
from gfcore.core.errors import GuardianFlowError

if TYPE_CHECKING:
    from gfcore.legacy.experiments_registry import ScriptEntry


def cmd_scan(args: argparse.Namespace) -> None:
    """Draft a registry for every sub-folder of an old experiments tree."""
    from gfcore.legacy.scan import write_draft

    out = write_draft(Path(args.base_dir), Path(args.output), args.force)
    print(f"wrote {out}: fill in every TODO, then `guardianflow list --registry {out}`")


def cmd_list(args: argparse.Namespace) -> None:
    """The registry's experiments."""
    from gfcore.legacy.experiments_registry import ENTRY_TYPES, load_registry
    from gfcore.tracking.naming import experiment_name

    rows = []
    for name, entry in load_registry(args.registry).items():
        if args.customer and entry.spec.site.customer != args.customer:
            continue
        scripts = {k: _script_of(entry.scripts(k)) for k in ENTRY_TYPES}
        rows.append({"name": name, "experiment": experiment_name(entry.spec.site),
                     "task": entry.spec.task.type.value, **scripts, "folder": str(entry.folder)})
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print(table(rows, ["name", "experiment", "task", "train", "infer", "quant", "folder"]))


def _script_of(scripts: ScriptEntry | None) -> str | None:
    """What `wrap` runs of a kind: its default, or (none named) the patterns a script is chosen by."""
    if scripts is None:
        return None
    return scripts.default or (f"pattern {', '.join(scripts.patterns)}" if scripts.patterns else None)


def cmd_wrap(args: argparse.Namespace) -> None:
    """Run an old script unchanged and record it as an MLflow run."""
    from gfcore.legacy.experiments_registry import get_entry, load_registry
    from gfcore.legacy.wrap import wrap

    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GuardianFlowError(f"-p {item!r}: write parameters as key=value.")
        params[key] = value
    entry = get_entry(load_registry(args.registry), args.name)
    chosen = entry.choose(args.type, args.script)
    if chosen.said:  # no default in the registry: say which pattern chose which script, before it runs
        print(chosen.said, file=sys.stderr)
    result = wrap(entry, args.type, args.script, params, args.timeout, register=not args.no_register,
                  name=args.run_name, version=args.version,
                  **({} if args.system_metrics_interval is None else
                     {"system_metrics_interval_s": args.system_metrics_interval}))
    summary = {"run_id": result.run_id, "run_name": result.run_name, "status": result.status,
               "exit_code": result.exit_code, **({"script_chosen": result.chosen} if result.chosen else {}),
               "collected": result.collected, "registered": [f"{n} v{v}" for n, v in result.registered]}
    print(json.dumps(summary, indent=2, ensure_ascii=False), file=sys.stderr)
    if result.status != "FINISHED":
        sys.exit(result.exit_code if result.exit_code not in (None, 0) else 1)


def add_commands(sub: argparse._SubParsersAction) -> None:
    registry_help = "experiments registry file (default: the project's experiments_registry.yaml)"
    p = sub.add_parser("scan", help="draft an experiments registry of a folder's sub-folders")
    p.add_argument("base_dir", help="the folder whose sub-folders are old experiments")
    p.add_argument("-o", "--output", default="experiments_registry.yaml", help="the draft registry to write")
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("list", help="the old experiment folders of the registry")
    p.add_argument("--customer", help="only this customer's folders")
    p.add_argument("--registry", help=registry_help)
    p.add_argument("--json", action="store_true", help="print the entries as JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("wrap", help="run an old folder's script unchanged, recorded in MLflow",
                       description="Runs an old experiment's script unchanged in its own folder and records it in "
                                   "MLflow: its output, the files it produced, and a model it wrote (registered)."
                                   "\n\nexamples:\n"
                                   "  guardianflow wrap donghwa-entec-ppe --type train -p epochs=30 -p imgsz=160\n"
                                   "  guardianflow wrap sampyo-gimhae-bct --type infer -p fps=5 --timeout 600")
    p.add_argument("name", help="the experiment's name in the registry")
    p.add_argument("--type", required=True, choices=["train", "infer", "quant"],
                   help="which of the folder's scripts, and the run's exp.type")
    p.add_argument("--script", help="a script of the folder instead of the entry point's default")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="fills the args template's {KEY}; without a template becomes --KEY VALUE")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="after SECONDS the script's process group is killed (the run ends KILLED)")
    p.add_argument("--no-register", action="store_true", help="do not register a model file the script wrote")
    p.add_argument("--name", dest="run_name", metavar="NAME",
                   help="the name part of the run's name {task}-{NAME}-wrap-{version} (default: the script's name)")
    p.add_argument("--version", default="v1", help="the run's version: the last part of its name and tag exp.version")
    p.add_argument("--system-metrics-interval", type=float, metavar="SECONDS",
                   help="MLflow's system metrics (system/*) sampled every SECONDS while the script runs (default: "
                        "as the entry points' runs, tracking.system_metrics_interval_s; 0: none)")
    p.add_argument("--registry", help=registry_help)
    p.set_defaults(func=cmd_wrap)
