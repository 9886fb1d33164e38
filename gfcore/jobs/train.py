"""The `train` entry point's work: check everything, then train and record one MLflow run."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gfcore.core.paths import run_work_dir
from gfcore.core.vocabulary import (
    DET_MAP50,
    DET_MAP50_95,
    LATENCY_PROTOCOL,
    OOM_RETRY_PREFIX,
    PROCESS,
    TRAIN_BATCH_USED,
    TRAINER,
    WORK_DIR,
    RunKind,
)
from gfcore.data.dataset import DatasetInfo, resolve_dataset, split_images
from gfcore.jobs import measure, resume
from gfcore.jobs.resume import CHECKPOINT_DIR, ResumePoint
from gfcore.registry.register import log_and_register, train_version_tags
from gfcore.tracking.lineage import eval_tags, log_dataset_inputs
from gfcore.tracking.naming import registered_model_name
from gfcore.tracking.run import OwnedRun, owned_run
from gfcore.yolo import env as yolo_env
from gfcore.yolo.callbacks import results_rows
from gfcore.yolo.model import check_model_source, model_stats
from gfcore.yolo.training import TrainResult, check_train_args, resume_yolo, train_yolo, write_results_csv

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
    # A resume (train.resume_run_id) is checked through, its checkpoint found, before its run is touched.
    point = resume.prepare(cfg, dataset.hash, download=True) if cfg.train.resume_run_id else None

    with owned_run(cfg, RunKind.train, data_hash=dataset.hash, data_pin=dataset.pin, resume_run_id=point.run_id if point else None,
                   resumed_from=point.note if point else "") as run:
        if point is None:  # a resumed run has its inputs
            log_dataset_inputs(dataset, contexts={"train": "training", "val": "validation", "test": "testing"})

        def on_retry(attempt: int, old: int, new: int, exc: BaseException) -> None:
            run.set_tags({f"{OOM_RETRY_PREFIX}{attempt}": f"batch {old} -> {new}: {str(exc).splitlines()[0][:200]}"})

        with _work_folder(run.run_id, point) as work:
            # Where this run's checkpoints are and which process trains it: what a resume looks for.
            run.set_tags({WORK_DIR: str(work), PROCESS: resume.process_tag()})
            if cfg.train.trainer:  # a graduated old folder's own training code
                from gfcore.jobs.custom_trainer import train_with_folder_code

                run.set_tags({TRAINER: cfg.train.trainer})
                result = train_with_folder_code(cfg, dataset.data_yaml, work / "folder_trainer", dataset.names,
                                                run.log_metrics)
            elif point is not None:
                result = _resume_training(cfg, run, point, dataset, _checkpoint_keeper(cfg))
            else:
                result = train_yolo(cfg, dataset.data_yaml, resume.save_dir_of(work).parent, run.log_metrics,
                                    on_retry, _checkpoint_keeper(cfg))
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
            _drop_checkpoints(run)
        objective = headline.get(OBJECTIVE, 0.0)
        log.info("trained %d epochs: on the %s split det.mAP50=%.3f det.mAP50_95=%.3f (run %s)", result.epochs,
                 cfg.registry.eval_split, headline.get(DET_MAP50, 0.0), objective, run.label)
        return objective


@contextmanager
def _work_folder(run_id: str, point: ResumePoint | None) -> Iterator[Path]:
    """The run's work folder (its checkpoints), kept when the run does not finish: a resume continues in it. A
    folder that is the run's alone (outside Hydra) goes once the run's work is done."""
    work, own = (point.work, point.own_folder) if point is not None else run_work_dir("train", run_id)
    yield work
    if own:
        shutil.rmtree(work, ignore_errors=True)


def _checkpoint_keeper(cfg: Config) -> Callable[[Path], None] | None:
    """Uploads a checkpoint as the run's artifact checkpoints/NAME (train.checkpoint_every; 0: none), so that the
    run can resume on another machine; an upload that fails is a warning, never the end of the training."""
    if not cfg.train.checkpoint_every:
        return None

    def keep(path: Path) -> None:
        import mlflow

        try:
            mlflow.log_artifact(str(path), CHECKPOINT_DIR)
        except Exception as err:
            log.warning("could not upload checkpoint %s (the local one stays): %s", path, err)

    return keep


def _resume_training(cfg: Config, run: OwnedRun, point: ResumePoint, dataset: DatasetInfo,
                     keep: Callable[[Path], None] | None) -> TrainResult:
    """Ultralytics' resume from the checkpoint. Epochs the checkpoint holds but the history lacks (saved, not yet
    logged when the process died) are logged first, from the checkpoint's results table, so the history has
    every epoch once; results.csv restarts from that table too."""
    rows = results_rows(point.results)
    for epoch in range(point.logged_through + 1, point.epoch + 1):
        if epoch in rows:
            run.log_metrics(rows[epoch], step=epoch)
    write_results_csv(point.save_dir / "results.csv", point.results)
    log.info("resuming run %s: %s", point.run_id, point.note)
    return resume_yolo(cfg, dataset.data_yaml, point.checkpoint, point.save_dir, run.log_metrics,
                       max(point.logged_through, point.epoch), keep)


def _drop_checkpoints(run: OwnedRun) -> None:
    """A finished run needs no resume point: its uploaded checkpoints go (weights/ keeps best.pt and last.pt)."""
    import mlflow
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        artifact_uri = mlflow.MlflowClient().get_run(run.run_id).info.artifact_uri
        if any(a.path.startswith(CHECKPOINT_DIR) for a in mlflow.MlflowClient().list_artifacts(run.run_id)):
            get_artifact_repository(artifact_uri).delete_artifacts(CHECKPOINT_DIR)
    except Exception as err:  # only space is at stake
        log.warning("could not remove the run's uploaded checkpoints (%s/): %s", CHECKPOINT_DIR, err)


def final_figures(cfg: Config, best: Path, dataset: DatasetInfo) -> dict[str, float]:
    """best.pt on the evaluation split: det.*, batch-1 latency, size, parameters and GFLOPs."""
    split = cfg.registry.eval_split
    images = split_images(dataset, split, "registry.eval_split")
    figures = measure.evaluate(best, dataset.data_yaml, split, images, cfg.model.imgsz, cfg.backend.device,
                               dataset.names, cfg.latency.warmup, cfg.latency.runs, "best.pt",
                               op_conf=cfg.site.conf_threshold)
    return {**figures, **model_stats(best, cfg.model.imgsz)}


def _register(cfg: Config, run: OwnedRun, best: Path, dataset: DatasetInfo, figures: dict[str, float]) -> None:
    """best.pt as a servable pyfunc model, registered as a new version of the site's model (`candidate`; a sweep's
    job without an alias: its sweep makes only the best job's version the candidate)."""
    # Served on the CPU by default, whatever trained it; load_model(..., model_config={"device": "0"}) for a GPU.
    reg = log_and_register(best, cfg.model.imgsz, dataset.example_image(), "cpu", registered_model_name(cfg),
                           cfg, run, train_version_tags(cfg, run.run_id, dataset), figures=figures,
                           dataset=dataset)
    if reg is not None:
        log.info("registered %s version %s (%s)", reg.name, reg.version, reg.said())


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
