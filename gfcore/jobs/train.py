"""The `train` entry point's work: check everything, then train and record one MLflow run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gfcore.core.paths import work_dir
from gfcore.core.vocabulary import (
    DET_MAP50,
    DET_MAP50_95,
    LATENCY_PROTOCOL,
    OOM_RETRY_PREFIX,
    TRAIN_BATCH_USED,
    TRAINER,
    RunKind,
)
from gfcore.data.dataset import DatasetInfo, resolve_dataset, split_images
from gfcore.jobs import measure
from gfcore.registry.register import log_and_register, train_version_tags
from gfcore.tracking.lineage import eval_tags, log_dataset_inputs
from gfcore.tracking.naming import registered_model_name
from gfcore.tracking.run import OwnedRun, owned_run
from gfcore.yolo import env as yolo_env
from gfcore.yolo.model import check_model_source, model_stats
from gfcore.yolo.training import check_train_args, train_yolo

if TYPE_CHECKING:
    from gfcore.config.schema import Config

log = logging.getLogger(__name__)

OBJECTIVE = DET_MAP50_95
PLOT_SUFFIXES = {".png", ".jpg"}


def train(cfg: Config) -> float:
    """Train the scenario's model on its data; returns the objective (det.mAP50_95) for sweepers."""
    yolo_env.configure()

    # Everything that can be wrong with the input is found before a run exists.
    check_train_args(cfg.train)
    if cfg.train.trainer:
        from gfcore.jobs.custom_trainer import load_trainer_class

        load_trainer_class(cfg.train.trainer, cfg.train.code_path)
    else:
        check_model_source(cfg.model)
    dataset = resolve_dataset(cfg.data, cfg.task)

    with owned_run(cfg, RunKind.train, data_hash=dataset.hash) as run:
        log_dataset_inputs(dataset, contexts={"train": "training", "val": "validation", "test": "testing"})

        def on_retry(attempt: int, old: int, new: int, exc: BaseException) -> None:
            run.set_tags({f"{OOM_RETRY_PREFIX}{attempt}": f"batch {old} -> {new}: {str(exc).splitlines()[0][:200]}"})

        with work_dir("gf-train-") as work:
            if cfg.train.trainer:  # a graduated old folder's own training code
                from gfcore.jobs.custom_trainer import train_with_folder_code

                run.set_tags({TRAINER: cfg.train.trainer})
                result = train_with_folder_code(cfg, dataset.data_yaml, work / "folder_trainer", dataset.names,
                                                run.log_metrics)
            else:
                result = train_yolo(cfg, dataset.data_yaml, work / "ultralytics", run.log_metrics, on_retry)
            # The per-epoch history (val.*) is on the validation split, as Ultralytics trains; the run's headline
            # figures are best.pt's on registry.eval_split, measured like every registered version's.
            headline = final_figures(cfg, result.best, dataset)
            run.set_tags(eval_tags(dataset, cfg.registry.eval_split))
            run.set_tags({LATENCY_PROTOCOL: measure.latency_protocol(cfg, dataset)})
            if result.oom_retries:
                run.set_tags({TRAIN_BATCH_USED: result.batch})
            _log_training_artifacts(run, result.save_dir, cfg.tracking.log_plots)
            if cfg.registry.register:
                _register(cfg, run, result.best, dataset, headline)
            else:
                run.log_metrics(headline)
        objective = headline.get(OBJECTIVE, 0.0)
        log.info("trained %d epochs: on the %s split det.mAP50=%.3f det.mAP50_95=%.3f (run %s)", result.epochs,
                 cfg.registry.eval_split, headline.get(DET_MAP50, 0.0), objective, run.run_id)
        return objective


def final_figures(cfg: Config, best: Path, dataset: DatasetInfo) -> dict[str, float]:
    """best.pt on the evaluation split: det.*, batch-1 latency, size, parameters and GFLOPs."""
    split = cfg.registry.eval_split
    images = split_images(dataset, split, "registry.eval_split")
    figures = measure.evaluate(best, dataset.data_yaml, split, images, cfg.model.imgsz, cfg.backend.device,
                               dataset.names, cfg.latency.warmup, cfg.latency.runs, "best.pt")
    return {**figures, **model_stats(best, cfg.model.imgsz)}


def _register(cfg: Config, run: OwnedRun, best: Path, dataset: DatasetInfo, figures: dict[str, float]) -> None:
    """best.pt as a servable pyfunc model, registered as a new version of the site's model (`candidate`)."""
    # Served on the CPU by default, whatever trained it; load_model(..., model_config={"device": "0"}) for a GPU.
    reg = log_and_register(best, cfg.model.imgsz, dataset.example_image(), "cpu", registered_model_name(cfg),
                           cfg, run, train_version_tags(cfg, run.run_id, dataset.hash), figures=figures,
                           dataset=dataset)
    log.info("registered %s version %s (alias candidate)", reg.name, reg.version)


def _log_training_artifacts(run: OwnedRun, save_dir: Path, plots: bool) -> None:
    import mlflow

    for name in ("best.pt", "last.pt"):
        if (save_dir / "weights" / name).is_file():
            mlflow.log_artifact(str(save_dir / "weights" / name), "weights")
    for name in ("results.csv", "args.yaml"):
        if (save_dir / name).is_file():
            mlflow.log_artifact(str(save_dir / name), "results")
    if plots:
        for f in sorted(save_dir.iterdir()):
            if f.suffix.lower() in PLOT_SUFFIXES:
                mlflow.log_artifact(str(f), "plots")
