"""The run owner against a real sqlite store: names, tags, params, and how every run ends."""

from __future__ import annotations

import logging

import mlflow
import pytest

from gfcore.config import compose, to_typed
from gfcore.core.errors import TrackingError
from gfcore.core.interrupts import Terminated
from gfcore.tracking.run import check_tracking_store, owned_run
from tests.conftest import artifact_paths, runs_of

EXP = "demo/local-plant1/yard"


@pytest.fixture
def cfg():
    return to_typed(compose(["scenario=smoke"]))


def test_standalone_creates_the_run_in_the_site_experiment(mlflow_store, cfg):
    with owned_run(cfg, "train", data_hash="h1") as run:
        run.log_metrics({"det.mAP50": 0.5, "weird(name)": 1.0, "nan": float("nan")}, step=1)
    [r] = runs_of(mlflow_store)
    assert r.info.run_id == run.run_id and r.info.status == "FINISHED"
    assert r.info.run_name == "ppe-yolov8n-train-v1"
    assert r.data.tags["exp.type"] == "train" and r.data.tags["data.hash"] == "h1"
    assert r.data.tags["gf.scenario"] == "smoke" and r.data.tags["site.zone"] == "yard"
    assert r.data.params["train.epochs"] == "2" and r.data.params["site.customer"] == "demo"
    r.data.metrics.pop("sys.startup_s", None)  # process start to run start: only a process's first run has it
    assert {k: v for k, v in r.data.metrics.items() if not k.startswith("system/")} == \
        {"det.mAP50": 0.5, "weird_name_": 1.0}
    assert "config/resolved.yaml" in artifact_paths(mlflow.MlflowClient(), r.info.run_id)
    assert {e.name for e in mlflow.search_experiments()} == {"Default", EXP}, "no stray experiments"


def test_a_run_shorter_than_the_sampling_interval_still_has_system_metrics(mlflow_store):
    cfg = to_typed(compose(["scenario=smoke", "tracking.system_metrics_interval_s=60"]))
    with owned_run(cfg, "infer", data_hash="h"):
        pass
    [r] = runs_of(mlflow_store)
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(r.data.metrics)
    experiment = mlflow.get_experiment(r.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"].startswith("**Site demo/local-plant1/yard**")


def test_a_description_someone_wrote_is_kept(mlflow_store, cfg):
    exp_id = mlflow.create_experiment(EXP, tags={"mlflow.note.content": "Welding bay, camera 3"})
    with owned_run(cfg, "train", data_hash="h"):
        pass
    tags = mlflow.get_experiment(exp_id).tags
    assert tags["mlflow.note.content"] == "Welding bay, camera 3"
    assert tags["mlflow.experimentKind"] == "custom_model_development"


def test_an_exception_ends_the_run_failed_with_tag_and_traceback(mlflow_store, cfg):
    with pytest.raises(ValueError, match="boom"):
        with owned_run(cfg, "train", data_hash="h") as run:
            run.log_metrics({"det.mAP50": 0.25}, step=1)
            raise ValueError("boom")
    [r] = runs_of(mlflow_store)
    assert r.info.status == "FAILED"
    assert r.data.tags["gf.error"] == "ValueError: boom"
    assert r.data.metrics["det.mAP50"] == 0.25, "what was logged before stays"
    text = mlflow.artifacts.load_text(f"runs:/{r.info.run_id}/error/traceback.txt")
    assert "ValueError: boom" in text and "Traceback" in text


@pytest.mark.parametrize("exc, reason", [(KeyboardInterrupt(), "Ctrl-C"), (Terminated(), "SIGTERM")])
def test_interrupts_end_the_run_killed(mlflow_store, cfg, exc, reason):
    with pytest.raises(KeyboardInterrupt):
        with owned_run(cfg, "train", data_hash="h"):
            raise exc
    [r] = runs_of(mlflow_store)
    assert r.info.status == "KILLED" and reason in r.data.tags["gf.error"]


def test_under_mlflow_run_the_existing_run_is_used(mlflow_store, cfg, monkeypatch):
    exp_id = mlflow.create_experiment(EXP)
    created = mlflow.MlflowClient().create_run(exp_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", created.info.run_id)
    with owned_run(cfg, "train", data_hash="h") as run:
        assert run.run_id == created.info.run_id
    [r] = runs_of(mlflow_store)
    assert r.info.run_id == created.info.run_id and r.info.status == "FINISHED"
    assert r.info.run_name == "ppe-yolov8n-train-v1" and r.data.tags["exp.type"] == "train"


def test_under_mlflow_run_elsewhere_it_warns_and_stays(mlflow_store, cfg, monkeypatch, caplog):
    created = mlflow.MlflowClient().create_run("0")  # the Default experiment
    monkeypatch.setenv("MLFLOW_RUN_ID", created.info.run_id)
    with caplog.at_level(logging.WARNING):
        with owned_run(cfg, "train", data_hash="h"):
            pass
    assert mlflow.get_run(created.info.run_id).info.experiment_id == "0", "never moved with set_experiment"
    assert mlflow.get_experiment_by_name(EXP) is None, "and no experiment is created for it"
    assert any("--experiment-name demo/local-plant1/yard" in r.message for r in caplog.records)


def test_unreachable_server_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    mlflow.set_tracking_uri("http://127.0.0.1:9")
    try:
        with pytest.raises(TrackingError, match="cannot reach the MLflow tracking server at http://127.0.0.1:9"):
            check_tracking_store(retries=2, timeout_s=0.5)
    finally:
        mlflow.set_tracking_uri(None)
