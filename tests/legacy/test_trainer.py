"""Graduating a folder: its own training code inside the `train` entry point, logged like the built-in trainer."""

from __future__ import annotations

import mlflow
import pytest

from gfcore.config import compose, to_typed
from gfcore.core.errors import ConfigError
from gfcore.jobs.train import train
from tests.conftest import REPO, artifact_paths, runs_of

FOLDER = REPO / "examples" / "legacy_experiments" / "donghwa-entec-ppe"


def test_folder_trainer_logs_like_the_built_in_one(mlflow_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the folder's code writes where GuardianFlow tells it, not into the repo
    train(to_typed(compose(["scenario=smoke", "train.trainer=gf_trainer:PPETrainer", f"train.code_path={FOLDER}"])))
    [run] = runs_of(mlflow_store)
    assert run.info.status == "FINISHED" and run.data.tags["gf.trainer"] == "gf_trainer:PPETrainer"
    client = mlflow.MlflowClient()
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train.box_loss")] == [1, 2]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "lr.pg0")] == [1, 2]
    # The folder's per-epoch det.* are validation figures: val.* at 1..N; det.* is best.pt on the test split.
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val.mAP50")] == [1, 2]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "det.mAP50")] == [0]
    assert run.data.tags["eval.split"] == "test" and "sys.latency_p50_ms" in run.data.metrics
    for key in ("det.ap50_95.helmet", "det.ap50_95.vest", "sys.model_params_m", "sys.model_gflops"):
        assert key in run.data.metrics, key
    assert "weights/best.pt" in artifact_paths(client, run.info.run_id)
    assert client.get_registered_model("demo.local-plant1.yard.ppe").aliases == {"candidate": 1}
    assert not (FOLDER / "weights").exists()


@pytest.mark.parametrize("override, message", [
    ("train.trainer=gf_trainer", "write it as module:Class"),
    ("train.trainer=nope:Trainer", "cannot import nope"),
    ("train.trainer=gf_trainer:Missing", "has no class Missing"),
])
def test_bad_trainer_settings_start_nothing(mlflow_store, override, message):
    with pytest.raises(ConfigError, match=message):
        train(to_typed(compose(["scenario=smoke", override, f"train.code_path={FOLDER}"])))
    assert runs_of(mlflow_store) == []
