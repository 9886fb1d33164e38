"""SLURM jobs that never leave a sweep hanging: the jobs submitit submitted, watched through `squeue` and
`scontrol` (which work without SLURM's accounting database, where submitit's `sacct` does not) until each one
has written its result, has ended another way (scancel, time limit, out of memory, a lost node) or can never
start (PENDING for a reason no waiting clears: a request beyond what the partition or its nodes have)."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gfcore.core import interrupts
from gfcore.core.errors import ClusterError

log = logging.getLogger(__name__)

# PENDING reasons that do not clear by waiting for other jobs: the request itself does not fit.
IMPOSSIBLE = {
    "PartitionConfig": "the request exceeds what the partition allows or any of its nodes has",
    "PartitionNodeLimit": "more nodes than the partition allows",
    "PartitionTimeLimit": "a time limit above the partition's",
    "ReqNodeNotAvail": "the nodes it needs are down, drained or reserved",
    "BadConstraints": "constraints no node satisfies",
    "InvalidQOS": "a QOS that does not exist or is not allowed",
    "InvalidAccount": "an account that does not exist or is not allowed",
    "QOSMaxCpuPerJobLimit": "more CPUs than the QOS allows a job",
    "QOSMaxGRESPerJob": "more GPUs than the QOS allows a job",
    "QOSMaxMemoryPerJob": "more memory than the QOS allows a job",
    "QOSMaxWallDurationPerJobLimit": "a time limit above the QOS's",
    "AssocMaxWallDurationPerJobLimit": "a time limit above the account's",
}
KILLED_STATES = ("CANCELLED", "PREEMPTED")  # stopped from outside: the job's run ends KILLED, else FAILED
CANCEL_WAIT_S = 40.0  # how long a stopped launcher waits for the jobs it cancelled to leave the queue


@dataclass
class Outcome:
    """How one job ended: its own return value when it wrote one, else SLURM's final state and its stderr."""

    job_id: str
    result: Any = None
    state: str = "COMPLETED"
    error: str = ""

    @property
    def lost(self) -> bool:
        return self.result is None


def watch(jobs: list[Any], request: str, impossible_after_s: float, poll_s: float = 2.0) -> list[Outcome]:
    """Wait for every submitit job; raise ClusterError (after cancelling them all) when one stays PENDING for an
    IMPOSSIBLE reason for `impossible_after_s`. `request` says what the jobs asked for, for that message. A job
    SLURM requeues (it stays in the queue, PENDING again, with the same id) is waited for until it ends for good."""
    outcomes: dict[str, Outcome] = {}
    pending_since: dict[str, float] = {}
    gone_since: dict[str, float] = {}
    started: set[str] = set()  # a started job PENDING again was requeued: it is waited for, as it runs again
    while len(outcomes) < len(jobs):
        queue = _queue()
        now = time.monotonic()
        for job in jobs:
            if job.job_id in outcomes:
                continue
            if Path(job.paths.result_pickle).exists():
                outcomes[job.job_id] = _result(job)
                continue
            if queue is None:  # slurmctld did not answer this time: decide nothing
                continue
            state, reason = queue.get(job.job_id, (None, None))
            if state is None:  # left the queue: give a result written at the end a moment to appear
                if now - gone_since.setdefault(job.job_id, now) >= 2 * poll_s:
                    outcomes[job.job_id] = Outcome(job.job_id, state=final_state(job.job_id),
                                                   error=job_output(job.paths.stderr))
            elif state == "PENDING" and job.job_id in started:
                started.discard(job.job_id)
                log.info("SLURM job %s was requeued (%s): waiting for it to run again", job.job_id, reason)
            elif state == "PENDING" and reason in IMPOSSIBLE:
                if now - pending_since.setdefault(job.job_id, now) >= impossible_after_s:
                    cancel([j.job_id for j in jobs])
                    raise ClusterError(
                        f"SLURM can never start this sweep's jobs: job {job.job_id} is PENDING for {reason} "
                        f"({IMPOSSIBLE[reason]}) since {impossible_after_s:g} s. They asked for {request}. The "
                        "jobs were cancelled. Ask for what a node has (`sinfo -o '%P %c %m %G'` lists each "
                        "partition's CPUs, memory in MB and GPUs), e.g. hydra.launcher.cpus_per_task=N "
                        "hydra.launcher.mem_gb=N hydra.launcher.partition=NAME.")
            else:
                pending_since.pop(job.job_id, None)
                if state != "PENDING":
                    started.add(job.job_id)
        if len(outcomes) < len(jobs):
            time.sleep(poll_s)
    return [outcomes[j.job_id] for j in jobs]


