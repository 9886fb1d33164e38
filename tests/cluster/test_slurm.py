"""Sweeps on a real one-node SLURM cluster (tests/cluster/slurm.py): the shipped `launcher=submitit_slurm` preset
as is, each child run recording its SLURM job."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.cluster import slurm
from tests.conftest import REPO, run_entrypoint, runs_of

pytestmark = slurm.needed

FAST = ["scenario=smoke", "train.epochs=1", "registry.register=false", "tracking.system_metrics=false"]


def test_two_job_sweep_with_the_shipped_preset(cluster, mlflow_store, tmp_path):
    """No override of the preset: 1 CPU, 2 GB and no GPU fit the tests' node of 2 CPUs and no GPU."""
    proc = run_entrypoint(["guardianflow.sweep", *FAST, "launcher=submitit_slurm", "train.lr0=0.001,0.002",
                           f"hydra.sweep.dir={tmp_path}/multirun"], mlflow_store, tmp_path, timeout=600, **cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_of(mlflow_store)
    [parent] = [r for r in runs if r.data.tags["exp.type"] == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert all(c.info.status == "FINISHED" for c in children)
    jobs = {c.data.tags["slurm.job_id"] for c in children}
    assert len(jobs) == 2 and all(j.isdigit() for j in jobs), "each child records its own SLURM job"
    assert {c.data.tags["slurm.array_task_id"] for c in children} == {"0", "1"}
    assert {c.data.tags["slurm.node"] for c in children} == {os.uname().nodename.split(".")[0]}
    assert len({c.data.tags["slurm.array_job_id"] for c in children}) == 1, "one array"


def test_a_request_no_node_meets_is_said_at_once(cluster, mlflow_store, tmp_path):
    """8 CPUs on a 2-CPU node: SLURM accepts the jobs and keeps them PENDING (PartitionConfig) for ever; 100 TB of
    memory: sbatch refuses them. Either is one clear error within a bounded time, the parent FAILED."""
    sweep = [*FAST, "launcher=submitit_slurm", "train.lr0=0.001,0.002", "hydra.launcher.impossible_after_s=5"]
    for n, (ask, said) in enumerate((("cpus_per_task=8", "PENDING for PartitionConfig"),
                                     ("mem_gb=100000", "Memory specification can not be satisfied"))):
        started = time.monotonic()
        proc = run_entrypoint(["guardianflow.sweep", *sweep, f"hydra.launcher.{ask}",
                               f"hydra.sweep.dir={tmp_path}/multirun{n}"], mlflow_store, tmp_path, timeout=300,
                              **cluster)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert time.monotonic() - started < 90, "reported within a bounded time, not a hang"
        assert said in proc.stderr and ask in proc.stderr and "sinfo" in proc.stderr, proc.stderr[-3000:]
        [parent] = [r for r in runs_of(mlflow_store) if r.data.tags["exp.type"] == "sweep"][n:]
        assert parent.info.status == "FAILED" and said in parent.data.tags["gf.error"]
    assert not slurm.queue(cluster), "the PENDING jobs were cancelled"


def test_a_cancelled_job_ends_its_run_and_the_sweep_goes_on(cluster, mlflow_store, tmp_path):
    """Job 0 (300 epochs) is scancel'd while it trains; job 1 (1 epoch) finishes: the sweep ends FINISHED."""
    proc = _start([*FAST, "train.epochs=300,1"], mlflow_store, tmp_path, cluster)
    try:
        job = _wait_running(mlflow_store, proc, jobs=("0",))["0"]
        task = f"{job.data.tags['slurm.array_job_id']}_{job.data.tags['slurm.array_task_id']}"
        subprocess.run(["scancel", task], env={**os.environ, **cluster}, check=True)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    runs = runs_of(mlflow_store)
    [parent] = [r for r in runs if r.data.tags["exp.type"] == "sweep"]
    children = {r.data.tags["gf.sweep.job"]: r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert children["0"].info.status == "KILLED" and children["0"].data.tags["slurm.state"] == "CANCELLED"
    assert "ended CANCELLED" in children["0"].data.tags["gf.error"], "who stopped it, beside how it stopped"
    assert children["1"].info.status == "FINISHED"
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep.failed"] == 1
    assert parent.data.tags["best.run_id"] == children["1"].info.run_id


def test_sigterm_to_the_sweep_cancels_its_jobs(cluster, mlflow_store, tmp_path):
    proc = _start([*FAST, "train.epochs=300", "train.lr0=0.001,0.002"], mlflow_store, tmp_path, cluster)
    err = slurm.sigterm_when(proc, lambda: _running(mlflow_store, ("0", "1")))
    assert proc.returncode == 143, err[-3000:]
    runs = runs_of(mlflow_store)
    [parent] = [r for r in runs if r.data.tags["exp.type"] == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "KILLED" and len(children) == 2
    assert all(c.info.status == "KILLED" for c in children), [c.info.status for c in children]
    assert not slurm.queue(cluster), "the jobs were cancelled"


def _start(args, uri, tmp_path, cluster):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, **cluster}
    env.pop("MLFLOW_RUN_ID", None)
    return subprocess.Popen([sys.executable, "-m", "guardianflow.sweep", *args, "launcher=submitit_slurm",
                             f"hydra.sweep.dir={tmp_path}/multirun", f"hydra.run.dir={tmp_path}/outputs"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _running(uri, jobs):
    """The sweep's child runs by job number (gf.sweep.job), once those of `jobs` are RUNNING in their SLURM jobs."""
    found = {r.data.tags.get("gf.sweep.job"): r for r in runs_of(uri)
             if r.info.status == "RUNNING" and "slurm.job_id" in r.data.tags}
    return found if all(j in found for j in jobs) else None


def _wait_running(uri, proc, jobs, timeout=180):
    deadline = time.monotonic() + timeout
    while not (found := _running(uri, jobs)):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"jobs {jobs} did not start within {timeout} s"
        time.sleep(1)
    return found
