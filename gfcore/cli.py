"""The `guardianflow` command: scenarios, data, the model registry and MOT scoring, without training."""

from __future__ import annotations

import argparse
import json
import os
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


def table(rows: list[dict], columns: list[str]) -> str:
    """An aligned text table; missing cells print as '-'."""
    cells = [[str(r.get(c, "")) if r.get(c) not in (None, "") else "-" for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _fmt(value: float | None) -> str | None:
    return None if value is None else f"{value:.4f}"


def cmd_models(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from gfcore.registry import lifecycle

    models = lifecycle.list_models(customer=args.customer, task=args.task)
    if args.json:
        print(json.dumps([asdict(m) for m in models], indent=2))
        return
    rows = [{"name": m.name, "champion": m.aliases.get("champion"), "candidate": m.aliases.get("candidate"),
             "rollback": m.aliases.get("rollback"), "champion det.mAP50": _fmt(m.champion_metrics.get("det.mAP50")),
             "det.mAP50_95": _fmt(m.champion_metrics.get("det.mAP50_95")), "path": m.path} for m in models]
    print(table(rows, ["name", "champion", "candidate", "rollback", "champion det.mAP50", "det.mAP50_95", "path"])
          if rows else "no registered models")


def cmd_versions(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from gfcore.registry import lifecycle

    versions = lifecycle.list_versions(args.name)
    if args.json:
        out = [{**asdict(v), "metrics": {k: x for k, x in v.metrics.items() if not k.startswith("system/")}}
               for v in versions]
        print(json.dumps(out, indent=2))
        return
    rows = [{"version": v.version, "aliases": ",".join(v.aliases), "run_id": v.run_id,
             "det.mAP50": _fmt(v.metrics.get("det.mAP50")), "det.mAP50_95": _fmt(v.metrics.get("det.mAP50_95")),
             "backend": v.tags.get("backend"), "precision": v.tags.get("precision"), "created (UTC)": v.created}
            for v in versions]
    print(table(rows, ["version", "aliases", "run_id", "det.mAP50", "det.mAP50_95", "backend", "precision",
                       "created (UTC)"]))


def cmd_promote(args: argparse.Namespace) -> None:
    from gfcore.registry import lifecycle

    result = lifecycle.promote(args.name, version=args.version, requires=args.require)
    if args.json:
        print(json.dumps(result))
    elif not result["changed"]:
        print(f"{args.name}: version {result['champion']} is already the champion; nothing changed.")
    else:
        print(f"{args.name}: version {result['champion']} is now the champion"
              + (f"; version {result['rollback']} is the rollback." if result["rollback"] else "."))


def cmd_rollback(args: argparse.Namespace) -> None:
    from gfcore.registry import lifecycle

    result = lifecycle.rollback(args.name)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.name}: version {result['champion']} is the champion again"
              + (f"; version {result['candidate']} is back to candidate." if result["candidate"] else "."))


def cmd_alias(args: argparse.Namespace) -> None:
    from gfcore.registry import lifecycle

    result = lifecycle.set_alias(args.name, args.alias, args.version)
    print(json.dumps(result) if args.json else f"{args.name}@{args.alias} -> version {args.version}")


def cmd_eval_mot(args: argparse.Namespace) -> None:
    """TrackEval's HOTA, CLEAR and Identity metrics for MOTChallenge-format ground truth and tracks."""
    from pathlib import Path

    from gfcore.mot import METRICS
    from gfcore.mot.benchmark import AUTO
    from gfcore.mot.evaluate import evaluate_mot

    seqs = [s.strip() for s in args.seqs.split(",") if s.strip()] if args.seqs else None
    # Which rules scored each sequence goes to stderr, so --json output stays one JSON object.
    override = " (--benchmark to override)" if args.benchmark == AUTO else ""
    results = evaluate_mot(Path(args.gt_dir), Path(args.pred_dir), seqs, args.benchmark,
                           explain=lambda line: print(f"eval-mot: {line}{override}", file=sys.stderr))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    rows = [{"sequence": seq, **{m: v if isinstance(v, int) else f"{v:.3f}" for m, v in row.items()}}
            for seq, row in results.items()]
    print(table(rows, ["sequence", *METRICS]))


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


def cmd_scan(args: argparse.Namespace) -> None:
    """Draft a registry for every sub-folder of an old experiments tree."""
    from pathlib import Path

    from gfcore.legacy.scan import write_draft

    out = write_draft(Path(args.base_dir), Path(args.output), args.force)
    print(f"wrote {out}: fill in every TODO, then `guardianflow list --registry {out}`")


def cmd_list(args: argparse.Namespace) -> None:
    """The registry's experiments."""
    from gfcore.legacy.registry import ENTRY_TYPES, load_registry
    from gfcore.naming import experiment_name

    rows = []
    for name, entry in load_registry(args.registry).items():
        if args.customer and entry.spec.site.customer != args.customer:
            continue
        scripts = {k: (entry.scripts(k).default if entry.scripts(k) else None) for k in ENTRY_TYPES}
        rows.append({"name": name, "experiment": experiment_name(entry.spec.site),
                     "task": entry.spec.task.type.value, **scripts, "folder": str(entry.folder)})
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print(table(rows, ["name", "experiment", "task", "train", "infer", "quant", "folder"]))


def cmd_wrap(args: argparse.Namespace) -> None:
    """Run an old script unchanged and record it as an MLflow run."""
    from gfcore.legacy.registry import get_entry, load_registry
    from gfcore.legacy.wrap import wrap

    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GuardianFlowError(f"-p {item!r}: write parameters as key=value.")
        params[key] = value
    entry = get_entry(load_registry(args.registry), args.name)
    result = wrap(entry, args.type, args.script, params, args.timeout, register=not args.no_register)
    summary = {"run_id": result.run_id, "status": result.status, "exit_code": result.exit_code,
               "collected": result.collected, "registered": [f"{n} v{v}" for n, v in result.registered]}
    print(json.dumps(summary, indent=2, ensure_ascii=False), file=sys.stderr)
    if result.status != "FINISHED":
        sys.exit(result.exit_code if result.exit_code not in (None, 0) else 1)


def cmd_stack(args: argparse.Namespace) -> None:
    """The tracking stack as processes on 127.0.0.1: up, status, down."""
    from pathlib import Path

    from gfcore.stack import local

    folder = Path(args.dir or (local.DEFAULT_ROOT_DIR if os.geteuid() == 0 else local.DEFAULT_DIR)).expanduser()
    if args.action == "up":
        ports = {k: getattr(args, f"{k}_port") for k in local.PORTS if getattr(args, f"{k}_port", None)}
        env = local.up(folder, ports)
        print("\n".join(f"export {k}={v}" for k, v in env.items()))
        print(f"# the stack's data, logs and secrets are in {folder}; `guardianflow stack down --dir {folder}` stops it",
              file=sys.stderr)
    elif args.action == "status":
        rows = local.status(folder)
        print(json.dumps(rows, indent=2) if args.json else table(rows, ["service", "pid", "state", "address"]))
    else:
        local.down(folder, purge=args.purge)


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

    p = sub.add_parser("models", help="registered models with their champion / candidate / rollback versions")
    p.add_argument("--customer")
    p.add_argument("--task")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("versions", help="every version of a registered model, with aliases and metrics")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_versions)

    p = sub.add_parser("promote", help="make the candidate (or --version) the champion, behind --require gates")
    p.add_argument("name")
    p.add_argument("--version")
    p.add_argument("--require", action="append", default=[], metavar="GATE",
                   help="e.g. 'det.mAP50>=0.8'; checked against the version's run metrics; repeatable")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", help="make the rollback version the champion again")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("alias", help="point a custom alias (not champion/candidate/rollback) at a version")
    p.add_argument("name")
    p.add_argument("alias")
    p.add_argument("version")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_alias)

    from gfcore.mot.benchmark import AUTO, BENCHMARKS  # constants only: no TrackEval import for --help

    p = sub.add_parser("eval-mot", help="score MOTChallenge-format tracks with TrackEval (HOTA, CLEAR, Identity)",
                       description="GT_DIR/<seq>/gt/gt.txt and GT_DIR/<seq>/seqinfo.ini against PRED_DIR/<seq>.txt. "
                                   "Rates are fractions (0-1), counts are integers; motp is IoU-based.")
    p.add_argument("gt_dir")
    p.add_argument("pred_dir")
    p.add_argument("--seqs", help="comma-separated sequence names (default: every sequence in GT_DIR)")
    p.add_argument("--benchmark", default=AUTO, type=lambda s: AUTO if s.lower() == AUTO else s.upper(),
                   choices=[AUTO, *BENCHMARKS],
                   help="whose rules score the data: MOT15 (columns 8-10 are world coordinates, no classes), "
                        "MOT16/MOT17 (column 8 is a class, distractors dropped), MOT20 (one more distractor class); "
                        "auto (default) guesses per sequence from gt.txt and says why on stderr")
    p.add_argument("--json", action="store_true", help="one JSON object: a key per sequence and COMBINED")
    p.set_defaults(func=cmd_eval_mot)

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

    registry_help = "experiments registry file (default: the project's experiments_registry.yaml)"
    p = sub.add_parser("scan", help="draft an experiments registry for every sub-folder of BASE_DIR")
    p.add_argument("base_dir")
    p.add_argument("-o", "--output", default="experiments_registry.yaml")
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("list", help="the old experiment folders of the registry")
    p.add_argument("--customer")
    p.add_argument("--registry", help=registry_help)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("wrap", help="run an old experiment's script unchanged and record it in MLflow")
    p.add_argument("name", help="the experiment's name in the registry")
    p.add_argument("--type", required=True, choices=["train", "infer", "quant"])
    p.add_argument("--script", help="a script of the folder instead of the entry point's default")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="fills the args template's {KEY}; without a template becomes --KEY VALUE")
    p.add_argument("--timeout", type=float, help="seconds; then the script's process group is killed (KILLED)")
    p.add_argument("--no-register", action="store_true", help="do not register a model file the script wrote")
    p.add_argument("--registry", help=registry_help)
    p.set_defaults(func=cmd_wrap)

    p = sub.add_parser("stack", help="the tracking stack (MLflow server, PostgreSQL, SeaweedFS) as local processes")
    p.add_argument("action", choices=["up", "status", "down"])
    p.add_argument("--dir", help="data, logs, pid files and secrets (default ~/.local/share/guardianflow/stack; "
                                 "as root /var/lib/guardianflow/stack)")
    p.add_argument("--purge", action="store_true", help="with down: delete the folder and all data in it")
    p.add_argument("--json", action="store_true")
    from gfcore.stack.local import PORTS

    for name, port in PORTS.items():
        p.add_argument(f"--{name}-port", type=int, dest=f"{name}_port", help=f"default {port}")
    p.set_defaults(func=cmd_stack)
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
    except KeyboardInterrupt:
        print("guardianflow: stopped (Ctrl-C or SIGTERM)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