def refused(exc: BaseException, request: str) -> ClusterError:
    """sbatch refused the submission (a request no node or partition could ever meet, an unknown partition)."""
    said = " ".join(line.strip() for line in str(exc).splitlines() if "error" in line.lower()) or str(exc)
    return ClusterError(f"SLURM refused this sweep's jobs: {said} They asked for {request}. Ask for what a node "
                        "has (`sinfo -o '%P %c %m %G'` lists each partition's CPUs, memory in MB and GPUs), e.g. "
                        "hydra.launcher.cpus_per_task=N hydra.launcher.mem_gb=N hydra.launcher.partition=NAME.")


def describe(params: dict[str, Any]) -> str:
    """What the jobs ask SLURM for, as the overrides that set it."""
    keys = ("partition", "cpus_per_task", "mem_gb", "gpus_per_node", "timeout_min", "account", "qos")
    return ", ".join(f"{k}={params[k]}" for k in keys if params.get(k) is not None)


@contextmanager
def cancelled_when_stopped(job_ids: list[str]) -> Iterator[None]:
    """SIGTERM, Ctrl-C or an error ends the block early (gfcore.core.interrupts.on_stop): the jobs are cancelled
    and waited for up to CANCEL_WAIT_S, so GuardianFlow's runs in them end KILLED, before the exception goes on. A
    ClusterError from `watch` goes on at once: `watch` cancelled the jobs already."""
    with interrupts.on_stop(lambda: cancel(job_ids, wait_s=CANCEL_WAIT_S), unless=(ClusterError,)):
        yield


def cancel(job_ids: list[str], wait_s: float = 0.0) -> None:
    """scancel the jobs; with `wait_s`, wait that long for them to leave the queue (their processes get SIGTERM
    first, so GuardianFlow's runs in them end KILLED themselves)."""
    if not job_ids:
        return
    subprocess.run(["scancel", *job_ids], capture_output=True, text=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        queue = _queue()
        if queue is not None and not set(job_ids) & set(queue):
            return
        time.sleep(1.0)


def final_state(job_id: str) -> str:
    """How a job that left the queue ended (scontrol keeps it for MinJobAge, 300 s by default)."""
    return _job_fields(job_id).get("JobState", "UNKNOWN")


def _job_fields(job_id: str) -> dict[str, str]:
    """`scontrol show job`'s fields of one job (empty when slurmctld does not know it or does not answer)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
    return dict(field.split("=", 1) for field in out.split() if "=" in field)


# --- inside a job: requeue (the time-limit warning, a preemption, `scontrol requeue`)


def restart_count() -> int:
    """How many times the job this process runs in was requeued before this start of it (SLURM_RESTART_COUNT; 0
    on its first start and outside SLURM)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    except ValueError:
        return 0


def requeued_since_start() -> bool:
    """Whether the job this process runs in has been requeued since it started (`scontrol requeue`, a preemption,
    or `requeue()`): SLURM counts the restart at once, then sends every process of the job SIGTERM, and starts the
    job again later with the same id."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return False
    try:
        return int(_job_fields(job_id).get("Restarts", 0)) > restart_count()
    except ValueError:
        return False


def requeue() -> bool:
    """Requeue the job this process runs in (`scontrol requeue $SLURM_JOB_ID`); False, logged, when SLURM refuses
    (a job submitted with --no-requeue, or a slurmctld that does not answer)."""
    job_id = os.environ.get("SLURM_JOB_ID", "")
    proc = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True)
    if proc.returncode != 0:
        log.error("could not requeue SLURM job %s: %s", job_id or "(none)", proc.stderr.strip()[:300])
        return False
    log.info("requeued SLURM job %s", job_id)
    return True


def _queue() -> dict[str, tuple[str, str]] | None:
    """This user's jobs: id (array tasks as ARRAY_INDEX) -> (state, reason); None when squeue fails."""
    proc = subprocess.run(["squeue", "-h", "-r", "--me", "-o", "%i|%T|%r"], capture_output=True, text=True)
    if proc.returncode != 0:
        log.warning("squeue failed (%s); trying again", proc.stderr.strip()[:200])
        return None
    rows = (line.split("|", 2) for line in proc.stdout.splitlines() if line.count("|") == 2)
    return {job_id: (state, reason) for job_id, state, reason in rows}


def _result(job: Any) -> Outcome:
    from submitit.core.utils import UncompletedJobError

    try:
        return Outcome(job.job_id, result=job.results()[0])
    except UncompletedJobError as exc:  # the job raised: submitit pickled its error
        return Outcome(job.job_id, state="FAILED", error=job_output(job.paths.stderr) or str(exc)[-2000:])


def job_output(path: Any, lines: int = 15) -> str:
    """The last lines of a job's error output, without progress bars or submitit's own traceback (which only
    says that the job's function raised)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    text = text.split("submitit ERROR")[0] or text
    kept = [line for line in text.replace("\r", "\n").splitlines() if line.strip() and "it/s]" not in line]
    return "\n".join(kept[-lines:])
