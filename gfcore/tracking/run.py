"""The one owner of an entry point's MLflow run.

Standalone, it creates the run in the site's experiment. Under `mlflow run` the run already exists
(MLFLOW_RUN_ID): it is resumed as it is, never moved with `set_experiment`. Whatever happens inside,
the run ends FINISHED, FAILED (error tag + traceback artifact) or KILLED (Ctrl-C, SIGTERM), never
RUNNING, and what was logged before stays. If the tracking server itself goes away mid-run, the run is
ended there the next time GuardianFlow reaches it (gfcore.tracking.server).
"""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore.config.compose import to_container
from gfcore.config.schema import Config, ExpDesign
from gfcore.core import gcpolicy, interrupts
from gfcore.core.errors import TrackingError
from gfcore.core.paths import hydra_output_dir
from gfcore.core.vocabulary import (
    ERROR_TAG,
    EXP_DESIGN,
    MAX_TAG_VALUE,
    NOTE_TAG,
    OFFLINE_TAG,
    PARENT_KINDS,
    PARENT_TAG,
    RESUME_PREFIX,
    RESUMED_INTO,
    SLURM_ARRAY_JOB_ID,
    SLURM_ARRAY_TASK_ID,
    SLURM_JOB_ID,
    SLURM_NODE,
    SLURM_PARTITION,
    SWEEP_JOB,
    SWEEP_OVERRIDES,
    SWEEP_PID,
    SYS_STARTUP_S,
)
from gfcore.tracking import journal, server, sysmetrics
from gfcore.tracking.experiments import describe, ensure_experiment
from gfcore.tracking.naming import (
    experiment_name,
    free_run_name,
    labelled,
    run_name,
    sanitize_metric_name,
    trial_stem,
)
from gfcore.tracking.offline import store as offline_store
from gfcore.tracking.params import config_params, run_tags
from gfcore.tracking.server import check_tracking_store, short

if TYPE_CHECKING:
    from gfcore.data.dataset import DataPin

log = logging.getLogger(__name__)

# Set by a sweep for its jobs: each job's run is a new child of this run, whatever MLFLOW_RUN_ID says.
PARENT_ENV = "GF_PARENT_RUN_ID"

_started: list[str] = []  # run ids owned_run started in this process (a sweep job checks it made one)


@dataclass
class OwnedRun:
    run_id: str
    experiment_id: str
    name: str = ""

    @property
    def label(self) -> str:
        """How the terminal names the run: `ppe-yolov8n-train-v1-2 (3f2a...)`."""
        return labelled(self.name, self.run_id)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, model_id: str | None = None,
                    dataset: Any = None) -> None:
        """All values in one batched call; names are sanitized, non-finite values dropped. With `model_id` (and
        the `dataset` they were measured on) they are also the logged model's figures (MLflow 3)."""
        import mlflow

        clean = {sanitize_metric_name(k): float(v) for k, v in metrics.items()
                 if v is not None and math.isfinite(float(v))}
        if clean:
            mlflow.log_metrics(clean, step=step, model_id=model_id, dataset=dataset)

    def set_tags(self, tags: dict[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})


