"""Bad input: one clear paragraph, a non-zero exit, and no run left behind (or left RUNNING)."""

from __future__ import annotations

import mlflow
import pytest

from tests.conftest import run_entrypoint, run_project, runs_of


@pytest.mark.parametrize("args, message", [
    (["scenario=nope"], "Available options in 'scenario'"),
    (["scenario=smoke", "train.epochs=abc"], "could not be converted to Integer"),
    (["scenario=smoke", "train.not_a_key=1"], "Key 'not_a_key' not in 'TrainConfig'"),
    (["scenario=smoke", "+train.extra.mixupp=0.1"], "not an Ultralytics train argument. Did you mean mixup?"),
    (["scenario=smoke", "site.zone=gate/2"], "cannot be part of an experiment or registered model name"),
    (["scenario=smoke", "data=yolo", "data.name=site", "data.path=/nowhere/data.yaml"], "does not exist"),
    (["scenario=smoke", "model=yolo11s"], "not on disk, and GuardianFlow never downloads"),
])
def test_bad_input_fails_before_any_run(mlflow_store, tmp_path, args, message):
    proc = run_entrypoint(["guardianflow.train", *args], mlflow_store, tmp_path, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert runs_of(mlflow_store) == []


def test_unreachable_tracking_uri(tmp_path):
    proc = run_entrypoint(["guardianflow.train", "scenario=smoke"], "http://127.0.0.1:9", tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "cannot reach the MLflow tracking server at http://127.0.0.1:9" in proc.stderr


def test_bad_input_under_mlflow_run_ends_its_run_failed(mlflow_store, tmp_path):
    proc = run_project("train", mlflow_store, {"scenario": "smoke",
                                               "overrides": f"model=yolo11s hydra.run.dir={tmp_path}/out"}, 300)
    assert proc.returncode != 0
    [run] = runs_of(mlflow_store)
    assert run.info.status == "FAILED"
    assert "not on disk" in mlflow.get_run(run.info.run_id).data.tags["gf.error"]
