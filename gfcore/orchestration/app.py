"""What every entry point shares around its gfcore call: clear errors, honest exit codes, and nothing left
RUNNING (neither a run nor a process) when it is stopped."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from omegaconf import DictConfig

from gfcore.config.compose import to_typed
from gfcore.core import gcpolicy, interrupts
from gfcore.core.errors import GuardianFlowError, StepError
from gfcore.core.paths import hydra_output_dir, say_where_files_are
from gfcore.core.vocabulary import ERROR_TAG
from gfcore.orchestration import sweep
from gfcore.tracking.offline import store as offline_store
from gfcore.tracking.run import fail_env_run, started_runs

if TYPE_CHECKING:
    from gfcore.config.schema import Config

T = TypeVar("T")
log = logging.getLogger(__name__)


def run_app(work: Callable[[Config], T], cfg: DictConfig) -> T | float:
    """Type the composed config and run `work`; a GuardianFlow error prints one paragraph and exits 2,
    Ctrl-C exits 130 and SIGTERM 143. Under `mlflow run`, a failure before the run was owned still ends
    MLflow's run FAILED (or KILLED).

    In a Hydra multirun (a sweep) a job never exits the process: it returns the value of `sweep.metric`
    its run logged, or NaN when it failed (its run is then FAILED), so the sweeper goes on."""
    gcpolicy.starting()  # until the run is owned (gfcore.tracking.run)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if offline_store.wanted(bool(cfg.tracking.offline)) and not offline_store.is_active():
        log.warning("recording offline into %s: `guardianflow sync` publishes the runs once the server answers",
                    offline_store.activate())
    if _in_multirun():  # the sweep's parent said where the sweep's folder is
        return _run_job(work, cfg)
    try:
        with interrupts.sigterm_raises():  # also before and after the run is owned: SIGTERM unwinds, never just kills
            typed = to_typed(cfg)
            if (out := hydra_output_dir()) is not None:  # said once the config holds: a bad value stays one line
                say_where_files_are(out)
            result = work(typed)
        gcpolicy.exiting()
        return result
    except GuardianFlowError as exc:
        fail_env_run(exc)
        print(f"\nguardianflow: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        fail_env_run(exc, status="KILLED")
        print(f"\nguardianflow: stopped by {interrupts.signal_name(exc)}; the run is marked KILLED.", file=sys.stderr)
        sys.exit(interrupts.exit_code(exc))
    except Exception as exc:
        fail_env_run(exc)
        raise


def run_multirun(main: Callable[[], Any]) -> None:
    """The sweep entry point: run the Hydra app `main` as a multirun under one parent run (gfcore.orchestration.sweep).

    Exits 0 when the parent ended FINISHED; 2 when it ended FAILED (no job finished with a value of
    `sweep.metric`), an override is invalid or the parent could not be opened or summarised for a reason
    GuardianFlow names; 1 when Hydra itself failed (the parent then ends FAILED); 143 on SIGTERM and 130 on
    Ctrl-C: the jobs' processes (joblib workers, submitit jobs) are stopped, every child run still RUNNING
    ends KILLED and so does the parent."""
    try:
        sweep.check_overrides(sys.argv[1:])
    except GuardianFlowError as err:
        print(f"guardianflow: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    if "--multirun" not in sys.argv and "-m" not in sys.argv:
        sys.argv.insert(1, "--multirun")
    try:
        with interrupts.children_stopped_when_interrupted():
            main()
    except KeyboardInterrupt as exc:
        with interrupts.signals_held():
            sweep.end_open_parent("KILLED", f"the sweep was stopped by {interrupts.signal_name(exc)}")
        print(f"\nguardianflow: sweep stopped by {interrupts.signal_name(exc)}; its parent run and every unfinished job "
              "are marked KILLED.", file=sys.stderr)
        sys.exit(interrupts.exit_code(exc))
    except sweep.SweepAborted as exc:
        with interrupts.signals_held():
            sweep.end_open_parent("FAILED", str(exc))
        if not isinstance(exc.__cause__, GuardianFlowError):
            raise
        print(f"\nguardianflow: error: {exc}", file=sys.stderr)
        sys.exit(exc.__cause__.exit_code)
    except BaseException as exc:  # Hydra exits through SystemExit on errors; never leave the parent RUNNING
        if not (isinstance(exc, SystemExit) and exc.code in (0, None)):
            with interrupts.signals_held():
                sweep.end_open_parent("FAILED", f"the sweep stopped: {type(exc).__name__}: {exc}")
        raise
    ended = sweep.ended_parent()
    if ended is not None and ended.info.status != "FINISHED":
        err = StepError(f"the sweep's parent run {ended.info.run_id} ended {ended.info.status}: "
                        f"{ended.data.tags.get(ERROR_TAG, 'see its tags')}. Each job's error is on its run "
                        "(tag gf.error, artifact error/traceback.txt); fix the cause and run the sweep again.")
        print(f"\nguardianflow: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


def _run_job(work: Callable[[Config], T], cfg: DictConfig) -> float:
    """One job of a multirun. SIGTERM stops it (its run ends KILLED) from its first line to its last, also in
    a job process of its own, where a launcher may have set SIGTERM aside (submitit only logs it)."""
    before = len(started_runs())
    try:
        with interrupts.sigterm_raises():
            typed = to_typed(cfg)
            work(typed)
    except Exception as exc:  # one job's failure must not end the sweep
        log.error("this sweep job failed: %s", exc)
        if len(started_runs()) == before:
            sweep.record_failed_job(exc, getattr(work, "__name__", "job"))
        return math.nan
    ours = started_runs()[before:]
    return sweep.job_objective(ours[-1] if ours else None, typed.sweep.metric)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