@contextmanager
def owned_run(cfg: Config, exp_type: str, *, data_hash: str, data_pin: DataPin | None = None,
              source_run_id: str | None = None,
              extra_tags: dict[str, str] | None = None, name: str | None = None,
              resume_run_id: str | None = None, resumed_from: str = "") -> Iterator[OwnedRun]:
    """Start (or resume under `mlflow run`) the run of one entry point, and always end it; `name` replaces the
    run name of the naming scheme where it cannot say what the run is (a challenge names both versions). Either is
    the stem of a name distinct in the experiment (gfcore.tracking.naming: `-2`, `-3` ...; a sweep trial's `-tN`).

    `resume_run_id`: continue that ended (or crashed) run instead, back to RUNNING: its tags and params stay as
    they are (only params it lacks are logged), the resume is its tag `gf.resume.N` = `resumed_from`."""
    import mlflow

    check_tracking_store()
    tags = {**run_tags(cfg, exp_type, data_hash, source_run_id, data_pin), **scheduler_tags(), **(extra_tags or {})}
    if offline_store.is_active():
        tags[OFFLINE_TAG] = "recorded offline: registration and aliases happen on the server at `guardianflow sync`"
    if os.environ.get(PARENT_ENV):
        tags[EXP_DESIGN] = ExpDesign.sweep.value
    name = name or run_name(cfg, exp_type)
    experiment = experiment_name(cfg.site)
    # Parents mostly wait on their children, whose own system metrics are what matters.
    system_metrics = cfg.tracking.system_metrics and exp_type not in PARENT_KINDS
    if system_metrics:
        mlflow.set_system_metrics_sampling_interval(cfg.tracking.system_metrics_interval_s)
        mlflow.set_system_metrics_samples_before_logging(1)

    # A server's run goes through a journal (gfcore.tracking.journal): an outage costs no work and no record.
    journaled = cfg.tracking.journal and server.is_server(mlflow.get_tracking_uri())
    try:
        parent = os.environ.get(PARENT_ENV)
        env_run_id = os.environ.get("MLFLOW_RUN_ID")
        if resume_run_id:
            active = _restart(resume_run_id, env_run_id, system_metrics and not journaled)
            name = active.info.run_name  # a resumed run keeps its name
        elif parent:
            exp_id = mlflow.MlflowClient().get_run(parent).info.experiment_id
            job = _job_tags()
            if SWEEP_JOB in job:  # a trial's name says which one it is
                name = trial_stem(name, job[SWEEP_JOB])
            name = free_run_name(exp_id, name)
            active = mlflow.start_run(experiment_id=exp_id, run_name=name, log_system_metrics=system_metrics and not journaled,
                                      tags={PARENT_TAG: parent, **job})
        elif env_run_id:
            active = mlflow.start_run(run_id=env_run_id, log_system_metrics=system_metrics and not journaled)
            name = free_run_name(active.info.experiment_id, name, env_run_id)
            if name != active.info.run_name:
                mlflow.MlflowClient().update_run(env_run_id, name=name)
            _warn_if_elsewhere(active.info.experiment_id, experiment)
            describe(active.info.experiment_id)
        else:
            exp_id = ensure_experiment(experiment)
            name = free_run_name(exp_id, name)
            active = mlflow.start_run(experiment_id=exp_id, run_name=name, log_system_metrics=system_metrics and not journaled)
    except mlflow.exceptions.MlflowException as exc:
        raise TrackingError(f"MLflow refused to start the run: {short(exc)}") from exc

    run = OwnedRun(run_id=active.info.run_id, experiment_id=active.info.experiment_id, name=name)
    _started.append(run.run_id)
    monitor = None
    if journaled:
        journal.begin(run.run_id, mlflow.get_tracking_uri(), run.experiment_id)
        if system_metrics:
            monitor = sysmetrics.start(run.run_id, cfg.tracking.system_metrics_interval_s, resume=bool(resume_run_id))
    with interrupts.sigterm_raises(), _journal_drained(run.run_id, cfg.tracking.drain_timeout_s, monitor):
        try:
            resumes = 0
            if resume_run_id:  # the run's own records stay; the resume says what it continues from
                resumes = _record_resume(run.run_id, {**scheduler_tags(), **(extra_tags or {})},
                                         config_params(cfg, exp_type), resumed_from)
            else:
                mlflow.set_tags(tags)
                mlflow.log_params(config_params(cfg, exp_type))
                _log_config_artifacts(cfg)
            # From process start to here: imports, config, checks (what orchestration costs per step); only
            # for the process's first run, later ones (a sweep's jobs in one process) did not start it. A
            # resume's at step N (gf.resume.N): what each restart cost.
            if len(_started) == 1:
                run.log_metrics({SYS_STARTUP_S: round(_process_age_s(), 3)}, step=resumes)
            gcpolicy.started()
            yield run
            interrupts.raise_if_stopped()  # a stop that a library swallowed ends the run KILLED, never FINISHED
        except KeyboardInterrupt as exc:
            _close_failed(run, "KILLED", interrupts.stop_reason(exc), exc)
            raise
        except BaseException as exc:
            lost = _close_failed(run, "FAILED", f"{type(exc).__name__}: {exc}", exc)
            if lost and server.is_connection_failure(exc):
                raise TrackingError(lost) from exc
            raise
        else:
            if monitor is not None:
                sysmetrics.stop(monitor)
            elif system_metrics:
                last_system_sample(run.run_id)
            end_run("FINISHED")


