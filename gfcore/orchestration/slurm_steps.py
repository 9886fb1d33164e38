"""Launches in SLURM jobs (`pipeline.launcher=slurm` runs pipeline steps so): the same `mlflow run` of this
project as a local launch, run inside a job that asks for what the entry point needs.

The launcher (gfcore.orchestration.launcher) files the run before the job is submitted, with MLflow's own project
code (so it nests under the pipeline's run and carries the project's tags and parameters as a local step's does);
the job then starts the entry point into that run with the launcher it is handed. The parent waits with
gfcore.cluster.slurm.watch: a request no node meets, a job that fails, is cancelled or killed each fail the launch
with the job's own error output; SIGTERM or Ctrl-C cancels the job."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gfcore.cluster import slurm
from gfcore.config.schema import gpus_of_device
from gfcore.core import interrupts
from gfcore.core.errors import StepError
from gfcore.core.vocabulary import ERROR_TAG, SLURM_JOB_ID
from gfcore.tracking.run import end_if_running

if TYPE_CHECKING:
    from gfcore.config.cluster import SlurmStepsConfig

log = logging.getLogger(__name__)


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
                               **{f"slurm_{k}": v for k, v in request.items() if k not in named and v is not None})
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


def _job(start: Callable[..., object], entry: str, params: dict[str, str], experiment_id: str, env_manager: str,
         run_id: str) -> str:
    """What the SLURM job runs: `start` (the launcher) of the entry point, here, into the run the parent filed.

    scancel (or the time limit) sends SIGTERM to every process of the job at once: the entry point's shell may die
    first, and the launcher, seeing it fail, would mark the run FAILED over the entry point's own KILLED. The signal
    is noted here (instead of submitit's handler, which only logs it) and the run ends KILLED."""
    import mlflow

    with interrupts.sigterm_noted() as signalled:
        try:
            start(entry, params, experiment_id=experiment_id, env_manager=env_manager, run_id=run_id)
        except StepError:
            if signalled:
                client = mlflow.MlflowClient()
                client.set_tag(run_id, ERROR_TAG, "terminated (SIGTERM): SLURM cancelled the step's job")
                client.set_terminated(run_id, "KILLED")
            raise
    return run_id


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
