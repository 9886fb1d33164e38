"""Commands that start or describe runs: `run` (an entry point as an MLflow Project run), `reproduce`, `resume`
and `names`."""

from __future__ import annotations

import argparse
import json
import sys

from gfcore.cli.common import typed


def cmd_names(args: argparse.Namespace) -> None:
    """The MLflow names a scenario's runs and models get."""
    from gfcore.tracking import naming

    cfg = typed(args.overrides)
    base = naming.registered_model_name(cfg)
    names = {
        "experiment": naming.experiment_name(cfg.site),
        "train_run": naming.run_name(cfg, "train"),
        "registered_model": base,
        "variant_example": naming.variant_model_name(base, "openvino", "int8"),
    }
    print(json.dumps(names, indent=2) if args.json else "\n".join(f"{k:18} {v}" for k, v in names.items()))


def cmd_reproduce(args: argparse.Namespace) -> None:
    """Rerun a past run with its logged config."""
    from gfcore.orchestration.reproduce import reproduce

    code = reproduce(args.run_id, dry_run=args.dry_run)
    if code:
        sys.exit(code)


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue an unfinished train run from its last checkpoint, into the same run."""
    from gfcore.config import split_overrides
    from gfcore.orchestration.reproduce import resume

    return resume(args.run_id, split_overrides(args.overrides))


def cmd_run(args: argparse.Namespace) -> None:
    """An entry point as an MLflow Project run, in its site's experiment."""
    from gfcore.config import split_overrides
    from gfcore.orchestration.reproduce import launch
    from gfcore.tracking.naming import run_label

    run_id = launch(args.entry, split_overrides(args.overrides), env_manager=args.env_manager)
    print(run_id)  # last on stdout, for scripts; people read its name on stderr
    print(f"{args.entry} run {run_label(run_id)} finished", file=sys.stderr)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("names", help="experiment, run and registered model names of a scenario")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. scenario=smoke site.zone=gate")
    p.add_argument("--json", action="store_true", help="print the names as one JSON object")
    p.set_defaults(func=cmd_names)

    p = sub.add_parser("reproduce", help="rerun a past run with the config and data version it logged",
                       description="Reruns the run RUN_ID of any entry point as a new MLflow Project run, with the "
                                   "config it logged and the data version it used.\n\nexample:\n"
                                   "  guardianflow reproduce RUN_ID --dry-run")
    p.add_argument("run_id", metavar="RUN_ID", help="the MLflow run to rerun")
    p.add_argument("--dry-run", action="store_true", help="print the command, start nothing")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("resume", help="continue a stopped or failed train run from its checkpoint",
                       description="Continues the train run RUN_ID (FAILED, KILLED, or RUNNING with its process gone) "
                                   "from its last checkpoint, in the same MLflow run, with the config it logged: the "
                                   "local checkpoint in its work folder (tag gf.work_dir), else its uploaded artifact "
                                   "checkpoints/last.pt. It ends FINISHED and registers its model (candidate).")
    p.add_argument("run_id", metavar="RUN_ID", help="the train run to continue")
    p.add_argument("overrides", nargs="*", help="Hydra overrides; they must not change a param the run logged")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("run", help="launch an entry point by its MLproject name",
                       description="Launches an MLproject entry point as an MLflow Project run in its site's "
                                   "experiment; the verbs (train, quant, ...) do the same under shorter names."
                                   "\n\nexamples:\n  guardianflow run train scenario=smoke train.epochs=5\n"
                                   "  guardianflow run quant scenario=demo quant.source_run_id=ID backend=onnx_int8")
    p.add_argument("entry", help="train, quant, infer, sweep, compare or full_pipeline")
    p.add_argument("overrides", nargs="*", help="scenario=NAME and Hydra overrides")
    p.add_argument("--env-manager", default="local", choices=["local", "virtualenv", "uv", "conda"],
                   help="how `mlflow run` makes the entry point's environment")
    p.set_defaults(func=cmd_run)
