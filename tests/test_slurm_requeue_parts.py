"""The parts of a train job's requeue that need no cluster (tests/cluster/test_slurm_requeue.py runs the whole of
it on one): SLURM's warning taken by one thread and never by the processes started meanwhile, the sbatch options
each step's job gets, and the check of requeue_warning_s against the train job's time limit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gfcore.cluster import slurm
from gfcore.config.cluster import SlurmStepsConfig
from gfcore.core.errors import ConfigError
from gfcore.orchestration.slurm_steps import _requeue_flags
from tests.conftest import REPO

# Run apart (a regression would end the process it runs in): a thread started before the block, as a library's
# own (polars, a sender) is, which blocks nothing; a child through a shell that stays, as MLflow's `bash -c` for a
# virtualenv; then SIGUSR1 to every process, as SLURM sends its warning to every process of a job step.
SCRIPT = """
import signal, subprocess, sys, threading, time
import psutil
from gfcore.core import interrupts

threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
taken = []
child = "import time\\nfor _ in range(600):\\n    time.sleep(0.1)\\n"
with interrupts.taken_by_thread(signal.SIGUSR1, lambda: taken.append(1)):
    shell = subprocess.Popen(["bash", "-c", f"{sys.executable} -c '{child}'; echo ended"])
    tree = [psutil.Process(shell.pid)]
    try:
        while not tree[0].children():
            time.sleep(0.05)
        tree += tree[0].children(recursive=True)
        for _ in range(3):  # a few, in case one lands in the thread that blocks nothing
            for proc in [psutil.Process(), *tree]:
                proc.send_signal(signal.SIGUSR1)
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        while not taken and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        alive = [p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree]
    finally:
        for proc in tree:
            proc.kill()
        shell.wait()
blocked = signal.SIGUSR1 in signal.pthread_sigmask(signal.SIG_BLOCK, [])
print(f"taken={bool(taken)} alive={alive} blocked_after={blocked}")
"""


def test_the_warning_reaches_only_the_thread_that_takes_it_not_the_processes_started_meanwhile():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{proc.returncode}: {proc.stderr[-3000:]}"
    assert "taken=True alive=[True, True] blocked_after=False" in proc.stdout, proc.stdout + proc.stderr[-3000:]


def test_only_train_jobs_are_requeued_and_warned():
    assert _requeue_flags("train", SlurmStepsConfig()) == {"requeue": True, "signal": "USR1@60"}
    assert _requeue_flags("train", SlurmStepsConfig(requeue_warning_s=0)) == {"requeue": True}
    assert _requeue_flags("quant", SlurmStepsConfig()) == {"no_requeue": True}
    assert _requeue_flags("infer", SlurmStepsConfig()) == {"no_requeue": True}


def test_the_warning_must_come_before_the_train_jobs_time_limit():
    SlurmStepsConfig(requeue_warning_s=30, steps={"train": {"timeout_min": 1}})
    SlurmStepsConfig(requeue_warning_s=0, timeout_min=1)
    for bad in ({"requeue_warning_s": 60, "steps": {"train": {"timeout_min": 1}}}, {"requeue_warning_s": 90,
                "timeout_min": 1}, {"requeue_warning_s": -1}):
        with pytest.raises(ConfigError, match="requeue_warning_s"):
            SlurmStepsConfig(**bad)


def test_restart_count(monkeypatch):
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert slurm.restart_count() == 0
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    assert slurm.restart_count() == 2
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert not slurm.requeued_since_start(), "outside a job nothing was requeued"
