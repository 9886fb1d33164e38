"""A train step's SLURM job that is requeued (`scontrol requeue`, as a preemption does) or reaches its time limit
(warned by SIGUSR1 pipeline.slurm.requeue_warning_s before, it requeues itself) continues as the same job and the
same run: the requeued job resumes the run from its last checkpoint, and the pipeline waits it through."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import mlflow
import pytest

from tests.cluster import slurm
from tests.conftest import REPO, runs_of

pytestmark = [slurm.needed, pytest.mark.slow]

EPOCHS = 8
PER_EPOCH = ("val.mAP50", "val.mAP50_95", "train.box_loss", "lr.pg0")


def _pipeline(store: str, cluster: dict[str, str], out, *extra: str) -> subprocess.Popen:
    """full_pipeline on the smoke set with train as a SLURM job (quant left out: train, then infer)."""
    mlflow.MlflowClient(store).search_experiments()  # the store's tables, made here before the jobs use it
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, **cluster}
    for var in ("MLFLOW_RUN_ID", "PYTEST_CURRENT_TEST", "MLFLOW_EXPERIMENT_ID"):
        env.pop(var, None)
    return subprocess.Popen([sys.executable, "-m", "guardianflow.full_pipeline", "scenario=smoke",
                             f"train.epochs={EPOCHS}", "tracking.system_metrics=false", "pipeline.launcher=slurm",
                             "pipeline.quant_backends=[]", *extra, f"hydra.run.dir={out}"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _epochs(client, run_id: str, key: str = "val.mAP50") -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def _train_when(proc: subprocess.Popen, store: str, epoch: int, timeout: float = 600):
    """The train run, once it has logged `epoch` (the pipeline still running)."""
    client = mlflow.MlflowClient(store)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        train = [r for r in runs_of(store) if r.data.tags.get("exp.type") == "train"]
        if train and max(_epochs(client, train[0].info.run_id), default=0) >= epoch:
            return train[0]
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"the train run never logged epoch {epoch}: {proc.communicate()[1][-3000:]}")


def _scontrol(cluster: dict[str, str], *args: str) -> str:
    return subprocess.run(["scontrol", *args], env={**os.environ, **cluster}, capture_output=True, text=True,
                          check=True).stdout


def _one_resumed_run(proc: subprocess.Popen, store: str, cluster: dict[str, str], job_id: str):
    """The pipeline finished with one train run, resumed (gf.resume.1, in the same SLURM job), every epoch once."""
    try:
        _, err = proc.communicate(timeout=900)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-4000:]
    assert f"SLURM job {job_id} was requeued" in err, "the pipeline saw the requeue and kept waiting"
    runs = runs_of(store)
    [parent] = [r for r in runs if r.data.tags.get("exp.type") == "pipeline"]
    [train] = [r for r in runs if r.data.tags.get("exp.type") == "train"]
    [infer] = [r for r in runs if r.data.tags.get("exp.type") == "infer"]
    assert parent.info.status == "FINISHED" and train.info.status == "FINISHED" and infer.info.status == "FINISHED"
    assert infer.data.params["source_run_id"] == train.info.run_id, "the next step uses the same train run"
    assert train.data.tags["slurm.job_id"] == job_id, "the same SLURM job ran it to the end"
    assert "gf.error" not in train.data.tags
    client = mlflow.MlflowClient(store)
    for key in PER_EPOCH:
        assert _epochs(client, train.info.run_id, key) == list(range(1, EPOCHS + 1)), key
    assert "SLURM requeued job" in train.data.tags["gf.resume.1"], train.data.tags["gf.resume.1"]
    assert not slurm.queue(cluster), "no job is left"
    return train


def test_a_train_job_requeued_mid_training_finishes_as_one_run(cluster, mlflow_store, tmp_path):
    proc = _pipeline(mlflow_store, cluster, tmp_path / "outputs")
    train = _train_when(proc, mlflow_store, 2)
    job_id = train.data.tags["slurm.job_id"]
    _scontrol(cluster, "requeue", job_id)  # as a preemption: SIGTERM to the job, then it runs again
    train = _one_resumed_run(proc, mlflow_store, cluster, job_id)
    assert "gf.resume.2" not in train.data.tags
    assert train.data.tags["gf.resume.1"].startswith("epoch "), "resumed from a checkpoint mid-training"