@contextmanager
def _journal_drained(run_id: str, timeout_s: float, monitor: Any) -> Iterator[None]:
    """After the run has ended (into its journal): wait a bounded time for the journal to reach the server."""
    try:
        yield
    finally:
        if journal.active(run_id):
            if monitor is not None:
                monitor._shutdown_event.set()
            journal.finish(run_id, timeout_s)


def _restart(run_id: str, env_run_id: str | None, log_system_metrics: bool) -> Any:
    """Run `run_id` back to RUNNING (MLflow restarts an ended run; system metrics go on from its last step).
    Under `mlflow run -P resume_run_id=ID` without `--run-id ID`, MLflow filed a run of its own for the command:
    it is ended at once, tagged and described with the run it resumed, where everything is logged. (It cannot be
    deleted: `mlflow run` marks it terminated when the command ends, which MLflow refuses for a deleted run.)"""
    import mlflow
    from mlflow.entities import RunTag

    if env_run_id and env_run_id != run_id:
        client = mlflow.MlflowClient()
        client.log_batch(env_run_id, tags=[
            RunTag(RESUMED_INTO, run_id),
            RunTag(NOTE_TAG, f"This command resumed run {run_id}: everything it did is logged there. "
                             f"(`mlflow run --run-id {run_id} -P resume_run_id={run_id}` files no second run.)")])
        client.set_terminated(env_run_id, "FINISHED")
        os.environ.pop("MLFLOW_RUN_ID", None)
        log.info("this command resumes run %s; run %s, which `mlflow run` filed for it, only points there",
                 run_id, env_run_id)
    return mlflow.start_run(run_id=run_id, log_system_metrics=log_system_metrics)


def _record_resume(run_id: str, tags: dict[str, str], params: dict[str, str], resumed_from: str) -> int:
    """Tag a resumed run `gf.resume.N` (N = 1, 2, ...), with the error it had stopped on (its `gf.error` goes: the
    run is no longer failed); log only the params it lacks (a key newer than the run); returns N."""
    import mlflow

    client = mlflow.MlflowClient()
    data = client.get_run(run_id).data
    number = 1 + sum(1 for key in data.tags if key.startswith(RESUME_PREFIX))
    note = resumed_from or "resumed"
    if data.tags.get(ERROR_TAG):
        note += f"; it had stopped on: {data.tags[ERROR_TAG]}"
        client.delete_tag(run_id, ERROR_TAG)
    mlflow.set_tags({**tags, f"{RESUME_PREFIX}{number}": note[:MAX_TAG_VALUE]})
    missing = {k: v for k, v in params.items() if k not in data.params}
    if missing:
        mlflow.log_params(missing)
    return number


