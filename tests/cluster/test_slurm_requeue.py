"""A train step's SLURM job that is requeued (`scontrol requeue`, as a preemption does) or comes near its time
limit (warned by SIGUSR1 pipeline.slurm.requeue_warning_s before it, it requeues itself) continues as the same job
and the same run: the requeued job resumes the run from its last checkpoint, and the pipeline waits it through.

The smoke set trains an epoch in 0.4 s on an idle machine and in several seconds on a busy one, so "a training
that needs longer than its job" is made so, not guessed: once epoch 2 is logged the training process is stopped
(SIGSTOP). SLURM ends a job's processes with SIGCONT then SIGTERM, so the training wakes up to the SIGTERM of the
requeue, as a long training would get it mid-epoch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import mlflow
import psutil
import pytest

from tests.cluster import slurm
from tests.conftest import REPO, runs_of

pytestmark = [slurm.needed, pytest.mark.slow]

EPOCHS, STOP_AT = 5, 2
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


def _stopped_after(proc: subprocess.Popen, store: str, out, epoch: int, timeout: float = 600):
    """Once the train run has logged `epoch`, its training process is stopped (SIGSTOP); returns the run."""
    client = mlflow.MlflowClient(store)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        train = [r for r in runs_of(store) if r.data.tags.get("exp.type") == "train"]
        if train and max(_epochs(client, train[0].info.run_id), default=0) >= epoch:
            [training] = _training(out)
            training.send_signal(signal.SIGSTOP)
            return train[0]
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the train run never logged epoch {epoch}: {proc.communicate()[1][-3000:]}")


def _training(out) -> list[psutil.Process]:
    """This test's training process (python -m guardianflow.train ... hydra.run.dir=<out>/steps/train)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        if "guardianflow.train" in line and f"{out}/steps/train" in line and not line.startswith(("bash", "/bin/")):
            found.append(p)
    return found


def _resume_training(out) -> None:
    """SIGCONT (SLURM sent one already with its SIGTERM: this one only makes sure)."""
    for p in _training(out):
        p.send_signal(signal.SIGCONT)


def _scontrol(cluster: dict[str, str], *args: str) -> str:
    return subprocess.run(["scontrol", *args], env={**os.environ, **cluster}, capture_output=True, text=True,
                          check=True).stdout


def _job_field(cluster: dict[str, str], job_id: str, name: str) -> str:
    fields = dict(f.split("=", 1) for f in _scontrol(cluster, "show", "job", "-o", job_id).split() if "=" in f)
    return fields[name]


def _wait_requeued(proc: subprocess.Popen, cluster: dict[str, str], job_id: str, timeout: float = 120) -> None:
    """Until SLURM counted the job's restart (at once, before it sends SIGTERM)."""
    deadline = time.monotonic() + timeout
    while _job_field(cluster, job_id, "Restarts") == "0":
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"job {job_id} was not requeued: {proc.communicate()[1][-3000:]}")
        time.sleep(0.5)


def _job_log(out, job_id: str) -> str:
    return (out / "steps" / "slurm" / "train" / job_id / f"{job_id}_0_log.err").read_text(errors="replace")


def _one_resumed_run(proc: subprocess.Popen, store: str, cluster: dict[str, str], out, job_id: str):
    """The pipeline finished with one train run, resumed once (gf.resume.1) in the same SLURM job, every epoch
    once in its history, and the infer step on that run."""
    try:
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-4000:]
    assert f"SLURM job {job_id} was requeued" in stdout + stderr, "the pipeline saw the requeue and kept waiting"
    runs = runs_of(store)
    [parent] = [r for r in runs if r.data.tags.get("exp.type") == "pipeline"]
    [train] = [r for r in runs if r.data.tags.get("exp.type") == "train"]
    [infer] = [r for r in runs if r.data.tags.get("exp.type") == "infer"]
    assert parent.info.status == "FINISHED" and train.info.status == "FINISHED" and infer.info.status == "FINISHED"
    assert infer.data.params["source_run_id"] == train.info.run_id, "the next step uses the same train run"
    assert train.data.tags["slurm.job_id"] == job_id, "the same SLURM job ran it to the end"
    assert "gf.error" not in train.data.tags and "gf.resume.2" not in train.data.tags
    client = mlflow.MlflowClient(store)
    for key in PER_EPOCH:
        assert _epochs(client, train.info.run_id, key) == list(range(1, EPOCHS + 1)), key
    resumed = train.data.tags["gf.resume.1"]
    assert resumed.startswith("epoch ") and f" of {EPOCHS} " in resumed, resumed  # mid-training, from a checkpoint
    assert "SLURM requeued job" in resumed, resumed
    log = _job_log(out, job_id)
    assert "guardianflow: stopped by SIGTERM; the run is marked KILLED." in log, "the training ended its own run"
    assert f"train.resume_run_id={train.info.run_id}" in log, "the requeued job resumed the run"
    assert not slurm.drained(cluster), "no job is left"
    return log


def test_a_train_job_requeued_mid_training_finishes_as_one_run(cluster, mlflow_store, tmp_path):
    out = tmp_path / "outputs"
    proc = _pipeline(mlflow_store, cluster, out)
    try:
        job_id = _stopped_after(proc, mlflow_store, out, STOP_AT).data.tags["slurm.job_id"]
        _scontrol(cluster, "requeue", job_id)  # as a preemption: SIGTERM to the job, then it runs again
        _wait_requeued(proc, cluster, job_id)
        _resume_training(out)
    finally:
        _resume_training(out)
    _one_resumed_run(proc, mlflow_store, cluster, out, job_id)


def _seconds(elapsed: str) -> int:
    """SLURM's [D-]HH:MM:SS as seconds."""
    days, _, clock = elapsed.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return int(days or 0) * 86400 + h * 3600 + m * 60 + s


def test_b_train_job_near_its_time_limit_requeues_itself_and_finishes_as_one_run(cluster, mlflow_store, tmp_path):
    """The warning comes from SLURM's own time-limit check (every 30 s): with the training stopped after epoch 2,
    the job's limit is cut to the whole minutes that put its warning point (120 s before it) behind the job's run
    time, so SIGUSR1 comes at SLURM's next check, a minute or more before the limit. The requeued job gets its
    hour back (else its warning would come again at once)."""
    out = tmp_path / "outputs"
    proc = _pipeline(mlflow_store, cluster, out, "pipeline.slurm.requeue_warning_s=120")
    try:
        job_id = _stopped_after(proc, mlflow_store, out, STOP_AT).data.tags["slurm.job_id"]
        submission = (out / "steps" / "slurm" / "train" / job_id / f"{job_id}_submission.sh").read_text()
        assert "#SBATCH --requeue" in submission and "#SBATCH --signal=USR1@120" in submission
        limit_min = _seconds(_job_field(cluster, job_id, "RunTime")) // 60 + 2
        _scontrol(cluster, "update", f"JobId={job_id}", f"TimeLimit={limit_min}")
        _wait_requeued(proc, cluster, job_id, timeout=90)
        _scontrol(cluster, "update", f"JobId={job_id}", "TimeLimit=60")
        _resume_training(out)
    finally:
        _resume_training(out)
    log = _one_resumed_run(proc, mlflow_store, cluster, out, job_id)
    assert f"SLURM job {job_id} is near its time limit (SIGUSR1): requeueing it" in log
    assert "DUE TO TIME LIMIT" not in log, "requeued before the limit, not ended by it"
