"""Run names are distinct in their experiment (gfcore.tracking.naming): the stem first, then `-2`, `-3`; a sweep
trial carries its number; a run that has a name of its stem keeps it."""

import mlflow
import pytest

from gfcore.config import compose, to_typed
from gfcore.core.vocabulary import SWEEP_JOB
from gfcore.tracking import run as tracking_run
from gfcore.tracking.naming import free_name
from gfcore.tracking.run import PARENT_ENV, owned_run

STEM = "ppe-yolov8n-train-v1"


@pytest.fixture
def cfg():
    return to_typed(compose(["scenario=smoke"]))


def _name(run_id: str) -> str:
    return mlflow.MlflowClient().get_run(run_id).info.run_name


def test_the_next_free_suffix():
    assert free_name(STEM, []) == STEM
    assert free_name(STEM, ["ppe-yolov8n-train-v10", f"{STEM}-t3", "other"]) == STEM  # not of this stem
    assert free_name(STEM, [STEM]) == f"{STEM}-2"
    assert free_name(STEM, [STEM, f"{STEM}-5", f"{STEM}-3"]) == f"{STEM}-6"  # one past the highest, not a gap


def test_two_runs_of_a_scenario_get_distinct_names(mlflow_store, cfg):
    ids = []
    for _ in range(3):
        with owned_run(cfg, "train", data_hash="h") as run:
            ids.append(run.run_id)
    assert [_name(i) for i in ids] == [STEM, f"{STEM}-2", f"{STEM}-3"]
    assert run.label == f"{STEM}-3 ({run.run_id})"  # what the terminal prints of it
    with owned_run(cfg, "infer", data_hash="h") as run:  # another stem is not counted
        pass
    assert _name(run.run_id) == "ppe-yolov8n-infer-pytorch_fp32-v1"


def test_a_sweep_trial_carries_its_number(mlflow_store, cfg, monkeypatch):
    with owned_run(cfg, "sweep", data_hash="h") as parent:
        pass
    monkeypatch.setenv(PARENT_ENV, parent.run_id)
    monkeypatch.setattr(tracking_run, "_job_tags", lambda: {SWEEP_JOB: "3"})
    names = []
    for _ in range(2):  # the same trial number in a second sweep of the experiment is still distinct
        with owned_run(cfg, "train", data_hash="h") as trial:
            names.append(_name(trial.run_id))
    assert names == [f"{STEM}-t3", f"{STEM}-t3-2"]


def test_a_run_that_has_its_name_keeps_it(mlflow_store, cfg, monkeypatch):
    with owned_run(cfg, "train", data_hash="h") as first:
        pass
    exp_id = first.experiment_id
    filed = mlflow.MlflowClient().create_run(exp_id).info.run_id  # as `mlflow run` files it: a random name
    monkeypatch.setenv("MLFLOW_RUN_ID", filed)
    with owned_run(cfg, "train", data_hash="h"):
        pass
    assert _name(filed) == f"{STEM}-2"
    mlflow.MlflowClient().set_terminated(filed, "FAILED")
    monkeypatch.setenv("MLFLOW_RUN_ID", filed)  # MLflow's end_run took it out
    with owned_run(cfg, "train", data_hash="h") as again:  # started again into the same run (a requeued SLURM job)
        pass
    assert again.run_id == filed and _name(filed) == f"{STEM}-2"
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    with owned_run(cfg, "train", data_hash="h", resume_run_id=first.run_id):
        pass
    assert _name(first.run_id) == STEM
