"""The one way to start an entry point of this project, and the one stop policy around it.

`launch` files the entry point's run first: an MLflow Project run, made by MLflow's own project code (nested under
the active run, with the project's tags and parameters), or, for an entry point given its own command-line
arguments (`guardianflow reproduce` hands it a config folder), a plain run that the entry point resumes through
MLFLOW_RUN_ID. The caller's tags are set on it at once, before anything starts, so others see it RUNNING with them.
Then the entry point starts into that run: here, as `mlflow run` does (MLflow's local project backend: the entry
point's command as a child process, or with `synchronous=False` an `mlflow run` process of its own), or inside a
SLURM job (gfcore.orchestration.slurm_steps). `launch` waits, or returns the handle to wait on. The entry point
runs in the project checkout, so it is handed the user's folder (GF_WORK_DIR, gfcore.core.paths): its Hydra
folders, and with them its files, go there.

Stopped while it starts or waits (SIGTERM, Ctrl-C; gfcore.core.interrupts), a launch is stopped one way: the
processes it started get SIGTERM, STOP_GRACE_S to end their own run, then SIGKILL (a SLURM job is cancelled);
its run, if still RUNNING, ends KILLED; then the interruption goes on. An error there ends a RUNNING run FAILED.
MLflow's own `mlflow.projects.run(synchronous=True)` is not used for the waiting: on Ctrl-C it waits for the
entry point's shell without a limit and marks the run FAILED.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gfcore.cluster.ray_jobs import absolute_uri
from gfcore.core import interrupts
from gfcore.core.codeversion import PROJECT
from gfcore.core.errors import StepError
from gfcore.core.paths import work_dir_handed_on
from gfcore.orchestration.slurm_steps import SlurmJob, run_in_job
from gfcore.tracking.experiments import ensure_experiment
from gfcore.tracking.run import end_if_running

log = logging.getLogger(__name__)


class LaunchFailed(StepError):
    """The entry point could not start, or ended without finishing: its run (`run_id`, when one was filed) is
    FAILED unless it ended itself; `exit_code` is its process's (None when none ended here)."""

    def __init__(self, message: str, run_id: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.run_id, self.exit_code = run_id, exit_code


@dataclass
class Launched:
    """A launched entry point: its run, and the process that runs it here (None in a SLURM job, or once ended)."""

    entry: str
    run_id: str
    process: subprocess.Popen[Any] | None = None

    def wait(self) -> Launched:
        """Wait for the entry point to end. Its run ended FINISHED, or LaunchFailed is raised (the run is FAILED
        unless it ended itself); SIGTERM or Ctrl-C meanwhile stops the launch (see the module)."""
        if self.process is None:
            return self
        with self._stopped_when_interrupted():
            code = self.process.wait()
        self.process = None
        if code == 0:
            end_if_running(self.run_id, "FINISHED")
            return self
        end_if_running(self.run_id, "FAILED", f"{self.entry} exited with code {code} before it ended its run")
        raise LaunchFailed(f"{self.entry} run {self.run_id} failed: see its output above and the run in MLflow.",
                           self.run_id, code)

    @contextmanager
    def _stopped_when_interrupted(self) -> Iterator[None]:
        """The one stop policy: what the block started (and the launch's process) is stopped, the run ended."""
        started = [self.process.pid] if self.process is not None else []
        try:
            with interrupts.children_stopped_when_interrupted(also=started):
                yield
        except KeyboardInterrupt as exc:
            with interrupts.signals_held():
                end_if_running(self.run_id, "KILLED", f"{self.entry} was stopped by {interrupts.signal_name(exc)} "
                               "before it ended its run")
            raise
        except BaseException as exc:
            with interrupts.signals_held():
                end_if_running(self.run_id, "FAILED", f"{self.entry} could not run: {type(exc).__name__}: {exc}")
            raise


def launch(entry: str, parameters: dict[str, str] | None = None, *, argv: list[str] | None = None,
           experiment_id: str | None = None, experiment_name: str | None = None, env_manager: str = "local",
           tags: dict[str, str] | None = None, synchronous: bool = True, slurm: SlurmJob | None = None,
           run_id: str | None = None, on_filed: Callable[[Launched], None] | None = None) -> Launched:
    """Start this project's entry point `entry`; with `synchronous`, wait until it ended (LaunchFailed when it did
    not finish), else return the handle at once (`.wait()` later).

    `parameters`: the MLproject entry point's parameters (scenario, overrides, ...); or `argv`: the entry point's
    own command-line arguments (`python -m guardianflow.ENTRY ARGV`, e.g. `--config-dir`). The run is filed in
    `experiment_id`, or in `experiment_name` (created and described when new), and gets `tags` before it starts.
    `slurm`: run it in a SLURM job (MLproject parameters, synchronous). `run_id`: start into that existing run
    instead of filing one (what a SLURM job does with the run its launcher filed). `on_filed`: called with the
    launch once its run is filed and tagged, before the entry point starts, under the stop policy (a caller's
    record names the run while it runs)."""
    from mlflow.exceptions import MlflowException

    if (parameters is None) == (argv is None):
        raise ValueError("launch takes the MLproject parameters or the entry point's arguments, one of them")
    if slurm is not None and (argv is not None or not synchronous):
        raise ValueError("a SLURM launch takes MLproject parameters and waits")
    if experiment_id is None:
        if experiment_name is None:
            raise ValueError("launch needs experiment_id or experiment_name")
        experiment_id = ensure_experiment(experiment_name)
    launched = Launched(entry, run_id or "")
    try:
        with launched._stopped_when_interrupted():
            if not launched.run_id:
                with interrupts.signals_deferred():  # a run filed is a run known: a signal waits for its id
                    launched.run_id = _file_run(entry, parameters, experiment_id)
            if tags:
                _tag(launched.run_id, tags)
            if on_filed is not None:
                on_filed(launched)
            with work_dir_handed_on():  # the entry point runs in the checkout; its files go to the user's folder
                _start(launched, entry, parameters, argv, experiment_id, env_manager, synchronous, slurm)
    except MlflowException as exc:  # a parameter the entry point does not take, an environment that fails, ...
        raise LaunchFailed(f"{entry} could not start: {exc}", launched.run_id or None) from None
    return launched.wait() if synchronous else launched


def _start(launched: Launched, entry: str, parameters: dict[str, str] | None, argv: list[str] | None,
           experiment_id: str, env_manager: str, synchronous: bool, slurm: SlurmJob | None) -> None:
    """Start the entry point into the launch's filed run: in a SLURM job, as a module, or as MLflow's project run."""
    if slurm is not None:
        run_in_job(launch, entry, parameters or {}, experiment_id, env_manager, launched.run_id, slurm)
    elif argv is not None:
        launched.process = _start_module(entry, argv, experiment_id, launched.run_id)
    else:
        launched.process = _start_project(entry, parameters or {}, experiment_id, env_manager, launched.run_id,
                                          synchronous)


def module_command(entry: str, argv: list[str]) -> list[str]:
    """How an entry point runs with its own arguments."""
    return [sys.executable, "-m", f"guardianflow.{entry}", *argv]


def _file_run(entry: str, parameters: dict[str, str] | None, experiment_id: str) -> str:
    """The entry point's run, RUNNING, nested under the active run if there is one."""
    import mlflow

    if parameters is not None:  # MLflow's own project run: the project's tags, the parameters as params
        from mlflow.projects.utils import fetch_and_validate_project, get_or_create_run

        work_dir = fetch_and_validate_project(str(PROJECT), None, entry, parameters)
        return get_or_create_run(None, str(PROJECT), experiment_id, work_dir, None, entry, parameters).info.run_id
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_SOURCE_NAME

    # The tags `python -m guardianflow.ENTRY` gives a run it starts itself (user, source, git commit).
    tags = {MLFLOW_SOURCE_NAME: str(PROJECT / "guardianflow" / f"{entry}.py")}
    if (active := mlflow.active_run()) is not None:
        tags[MLFLOW_PARENT_RUN_ID] = active.info.run_id
    return mlflow.MlflowClient().create_run(experiment_id, tags=resolve_tags(tags)).info.run_id


def _tag(run_id: str, tags: dict[str, str]) -> None:
    import mlflow
    from mlflow.entities import RunTag

    mlflow.MlflowClient().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def _start_project(entry: str, parameters: dict[str, str], experiment_id: str, env_manager: str, run_id: str,
                   synchronous: bool) -> subprocess.Popen[Any]:
    """What `mlflow.projects.run(..., run_id=run_id)` does before it waits: MLflow's local backend starts the
    entry point (its environment made first with `env_manager`); returns the process to wait on."""
    import mlflow
    from mlflow.projects import utils
    from mlflow.projects.backend import loader
    from mlflow.utils import env_manager as env_managers
    from mlflow.utils.mlflow_tags import MLFLOW_PROJECT_BACKEND

    env_managers.validate(env_manager)
    config = {utils.PROJECT_ENV_MANAGER: env_manager, utils.PROJECT_SYNCHRONOUS: synchronous,
              utils.PROJECT_DOCKER_ARGS: None, utils.PROJECT_STORAGE_DIR: None, utils.PROJECT_BUILD_IMAGE: False,
              utils.PROJECT_DOCKER_AUTH: None, utils.MLFLOW_LOCAL_BACKEND_RUN_ID_CONFIG: run_id}
    submitted = loader.load_backend("local").run(str(PROJECT), entry, parameters, None, config,
                                                 mlflow.get_tracking_uri(), experiment_id)
    mlflow.MlflowClient().set_tag(run_id, MLFLOW_PROJECT_BACKEND, "local")
    return submitted.command_proc


def _start_module(entry: str, argv: list[str], experiment_id: str, run_id: str) -> subprocess.Popen[Any]:
    """`python -m guardianflow.ENTRY ARGV` in the project folder, into run `run_id` (as `mlflow run` hands it over:
    MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID, and the tracking URI, made absolute for the other working folder)."""
    import mlflow

    env = {**os.environ, "MLFLOW_RUN_ID": run_id, "MLFLOW_EXPERIMENT_ID": experiment_id,
           "MLFLOW_TRACKING_URI": absolute_uri(mlflow.get_tracking_uri())}
    return subprocess.Popen(module_command(entry, argv), cwd=PROJECT, env=env)
