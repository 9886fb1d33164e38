"""The run another run builds on (`source_run_id`): checked before any work, its weights fetched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import EXP_TYPE

WEIGHTS = "weights/best.pt"


@dataclass
class SourceRun:
    run_id: str
    tags: dict[str, str]


def finished_run(run_id: str) -> Any:
    """The MLflow run `run_id`, which must exist and have completed."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        raise ConfigError(f"source run {run_id!r} does not exist in {mlflow.get_tracking_uri()}: check the id "
                          "(mlflow ui, or `mlflow runs list --experiment-id ...`).") from None
    if run.info.status != "FINISHED":
        raise ConfigError(f"source run {run_id} is {run.info.status}, not FINISHED: use a run that completed.")
    return run


def has_weights(run_id: str) -> bool:
    import mlflow

    return WEIGHTS in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "weights")}


def check_source_run(run_id: str | None, entry: str) -> SourceRun:
    """The source run must exist, have finished, and hold `weights/best.pt`."""
    if not run_id:
        raise ConfigError(f"{entry} needs the train run to start from: pass -P source_run_id=RUN_ID to `mlflow run`, "
                          f"or quant.source_run_id=RUN_ID to the entry point.")
    run = finished_run(run_id)
    if not has_weights(run_id):
        raise ConfigError(f"source run {run_id} has no {WEIGHTS} (exp.type={run.data.tags.get(EXP_TYPE, '?')}): "
                          "use a train run, whose best weights are logged there.")
    return SourceRun(run_id=run_id, tags=dict(run.data.tags))


def download_weights(source: SourceRun, dst: Path) -> Path:
    import mlflow

    dst.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(run_id=source.run_id, artifact_path=WEIGHTS, dst_path=str(dst)))
