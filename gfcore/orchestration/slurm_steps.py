"""Launches in SLURM jobs (`pipeline.launcher=slurm` runs pipeline steps so): the same `mlflow run` of this
project as a local launch, run inside a job that asks for what the entry point needs.

The launcher (gfcore.orchestration.launcher) files the run before the job is submitted, with MLflow's own project
code (so it nests under the pipeline's run and carries the project's tags and parameters as a local step's does);
the job then starts the entry point into that run with the launcher it is handed. The parent waits with
gfcore.cluster.slurm.watch: a request no node meets, a job that fails, is cancelled or killed each fail the launch
with the job's own error output; SIGTERM or Ctrl-C cancels the job.

A train step's job is requeued rather than lost: it asks for `--requeue` and for SIGUSR1 `requeue_warning_s` before
its time limit. Warned, the job requeues itself (`scontrol requeue`); requeued (so, or by a preemption or an admin's
`scontrol requeue`), SLURM sends every process of the job SIGTERM: the training ends its run KILLED with its last
epoch's checkpoint saved (and uploaded, train.checkpoint_every), and the job leaves no result, so the parent, which
sees the same job PENDING again, keeps waiting. The requeued job (same id, SLURM_RESTART_COUNT > 0) runs the same
pickled call, run id included, and resumes that run from its checkpoint (train.resume_run_id). Other steps cannot
continue where they stopped: their jobs ask for `--no-requeue`, so a preemption ends them as a cancel does."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gfcore.cluster import slurm
from gfcore.config import searchpath
from gfcore.config.schema import gpus_of_device
from gfcore.core import interrupts
from gfcore.core.errors import ResumeError, StepError
from gfcore.core.vocabulary import ERROR_TAG, MAX_TAG_VALUE, SLURM_JOB_ID
from gfcore.jobs import resume
from gfcore.tracking.run import end_if_running

if TYPE_CHECKING:
    from gfcore.config.cluster import SlurmStepsConfig

log = logging.getLogger(__name__)

WARNING = signal.SIGUSR1  # SLURM's warning before a train job's time limit (sbatch --signal=USR1@S)
RESUMABLE_ENTRY = "train"  # the one entry point whose run continues where it stopped: its jobs are requeued


@dataclass
class SlurmJob:
    """Where a launch runs when it runs in SLURM: a job sized by `config` (pipeline.slurm) for its entry point and
    `device`, named `name`, with submitit's files under `folder`; `label` is what errors call it ("step train")."""

    config: SlurmStepsConfig
    folder: Path
    name: str
    label: str
    device: str = "cpu"


def run_in_job(start: Callable[..., object], entry: str, params: dict[str, str], experiment_id: str,
               env_manager: str, run_id: str, job: SlurmJob) -> None:
    """Run the entry point's `mlflow run` into run `run_id` as a SLURM job sized by `job`, and wait: the job calls
    `start` (the launcher) there."""
    import mlflow
    import submitit
    from submitit.core.utils import FailedJobError

    request = {**job.config.for_entry(entry), "gpus_per_node": gpus_of_device(job.device)}
    asked = slurm.describe(request)
    executor = submitit.AutoExecutor(folder=str(job.folder / "%j"), cluster="slurm")
    named = ("timeout_min", "cpus_per_task", "mem_gb", "gpus_per_node")  # submitit's own; the rest slurm_*
    executor.update_parameters(name=job.name, **{k: request[k] for k in named},
                               **{f"slurm_{k}": v for k, v in request.items() if k not in named and v is not None},
                               slurm_additional_parameters=_requeue_flags(entry, job.config),
                               slurm_setup=searchpath.export_lines())  # the job finds the same configs
    try:
        submitted = executor.submit(_job, start, entry, params, experiment_id, env_manager, run_id)
    except FailedJobError as exc:
        err = slurm.refused(exc, asked)
        end_if_running(run_id, "FAILED", str(err))
        raise StepError(f"{job.label}: {err}") from None
    mlflow.MlflowClient().set_tag(run_id, SLURM_JOB_ID, submitted.job_id)
    log.info("%s: SLURM job %s (%s), run %s", job.label, submitted.job_id, asked, run_id)
    try:  # SIGTERM or Ctrl-C to the pipeline: the job goes too (its run ends KILLED)
        with slurm.cancelled_when_stopped([submitted.job_id]):
            [outcome] = slurm.watch([submitted], asked, job.config.impossible_after_s)
    except slurm.ClusterError as exc:
        end_if_running(run_id, "FAILED", str(exc))
        raise StepError(f"{job.label}: {exc}") from None
    if outcome.lost:
        status = "KILLED" if outcome.state.split()[0] in slurm.KILLED_STATES else "FAILED"
        end_if_running(run_id, status, f"SLURM job {submitted.job_id} ended {outcome.state}")
        raise StepError(f"{job.label} failed in SLURM job {submitted.job_id} ({outcome.state}, run {run_id}); the "
                        f"job's error output ends:\n{_indent(outcome.error)}\nThe steps before it finished and are "
                        "kept: fix the cause and run the same command again to resume from this step.")


