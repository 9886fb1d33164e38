"""Dataset inputs: a parallel job that loses the race to create the same dataset row still links it."""

from __future__ import annotations

import mlflow
import pytest

from gfcore.config import compose, to_typed
from gfcore.data.dataset import resolve_dataset
from gfcore.tracking.lineage import log_dataset_inputs


def test_a_lost_dataset_insert_race_is_retried(mlflow_store, monkeypatch):
    cfg = to_typed(compose(["scenario=smoke"]))
    dataset = resolve_dataset(cfg.data, cfg.task)
    real, calls = mlflow.log_input, []

    def lose_first_race(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # what the store raises when another job inserted the row first
            real(*args, **kwargs)
            raise mlflow.exceptions.MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: "
                                                    "datasets.experiment_id, datasets.name, datasets.digest")
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "log_input", lose_first_race)
    with mlflow.start_run() as run:
        log_dataset_inputs(dataset, {"train": "training"})
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == [f"{dataset.name}-train"] and len(calls) == 2

    monkeypatch.setattr(mlflow, "log_input", lambda *a, **k: (_ for _ in ()).throw(
        mlflow.exceptions.MlflowException("something else")))
    with mlflow.start_run(), pytest.raises(mlflow.exceptions.MlflowException, match="something else"):
        log_dataset_inputs(dataset, {"train": "training"})
