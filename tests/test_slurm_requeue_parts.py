"""The parts of a train job's requeue that need no cluster (tests/cluster/test_slurm_requeue.py runs the whole of
it on one): SLURM's warning taken by one thread and never by the processes started meanwhile, the sbatch options
each step's job gets, and the check of requeue_warning_s against the train job's time limit."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

from gfcore.cluster import slurm
from gfcore.config.cluster import SlurmStepsConfig
from gfcore.core import interrupts
from gfcore.core.errors import ConfigError
from gfcore.orchestration.slurm_steps import _requeue_flags

CHILD = "import time\nfor _ in range(600):\n    time.sleep(0.1)\n"


def test_the_warning_reaches_only_the_thread_that_takes_it_not_the_processes_started_meanwhile():
    taken: list[float] = []
    with interrupts.taken_by_thread(signal.SIGUSR1, lambda: taken.append(time.monotonic())):
        # through a shell that stays (it has more to run after), as MLflow's `bash -c` does for a virtualenv
        shell = subprocess.Popen(["bash", "-c", f"{sys.executable} -c '{CHILD}'; echo ended"])
        tree = [psutil.Process(shell.pid)]
        try:
            deadline = time.monotonic() + 30
            while not psutil.Process(shell.pid).children():
                assert time.monotonic() < deadline
                time.sleep(0.05)
            tree += psutil.Process(shell.pid).children(recursive=True)
            for proc in [psutil.Process(), *tree]:  # as SLURM does: every process of the job step
                proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while not taken:
                assert time.monotonic() < deadline, "the warning was not taken"
                time.sleep(0.05)
            time.sleep(0.5)
            assert all(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree), "a child died of it"
            assert len(taken) == 1
        finally:
            for proc in tree:
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            shell.wait()
    assert signal.SIGUSR1 not in signal.pthread_sigmask(signal.SIG_BLOCK, []), "the block is lifted after it"


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