def _requeue_flags(entry: str, config: SlurmStepsConfig) -> dict[str, object]:
    """sbatch's requeue options for a job of `entry`: a train job is requeued (and warned before its time limit,
    unless requeue_warning_s is 0), the others never are."""
    if entry != RESUMABLE_ENTRY:
        return {"no_requeue": True}
    flags: dict[str, object] = {"requeue": True}
    if config.requeue_warning_s:  # replaces submitit's own USR2 signal, which its handler takes as a failure
        flags["signal"] = f"{WARNING.name.removeprefix('SIG')}@{config.requeue_warning_s}"
    return flags


def _job(start: Callable[..., object], entry: str, params: dict[str, str], experiment_id: str, env_manager: str,
         run_id: str) -> str:
    """What the SLURM job runs: `start` (the launcher) of the entry point, here, into the run the parent filed.

    scancel (or the time limit) sends SIGTERM to every process of the job at once: the entry point's shell may die
    first, and the launcher, seeing it fail, would mark the run FAILED over the entry point's own KILLED. The signal
    is noted here (instead of submitit's handler, which only logs it) and the run ends KILLED. A requeue sends the
    same SIGTERM (see the module): the job then ends without a result, and runs again to resume the run."""
    import mlflow

    if slurm.restart_count():  # this is a requeued job: its run continues where the job's last start stopped
        resumed = _resumed(entry, params, run_id)
        if resumed is None:
            return run_id
        params = resumed
    with interrupts.sigterm_noted() as signalled, interrupts.taken_by_thread(WARNING, _warned):
        try:
            start(entry, params, experiment_id=experiment_id, env_manager=env_manager, run_id=run_id)
        except StepError:
            if signalled and slurm.requeued_since_start():
                _leave_for_requeue(run_id)
            if signalled:
                client = mlflow.MlflowClient()
                client.set_tag(run_id, ERROR_TAG, "terminated (SIGTERM): SLURM cancelled the step's job")
                client.set_terminated(run_id, "KILLED")
            raise
    return run_id


def _warned() -> None:
    """SIGUSR1: the job's time limit is near. The job requeues itself; SLURM's SIGTERM then ends the training (its
    last checkpoint kept) and the requeued job resumes it (the entry point's processes never see the SIGUSR1)."""
    log.warning("SLURM job %s is near its time limit (SIGUSR1): requeueing it, to resume its run from the last "
                "checkpoint", os.environ.get("SLURM_JOB_ID"))
    slurm.requeue()


def _leave_for_requeue(run_id: str) -> None:
    """SLURM requeued this job while it ran: the run (KILLED by its own process, else here) says so, and the job
    ends without a result, so that the parent keeps waiting for it to run again."""
    import mlflow

    note = (f"SLURM requeued job {os.environ.get('SLURM_JOB_ID')} (near its time limit, preempted, or `scontrol "
            "requeue`): the job resumes this run from its last checkpoint when it runs again")
    end_if_running(run_id, "KILLED", note)
    mlflow.MlflowClient().set_tag(run_id, ERROR_TAG, note)  # over the entry point's own "terminated (SIGTERM)"
    log.warning("%s (run %s)", note, run_id)
    raise SystemExit(interrupts.EXIT_SIGTERM)  # not an Exception: submitit writes no result for it


def _resumed(entry: str, params: dict[str, str], run_id: str) -> dict[str, str] | None:
    """The parameters a requeued job starts its entry point with: a train run resumes from its last checkpoint
    (train.resume_run_id); None when the run finished before the requeue took effect (nothing is left to do)."""
    import mlflow

    client = mlflow.MlflowClient()
    status = client.get_run(run_id).info.status
    if status == "FINISHED":
        log.info("run %s finished before SLURM requeued job %s: nothing to resume", run_id,
                 os.environ.get("SLURM_JOB_ID"))
        return None
    if entry != RESUMABLE_ENTRY:
        return params
    if status == "RUNNING":  # the last start was killed before it ended the run; SLURM restarts a job once all its
        client.set_terminated(run_id, "KILLED")  # processes are gone, so nothing trains it now
    try:
        found = resume.find_checkpoint(client.get_run(run_id))
    except ResumeError as err:
        message = (f"SLURM requeued job {os.environ.get('SLURM_JOB_ID')} before run {run_id} saved its first "
                   f"checkpoint: there is nothing to resume from ({err}) Run the same command again to train the "
                   "step anew.")
        client.set_tag(run_id, ERROR_TAG, message[:MAX_TAG_VALUE])
        client.set_terminated(run_id, "FAILED")
        raise StepError(message) from None
    log.info("requeued SLURM job %s (start %d): resuming run %s from %s", os.environ.get("SLURM_JOB_ID"),
             slurm.restart_count(), run_id, "; ".join(found.looked))
    return {**params, "resume_run_id": run_id}


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
