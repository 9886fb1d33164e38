"""Nothing left RUNNING, honest exit codes: a sweep, a pipeline or a comparison stopped by SIGTERM ends its
parent KILLED, its children and their processes ended; a sweep in which no job finished exits non-zero."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import REPO, run_entrypoint, runs_of

FAST = ["scenario=smoke", "registry.register=false", "tracking.system_metrics=false"]


def _start(uri, tmp_path, module, *overrides) -> subprocess.Popen:
    """`python -m guardianflow.<module>` in the background, its output in tmp_path/out.log."""
    runs_of(uri)  # create the store's tables first: polling it while the command creates them is a race
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_RUN_ID", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    with open(tmp_path / "out.log", "w") as log:  # the child keeps its own copy of the file
        return subprocess.Popen([sys.executable, "-m", f"guardianflow.{module}", *FAST, *overrides,
                                 f"hydra.run.dir={tmp_path}/outputs", f"hydra.sweep.dir={tmp_path}/multirun"],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _wait_for_running(uri, proc, exp_type, timeout=120):
    """Poll the store until a run of `exp_type` is RUNNING (a step, a sweep job), and return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the command ended before any run of its children started"
        running = [r for r in runs_of(uri) if r.info.status == "RUNNING" and r.data.tags.get("exp.type") == exp_type
                   and r.data.tags.get("mlflow.parentRunId")]
        if running:
            return running[0]
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"no {exp_type} run started within {timeout} s")


def _stop(proc, tmp_path, timeout=90) -> int:
    descendants = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("still running long after SIGTERM:\n" + (tmp_path / "out.log").read_text()[-3000:])
    _, alive = psutil.wait_procs(descendants, timeout=15)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], f"processes left running: {alive}"
    return rc


def _assert_nothing_running(uri, tmp_path, parent_type):
    runs = runs_of(uri)
    log = (tmp_path / "out.log").read_text()[-3000:]
    assert not [r for r in runs if r.info.status == "RUNNING"], log
    [parent] = [r for r in runs if r.data.tags.get("exp.type") == parent_type]
    assert parent.info.status == "KILLED", log
    return parent, [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_sigterm_stops_a_sweep(mlflow_store, tmp_path, launcher):
    proc = _start(mlflow_store, tmp_path, "sweep", "train.epochs=20", "train.lr0=0.001,0.002,0.003",
                  f"launcher={launcher}")
    job = _wait_for_running(mlflow_store, proc, "train")
    assert _stop(proc, tmp_path) == 143
    _, children = _assert_nothing_running(mlflow_store, tmp_path, "sweep")
    assert job.info.run_id in {c.info.run_id for c in children}
    assert all(c.info.status in ("KILLED", "FAILED") for c in children)
    assert len(children) < 3  # the sweep stopped: no job started after the signal


def test_sigterm_stops_a_submitit_sweep(mlflow_store, tmp_path):
    proc = _start(mlflow_store, tmp_path, "sweep", "train.epochs=20", "train.lr0=0.001,0.002",
                  "launcher=submitit_local")
    _wait_for_running(mlflow_store, proc, "train", timeout=180)
    assert _stop(proc, tmp_path) == 143
    _, children = _assert_nothing_running(mlflow_store, tmp_path, "sweep")
    assert children and all(c.info.status in ("KILLED", "FAILED") for c in children)


def test_a_sweep_in_which_no_job_finished_exits_non_zero(mlflow_store, tmp_path):
    # yolo11s.pt is not on disk: every job fails inside its run.
    proc = run_entrypoint(["guardianflow.sweep", *FAST, "train.epochs=1", "model=yolo11s", "train.lr0=0.001,0.002",
                           f"hydra.sweep.dir={tmp_path}/multirun"], mlflow_store, tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "ended FAILED" in proc.stderr
    runs = runs_of(mlflow_store)
    [parent] = [r for r in runs if r.data.tags["exp.type"] == "sweep"]
    assert parent.info.status == "FAILED"
    assert [r.info.status for r in runs if r is not parent] == ["FAILED", "FAILED"]


def test_a_sweep_whose_parent_cannot_be_opened_runs_no_job_and_exits_non_zero(mlflow_store, tmp_path):
    import mlflow

    mlflow.delete_experiment(mlflow.create_experiment("demo/local-plant1/yard"))
    proc = run_entrypoint(["guardianflow.sweep", *FAST, "train.lr0=0.001,0.002", f"hydra.sweep.dir={tmp_path}/multirun"],
                          mlflow_store, tmp_path, timeout=300)
    assert proc.returncode == 2 and "experiment 'demo/local-plant1/yard' is deleted" in proc.stderr, proc.stderr[-3000:]
    assert "Launching" not in proc.stderr and mlflow.search_runs(search_all_experiments=True, output_format="list") == []


def test_a_stopped_block_stops_what_it_started_also_what_its_library_orphaned():
    from gfcore.core.interrupts import Terminated, children_stopped_when_interrupted

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), children_stopped_when_interrupted(grace_s=5):
        # A shell that does not exec its command (as under an activated environment) and a library that, when
        # interrupted, stops only the shell it started (as MLflow's `mlflow run` does).
        shell = subprocess.Popen(["bash", "-c", f"{sys.executable} -c 'import time; time.sleep(300)'; true"])
        while not psutil.Process(shell.pid).children():
            time.sleep(0.05)
        [command] = psutil.Process(shell.pid).children()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        except KeyboardInterrupt:
            shell.kill()
            shell.wait()
            raise
    assert not command.is_running() or command.status() == psutil.STATUS_ZOMBIE
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize("entry, overrides, parent_type", [
    ("full_pipeline", ["pipeline.quant_backends=[]"], "pipeline"),
    ("compare", ["compare.architectures=[yolov8n,yolo11n]"], "compare"),
])
def test_sigterm_stops_a_pipeline_or_comparison_step(mlflow_store, tmp_path, entry, overrides, parent_type):
    proc = _start(mlflow_store, tmp_path, entry, "train.epochs=30", *overrides)
    step = _wait_for_running(mlflow_store, proc, "train", timeout=180)
    assert _stop(proc, tmp_path) == 143
    _, children = _assert_nothing_running(mlflow_store, tmp_path, parent_type)
    assert [c.info.run_id for c in children] == [step.info.run_id]
    assert children[0].info.status in ("KILLED", "FAILED")
