"""A one-node SLURM cluster for the tests, as plain processes (Debian's slurm-wlm and munge, no systemd, no
cgroups): munged as the munge user, slurmctld and slurmd as root with every path in the test's folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.stack.servers import free_port

NEEDED = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


def missing() -> list[str]:
    found = {name: shutil.which(name) or (Path("/usr/sbin") / name).exists() for name in NEEDED}
    return [name for name, ok in found.items() if not ok]


# CI (GF_REQUIRE_CLUSTER=1) installs slurm-wlm and munge: there a missing part fails instead of skipping.
needed = pytest.mark.skipif(bool(missing()) and not os.environ.get("GF_REQUIRE_CLUSTER"),
                            reason=f"needs SLURM and munge (apt-get install slurm-wlm munge): missing "
                                   f"{', '.join(missing())}")


def _sbin(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin") / name)


def _munge() -> None:
    """munged, once per machine (a running one is reused): the cluster's authentication."""
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode == 0:
        return
    subprocess.run(["install", "-d", "-o", "munge", "-g", "munge", "-m", "0755", "/run/munge"], check=True)
    subprocess.run(["runuser", "-u", "munge", "--", _sbin("munged")], check=True)


def _config(folder: Path) -> str:
    node = subprocess.run([_sbin("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    name = node.split()[0].split("=", 1)[1]
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    return "\n".join([
        "ClusterName=gftest", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core", "MpiDefault=none", "ReturnToService=2", "SchedulerType=sched/backfill",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        f"StateSaveLocation={folder}/state", f"SlurmdSpoolDir={folder}/spool",
        f"SlurmctldPidFile={folder}/slurmctld.pid", f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log", f"SlurmdLogFile={folder}/slurmd.log",
        # A requeued job may start again cred_expire s after its last start ended (120 by default, 5 at least): 10
        # here. No event starts it then, the main scheduling loop does, every sched_interval s (60 by default): 2 here,
        # so a requeued job runs again about 12 s after its requeue instead of 40-90 s.
        "SchedulerParameters=defer,sched_interval=2", "MessageTimeout=20",
        "AuthInfo=cred_expire=10",
        f"{node} State=UNKNOWN",
        f"PartitionName=debug Nodes={name} Default=YES MaxTime=INFINITE State=UP", ""])


@contextmanager
def one_node_cluster(folder: Path):
    """Start the cluster in `folder`; yields the environment clients need (SLURM_CONF)."""
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    conf = folder / "slurm.conf"
    conf.write_text(_config(folder))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    _munge()
    subprocess.run([_sbin("slurmctld"), "-i"], env=env, check=True)
    subprocess.run([_sbin("slurmd")], env=env, check=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout
            if state.strip() in ("idle", "mix", "alloc"):
                break
            if time.monotonic() > deadline:
                log = (folder / "slurmctld.log").read_text()[-2000:] if (folder / "slurmctld.log").exists() else ""
                raise RuntimeError(f"the one-node SLURM cluster did not come up (sinfo: {state!r}):\n{log}")
            time.sleep(0.5)
        yield {"SLURM_CONF": str(conf)}
    finally:
        subprocess.run(["scancel", "--full", "--user", "root"], env=env, capture_output=True)
        for name in ("slurmd", "slurmctld"):
            pidfile = folder / f"{name}.pid"
            if pidfile.exists():
                try:
                    os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(1)


def queue(cluster_env: dict[str, str]) -> str:
    """What squeue lists (empty when no job is left)."""
    return subprocess.run(["squeue", "-h"], env={**os.environ, **cluster_env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def drained(cluster_env: dict[str, str], timeout: float = 60) -> str:
    """What squeue lists once no job is left, or after `timeout` s: a job whose work ended may show as running a
    few seconds longer (its epilogue, the controller's next look), which is not a job left behind."""
    deadline = time.monotonic() + timeout
    while (left := queue(cluster_env)) and time.monotonic() < deadline:
        time.sleep(1)
    return left


def sigterm_when(proc: subprocess.Popen, ready, timeout: float = 180) -> str:
    """Wait until `ready()` is true while `proc` runs, send it SIGTERM, and return its stderr once it ended."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, f"not ready within {timeout} s"
            time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
