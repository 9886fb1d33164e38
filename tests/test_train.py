"""The `train` entry point for real: Ultralytics training on the smoke demo set into a temporary sqlite store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest
import torch

from gfcore.config import compose, to_typed
from gfcore.core.errors import TrainingError
from gfcore.jobs.train import train
from gfcore.yolo import training
from tests.conftest import REPO, artifact_paths, run_entrypoint, run_project, runs_of

EXP = "demo/local-plant1/yard"


def _history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in mlflow.MlflowClient().get_metric_history(run_id, key)]


def test_smoke_train_standalone_records_everything(mlflow_store, tmp_path):
    proc = run_entrypoint(["guardianflow.train", "scenario=smoke"], mlflow_store, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = runs_of(mlflow_store)
    rid = run.info.run_id
    assert run.info.status == "FINISHED" and run.info.run_name == "ppe-yolov8n-train-v1"
    assert {e.name for e in mlflow.search_experiments()} == {"Default", EXP}

    tags = run.data.tags
    for key, value in {"exp.type": "train", "exp.version": "v1", "exp.design": "single", "gf.scenario": "smoke",
                       "site.customer": "demo", "site.region": "local", "site.plant": "plant1", "site.zone": "yard",
                       "task.type": "ppe", "task.classes": "helmet,vest", "data.version": "v1"}.items():
        assert tags[key] == value, key
    assert len(tags["data.hash"]) == 64

    params = run.data.params
    assert params["train.epochs"] == "2" and params["model.imgsz"] == "64" and params["model.architecture"] == \
        "yolov8n.yaml" and params["data.demo.train_images"] == "16"

    # Per-epoch histories at step=epoch 1..N only (validation split), no extra "epoch" for the final result.
    for key in ("val.mAP50", "val.mAP50_95", "val.precision", "val.recall", "val.f1", "train.box_loss",
                "train.cls_loss", "train.dfl_loss", "val.box_loss", "val.cls_loss", "val.dfl_loss", "lr.pg0",
                "lr.pg1", "lr.pg2"):
        assert [s for s, _ in _history(rid, key)] == [1, 2], key
    # The headline: best.pt on registry.eval_split (test), one value, under the names quant and infer use.
    for key in ("det.mAP50", "det.mAP50_95", "det.precision", "det.recall", "det.f1", "sys.latency_p50_ms",
                "sys.latency_p95_ms"):
        assert [s for s, _ in _history(rid, key)] == [0], key
    assert tags["eval.split"] == "test" and tags["eval.dataset_digest"] == tags["data.hash"][:16]
    assert "5 timed predict() calls" in tags["sys.latency_protocol"] and "test images" in tags["sys.latency_protocol"]
    metrics = run.data.metrics
    assert {"det.ap50_95.helmet", "det.ap50_95.vest"} <= set(metrics)
    # The headline equals a fresh evaluation of best.pt on the test split, not Ultralytics' last val figures.
    from gfcore.data.dataset import resolve_dataset
    from gfcore.jobs import measure

    cfg = to_typed(compose(["scenario=smoke"]))
    best = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="weights/best.pt", dst_path=str(tmp_path))
    again = measure.detection(measure.load(best), resolve_dataset(cfg.data, cfg.task).data_yaml, "test", 64, "cpu",
                              ["helmet", "vest"])
    assert metrics["det.mAP50_95"] == pytest.approx(again["det.mAP50_95"], abs=1e-6)
    # Params: the sections train uses, not the orchestration ones.
    assert not any(k.startswith(("sweep.", "compare.", "pipeline.", "infer.", "quant.")) for k in params)
    assert 5 < metrics["sys.model_size_mb"] < 8 and 2.9 < metrics["sys.model_params_m"] < 3.1
    assert metrics["sys.model_gflops"] > 0
    assert any(k.startswith("system/") for k in metrics), "MLflow system metrics while training"

    arts = artifact_paths(mlflow.MlflowClient(), rid)
    assert {"weights/best.pt", "weights/last.pt", "results/results.csv", "config/resolved.yaml",
            "config/.hydra/config.yaml", "config/.hydra/overrides.yaml"} <= arts
    assert any(a.startswith("plots/") and a.endswith(".png") for a in arts)

    inputs = {(d.dataset.name, d.tags[0].value if d.tags else None) for d in run.inputs.dataset_inputs}
    assert {name for name, _ in inputs} == {"demo-train", "demo-val", "demo-test"}
    assert all(d.dataset.digest == tags["data.hash"][:16] for d in run.inputs.dataset_inputs)


@pytest.mark.parametrize("overrides, expect", [
    ("train.epochs=1 train.batch=4", {"train.epochs": "1", "train.batch": "4"}),
    ("train.epochs=1", {"train.epochs": "1", "train.batch": "8"}),
])
def test_under_mlflow_run(mlflow_store, tmp_path, overrides, expect):
    proc = run_project("train", mlflow_store, {"scenario": "smoke",
                                               "overrides": f"{overrides} hydra.run.dir={tmp_path}/outputs"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = runs_of(mlflow_store)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.entryPoint"] == "train"
    assert run.info.run_name == "ppe-yolov8n-train-v1"
    for key, value in expect.items():
        assert run.data.params[key] == value
    assert _history(run.info.run_id, "val.mAP50")[0][0] == 1
    kind = mlflow.get_experiment(run.info.experiment_id).tags
    assert kind["mlflow.experimentKind"] == "custom_model_development" and "Site demo" in kind["mlflow.note.content"]


def test_injected_error_ends_failed_and_keeps_what_was_logged(mlflow_store, monkeypatch):
    real_fit = training._fit

    def failing_fit(model, args):
        def boom(trainer):
            if trainer.epoch == 1:
                raise RuntimeError("injected failure in epoch 2")
        model.add_callback("on_train_epoch_start", boom)
        real_fit(model, args)

    monkeypatch.setattr(training, "_fit", failing_fit)
    with pytest.raises(RuntimeError, match="injected failure"):
        train(to_typed(compose(["scenario=smoke"])))
    [run] = runs_of(mlflow_store)
    assert run.info.status == "FAILED"
    assert "injected failure in epoch 2" in run.data.tags["gf.error"]
    assert [s for s, _ in _history(run.info.run_id, "val.mAP50")] == [1], "epoch 1 stays"
    assert "error/traceback.txt" in artifact_paths(mlflow.MlflowClient(), run.info.run_id)


def test_out_of_memory_retries_with_half_the_batch(mlflow_store, monkeypatch):
    real_fit, batches = training._fit, []

    def oom_once(model, args):
        batches.append(args["batch"])
        if len(batches) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        real_fit(model, args)

    monkeypatch.setattr(training, "_fit", oom_once)
    objective = train(to_typed(compose(["scenario=smoke", "train.epochs=1"])))
    assert batches == [8, 4]
    [run] = runs_of(mlflow_store)
    assert run.info.status == "FINISHED" and objective == run.data.metrics["det.mAP50_95"]
    assert run.data.tags["gf.oom_retry.1"].startswith("batch 8 -> 4")
    assert run.data.tags["gf.train.batch_used"] == "4"


def test_out_of_memory_below_the_floor_fails_clearly(mlflow_store, monkeypatch):
    def always_oom(model, args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(training, "_fit", always_oom)
    with pytest.raises(TrainingError, match="min_batch=4"):
        train(to_typed(compose(["scenario=smoke", "train.min_batch=4"])))
    [run] = runs_of(mlflow_store)
    assert run.info.status == "FAILED" and run.data.tags["gf.oom_retry.1"].startswith("batch 8 -> 4")


def test_sigterm_ends_the_run_killed(mlflow_store, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.Popen([sys.executable, "-m", "guardianflow.train", "scenario=smoke", "train.epochs=200",
                             f"hydra.run.dir={tmp_path}/outputs"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            runs = runs_of(mlflow_store)
            if runs and _history(runs[0].info.run_id, "val.mAP50"):
                break
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(1)
        else:
            pytest.fail("training never logged an epoch")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-3000:]
    assert "KILLED" in err
    [run] = runs_of(mlflow_store)
    assert run.info.status == "KILLED" and "SIGTERM" in run.data.tags["gf.error"]
    assert _history(run.info.run_id, "val.mAP50"), "the epochs logged before stay"
