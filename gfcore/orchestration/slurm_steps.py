"""Pipeline steps as SLURM jobs (`pipeline.launcher=slurm`): the same `mlflow run` of this project as a local
step, run inside a job that asks for what the step needs.

The step's run is created here, before the job is submitted, by MLflow's own project code (so it nests under
the pipeline's run and carries the project's tags and parameters as a local step's does); the job then runs
`mlflow.projects.run(..., run_id=that run)`. The parent waits with gfcore.cluster.slurm.watch: a request no
node meets, a job that fails, is cancelled or killed each fail the step with the job's own error output; SIGTERM
or Ctrl-C cancels the job."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gfcore.core.errors import StepError

log = logging.getLogger(__name__)


def run_in_job(step: Any, params: dict[str, str], experiment_id: str, env_manager: str, slurm_cfg: Any,
               jobs_dir: Path) -> str:
    """Run the step's `mlflow run` as a SLURM job sized by `slurm_cfg` (pipeline.slurm) and wait; returns the
    step's run id."""
    import mlflow
    import submitit
    from mlflow.projects.utils import fetch_and_validate_project, get_or_create_run
    from submitit.core.utils import FailedJobError

    from gfcore.cluster import slurm
    from gfcore.config.schema import gpus_of_device
    from gfcore.core.codeversion import PROJECT

    work_dir = fetch_and_validate_project(str(PROJECT), None, step.entry, params)
    run = get_or_create_run(None, str(PROJECT), experiment_id, work_dir, None, step.entry, params)
    run_id = run.info.run_id
    request = {**slurm_cfg.for_entry(step.entry), "gpus_per_node": gpus_of_device(step.device)}
    asked = slurm.describe(request)
    executor = submitit.AutoExecutor(folder=str(jobs_dir / step.slug / "%j"), cluster="slurm")
    named = ("timeout_min", "cpus_per_task", "mem_gb", "gpus_per_node")  # submitit's own; the rest slurm_*
    executor.update_parameters(name=f"gf-{step.slug}", **{k: request[k] for k in named},
                               **{f"slurm_{k}": v for k, v in request.items() if k not in named and v is not None})
    try:
        job = executor.submit(_job, str(PROJECT), step.entry, params, experiment_id, env_manager, run_id)
    except FailedJobError as exc:
        err = slurm.refused(exc, asked)
        _close(run_id, "FAILED", str(err))
        raise StepError(f"step {step.name}: {err}") from None
    mlflow.MlflowClient().set_tag(run_id, "slurm.job_id", job.job_id)
    log.info("step %s: SLURM job %s (%s), run %s", step.name, job.job_id, asked, run_id)
    try:
        [outcome] = slurm.watch([job], asked, slurm_cfg.impossible_after_s)
    except slurm.ClusterError as exc:
        _close(run_id, "FAILED", str(exc))
        raise StepError(f"step {step.name}: {exc}") from None
    except BaseException:  # SIGTERM or Ctrl-C to the pipeline: the job goes too (its run ends KILLED)
        slurm.cancel([job.job_id], wait_s=40.0)
        raise
    if outcome.lost:
        status = "KILLED" if outcome.state.split()[0] in slurm.KILLED_STATES else "FAILED"
        _close(run_id, status, f"SLURM job {job.job_id} ended {outcome.state}")
        raise StepError(f"step {step.name} failed in SLURM job {job.job_id} ({outcome.state}, run {run_id}); the "
                        f"job's error output ends:\n{_indent(outcome.error)}\nThe steps before it finished and are "
                        "kept: fix the cause and run the same command again to resume from this step.")
    return run_id


def _job(project: str, entry: str, params: dict[str, str], experiment_id: str, env_manager: str,
         run_id: str) -> str:
    """What the SLURM job runs: the step's `mlflow run`, into the run the parent created.

    scancel (or the time limit) sends SIGTERM to every process of the job at once: the step's shell dies first,
    and MLflow, seeing it fail, would mark the run FAILED over the step's own KILLED. The signal is noted here
    (instead of submitit's handler, which only logs it) and the run ends KILLED."""
    import signal

    import mlflow
    from mlflow.exceptions import ExecutionException

    from gfcore.tracking.run import ERROR_TAG

    signalled: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: signalled.append(signum))
    try:
        mlflow.projects.run(project, entry_point=entry, parameters=params, experiment_id=experiment_id,
                            env_manager=env_manager, synchronous=True, run_id=run_id)
    except ExecutionException:
        if signalled:
            client = mlflow.MlflowClient()
            client.set_tag(run_id, ERROR_TAG, "terminated (SIGTERM): SLURM cancelled the step's job")
            client.set_terminated(run_id, "KILLED")
        raise
    return run_id


def _close(run_id: str, status: str, reason: str) -> None:
    """End the step's run if its job could not (it never started, or was killed)."""
    import mlflow

    from gfcore.tracking.run import ERROR_TAG, MAX_TAG_VALUE

    client = mlflow.MlflowClient()
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_tag(run_id, ERROR_TAG, reason[:MAX_TAG_VALUE])
        client.set_terminated(run_id, status)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