def _close_failed(run: OwnedRun, status: str, reason: str, exc: BaseException) -> str | None:
    """Record the failure and end the run; when the server itself is gone, leave the run to be ended on the
    next contact and return what to tell the user."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    if journal.active(run.run_id) or not server.is_server(uri) or server.answers(uri):
        record_failure(reason, exc)
        end_run(status)
        return None
    server.remember(uri, run.run_id, status, f"the tracking server stopped answering: {reason}")
    with server.no_retries():  # unwind MLflow's local state without waiting on a dead server again
        end_run(status)
        monitor = getattr(mlflow.tracking.fluent, "run_id_to_system_metrics_monitor", {}).pop(run.run_id, None)
        if monitor is not None:
            monitor.finish()
    message = (f"the tracking server at {uri} stopped answering during run {run.run_id} ({short(exc)}). "
               "What the run logged before stays on the server; it will be marked "
               f"{status} the next time GuardianFlow reaches the server. Check the server (`guardianflow stack "
               "status`) and run again.")
    log.error(message)
    return message


def last_system_sample(run_id: str) -> None:
    """MLflow samples system metrics once per interval, so a run shorter than one interval (a quick infer)
    would have none: stop its monitor and log one last sample, the state at the end of the work."""
    import mlflow

    monitor = getattr(mlflow.tracking.fluent, "run_id_to_system_metrics_monitor", {}).get(run_id)
    thread = getattr(monitor, "_process", None)
    if thread is None:
        return
    try:
        monitor._shutdown_event.set()
        thread.join(timeout=10)
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())  # end_run's finish() flushes it
    except Exception as err:  # MLflow internals: never fail a finished run over a last sample
        log.debug("no last system-metrics sample: %s", err)


def _process_age_s() -> float:
    """Seconds since this process started; from /proc on Linux (psutil's boot time is only whole seconds)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        import psutil

        return time.time() - psutil.Process().create_time()


def started_runs() -> list[str]:
    return list(_started)


def _job_tags() -> dict[str, str]:
    """A multirun job's number and overrides, so its parent can say which settings won."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    hc = HydraConfig.get()
    return {SWEEP_JOB: str(hc.job.num), SWEEP_OVERRIDES: " ".join(hc.overrides.task)[:MAX_TAG_VALUE],
            SWEEP_PID: str(os.getpid())}


# What a scheduler tells its jobs about themselves (environment) -> the run's tags.
_SLURM_TAGS = {"SLURM_JOB_ID": SLURM_JOB_ID, "SLURM_ARRAY_JOB_ID": SLURM_ARRAY_JOB_ID,
               "SLURM_ARRAY_TASK_ID": SLURM_ARRAY_TASK_ID, "SLURMD_NODENAME": SLURM_NODE,
               "SLURM_JOB_PARTITION": SLURM_PARTITION}


def scheduler_tags() -> dict[str, str]:
    """The SLURM job, array index, node and partition a run executes in (none outside SLURM)."""
    return {tag: os.environ[var] for var, tag in _SLURM_TAGS.items() if os.environ.get(var)}


def fail_env_run(exc: BaseException, status: str = "FAILED") -> None:
    """Under `mlflow run`: end the run MLflow created when the entry point failed before owning it."""
    end_if_running(os.environ.get("MLFLOW_RUN_ID", ""), status, f"{type(exc).__name__}: {exc}")


def end_if_running(run_id: str, status: str, reason: str | None = None) -> bool:
    """End run `run_id` (another process's: nothing is active here) with `status` and `reason` as its error tag,
    unless it has ended already (its own process ended it); True when it was ended here. A store that does not
    answer is logged, not raised: whatever ends the run goes on."""
    if not run_id:
        return False
    try:
        import mlflow

        client = mlflow.MlflowClient()
        if client.get_run(run_id).info.status != "RUNNING":
            return False
        if reason:
            client.set_tag(run_id, ERROR_TAG, reason[:MAX_TAG_VALUE])
        client.set_terminated(run_id, status)
        return True
    except Exception as err:  # the store itself may be what failed
        log.warning("could not mark run %s %s: %s", run_id, status, short(err))
        return False


def _warn_if_elsewhere(experiment_id: str, wanted: str) -> None:
    import mlflow

    actual = mlflow.get_experiment(experiment_id).name
    if actual != wanted:
        log.warning("this run is filed under experiment %r, not the site's %r: pass --experiment-name %s to "
                    "`mlflow run` (or set MLFLOW_EXPERIMENT_NAME=%s).", actual, wanted, wanted, wanted)


def _log_config_artifacts(cfg: Config) -> None:
    import mlflow

    mlflow.log_dict(to_container(cfg), "config/resolved.yaml")
    out = hydra_output_dir()
    if out is not None and (out / ".hydra").is_dir():
        mlflow.log_artifacts(str(out / ".hydra"), "config/.hydra")


def record_failure(reason: str, exc: BaseException) -> None:
    import mlflow

    try:
        mlflow.set_tag(ERROR_TAG, reason[:MAX_TAG_VALUE])
        mlflow.log_text("".join(traceback.format_exception(exc)), "error/traceback.txt")
    except Exception as err:  # keep the original error; the store may be the thing that failed
        log.warning("could not record the failure in MLflow: %s", short(err))


def end_run(status: str) -> None:
    import mlflow

    try:
        mlflow.end_run(status)
    except Exception as err:
        log.warning("could not end the run as %s: %s", status, short(err))
