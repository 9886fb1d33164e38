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

PER_EPOCH = ("val.mAP50", "val.mAP50_95", "train.box_loss", "lr.pg0")


def _pipeline(store: str, cluster: dict[str, str], out, epochs: int, *extra: str) -> subprocess.Popen:
    """full_pipeline on the smoke set with train as a SLURM job (quant left out: train, then infer)."""
    mlflow.MlflowClient(store).search_experiments()  # the store's tables, made here before the jobs use it
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, **cluster}
    for var in ("MLFLOW_RUN_ID", "PYTEST_CURRENT_TEST", "MLFLOW_EXPERIMENT_ID"):
        env.pop(var, None)
    return subprocess.Popen([sys.executable, "-m", "guardianflow.full_pipeline", "scenario=smoke",
                             f"train.epochs={epochs}", "tracking.system_metrics=false", "pipeline.launcher=slurm",
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


def _job_log(out, job_id: str) -> str:
    return (out / "steps" / "slurm" / "train" / job_id / f"{job_id}_0_log.err").read_text(errors="replace")


def _one_resumed_run(proc: subprocess.Popen, store: str, cluster: dict[str, str], job_id: str, epochs: int):
    """The pipeline finished with one train run, resumed (gf.resume.1, in the same SLURM job), every epoch once."""
    try:
        out, err = proc.communicate(timeout=900)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-4000:]
    assert f"SLURM job {job_id} was requeued" in out + err, "the pipeline saw the requeue and kept waiting"
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
        assert _epochs(client, train.info.run_id, key) == list(range(1, epochs + 1)), key
    assert "SLURM requeued job" in train.data.tags["gf.resume.1"], train.data.tags["gf.resume.1"]
    assert not slurm.queue(cluster), "no job is left"
    return train


def test_a_train_job_requeued_mid_training_finishes_as_one_run(cluster, mlflow_store, tmp_path):
    epochs = 6
    proc = _pipeline(mlflow_store, cluster, tmp_path / "outputs", epochs)
    train = _train_when(proc, mlflow_store, 2)
    job_id = train.data.tags["slurm.job_id"]
    _scontrol(cluster, "requeue", job_id)  # as a preemption: SIGTERM to the job, then it runs again
    train = _one_resumed_run(proc, mlflow_store, cluster, job_id, epochs)
    assert "gf.resume.2" not in train.data.tags
    resumed = train.data.tags["gf.resume.1"]
    assert resumed.startswith("epoch ") and f" of {epochs} " in resumed, "resumed from a checkpoint mid-training"
    assert "guardianflow: stopped by SIGTERM" in _job_log(tmp_path / "outputs", job_id), "the training ended its run"


def _job_field(cluster: dict[str, str], job_id: str, name: str) -> str:
    fields = dict(f.split("=", 1) for f in _scontrol(cluster, "show", "job", "-o", job_id).split() if "=" in f)
    return fields[name]


def _seconds(elapsed: str) -> int:
    """SLURM's [D-]HH:MM:SS as seconds."""
    days, _, clock = elapsed.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return int(days or 0) * 86400 + h * 3600 + m * 60 + s


def test_b_train_job_near_its_time_limit_requeues_itself_and_finishes_as_one_run(cluster, mlflow_store, tmp_path):
    """The warning comes from SLURM's own time-limit check: once epoch 1 is logged, the job's limit is cut to the
    next whole minutes that put its warning point (120 s before) behind it, so SIGUSR1 comes at SLURM's next check
    (every 30 s), a minute or more before the limit. The requeued start gets its hour back."""
    epochs = 40  # more than 30 s of epochs after the first: the warning comes before the training ends
    out = tmp_path / "outputs"
    proc = _pipeline(mlflow_store, cluster, out, epochs, "pipeline.slurm.requeue_warning_s=120")
    train = _train_when(proc, mlflow_store, 1)
    job_id = train.data.tags["slurm.job_id"]
    assert "--signal=USR1@120" in (out / "steps" / "slurm" / "train" / job_id / f"{job_id}_submission.sh").read_text()
    limit_min = _seconds(_job_field(cluster, job_id, "RunTime")) // 60 + 2
    _scontrol(cluster, "update", f"JobId={job_id}", f"TimeLimit={limit_min}")
    deadline = time.monotonic() + 180
    while _job_field(cluster, job_id, "Restarts") == "0":
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the job did not requeue itself (limit {limit_min} min): {proc.communicate()[1][-3000:]}")
        time.sleep(1)
    _scontrol(cluster, "update", f"JobId={job_id}", "TimeLimit=60")
    train = _one_resumed_run(proc, mlflow_store, cluster, job_id, epochs)
    log = _job_log(out, job_id)
    assert f"SLURM job {job_id} is near its time limit (SIGUSR1): requeueing it" in log
    assert "DUE TO TIME LIMIT" not in log, "requeued before the limit, not ended by it"
    assert "guardianflow: stopped by SIGTERM" in log, "the training never saw SIGUSR1 (it would have died of it)"
