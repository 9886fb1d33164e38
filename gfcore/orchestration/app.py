"""What every entry point shares around its gfcore call: clear errors, honest exit codes, and nothing left
RUNNING (neither a run nor a process) when it is stopped."""

from __future__ import annotations

import logging
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from omegaconf import DictConfig

from gfcore.config.compose import to_typed
from gfcore.config.schema import Config
from gfcore.core.errors import GuardianFlowError

T = TypeVar("T")
log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0  # how long a stopped child process gets to end its own run before it is killed
EXIT_SIGTERM, EXIT_CTRL_C = 143, 130


def run_app(work: Callable[[Config], T], cfg: DictConfig) -> T | float:
    """Type the composed config and run `work`; a GuardianFlow error prints one paragraph and exits 2,
    Ctrl-C exits 130 and SIGTERM 143. Under `mlflow run`, a failure before the run was owned still ends
    MLflow's run FAILED (or KILLED).

    In a Hydra multirun (a sweep) a job never exits the process: it returns the value of `sweep.metric`
    its run logged, or NaN when it failed (its run is then FAILED), so the sweeper goes on."""
    from gfcore.core import gcpolicy
    from gfcore.tracking.run import fail_env_run, sigterm_raises

    gcpolicy.starting()  # until the run is owned (gfcore.tracking.run)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if _in_multirun():
        return _run_job(work, cfg)
    try:
        with sigterm_raises():  # also before and after the run is owned: SIGTERM unwinds, never just kills
            result = work(to_typed(cfg))
        gcpolicy.exiting()
        return result
    except GuardianFlowError as exc:
        fail_env_run(exc)
        print(f"\nguardianflow: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        fail_env_run(exc, status="KILLED")
        print(f"\nguardianflow: stopped by {_signal_name(exc)}; the run is marked KILLED.", file=sys.stderr)
        sys.exit(_interrupt_exit_code(exc))
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
    from gfcore.core.errors import StepError
    from gfcore.orchestration import sweep

    try:
        sweep.check_overrides(sys.argv[1:])
    except GuardianFlowError as err:
        print(f"guardianflow: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    if "--multirun" not in sys.argv and "-m" not in sys.argv:
        sys.argv.insert(1, "--multirun")
    try:
        with children_stopped_when_interrupted():
            main()
    except KeyboardInterrupt as exc:
        with _signals_held():
            sweep.end_open_parent("KILLED", f"the sweep was stopped by {_signal_name(exc)}")
        print(f"\nguardianflow: sweep stopped by {_signal_name(exc)}; its parent run and every unfinished job "
              "are marked KILLED.", file=sys.stderr)
        sys.exit(_interrupt_exit_code(exc))
    except sweep.SweepAborted as exc:
        with _signals_held():
            sweep.end_open_parent("FAILED", str(exc))
        if not isinstance(exc.__cause__, GuardianFlowError):
            raise
        print(f"\nguardianflow: error: {exc}", file=sys.stderr)
        sys.exit(exc.__cause__.exit_code)
    except BaseException as exc:  # Hydra exits through SystemExit on errors; never leave the parent RUNNING
        if not (isinstance(exc, SystemExit) and exc.code in (0, None)):
            with _signals_held():
                sweep.end_open_parent("FAILED", f"the sweep stopped: {type(exc).__name__}: {exc}")
        raise
    ended = sweep.ended_parent()
    if ended is not None and ended.info.status != "FINISHED":
        err = StepError(f"the sweep's parent run {ended.info.run_id} ended {ended.info.status}: "
                        f"{ended.data.tags.get('gf.error', 'see its tags')}. Each job's error is on its run "
                        "(tag gf.error, artifact error/traceback.txt); fix the cause and run the sweep again.")
        print(f"\nguardianflow: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


@contextmanager
def children_stopped_when_interrupted(grace_s: float = STOP_GRACE_S) -> Iterator[None]:
    """Whatever ends the block early (SIGTERM, Ctrl-C, an error), the processes started inside it and still
    running are stopped before the exception goes on: SIGTERM, then `grace_s` seconds to end their own runs
    (GuardianFlow's runs end KILLED on SIGTERM), then SIGKILL.

    The process tree is remembered the moment a signal arrives, before a library that is interrupted stops
    its own children in its way (MLflow's `mlflow run` stops only the shell it started; loky kills its
    workers): a grandchild orphaned by that is still found. Within the block SIGTERM raises `Terminated`
    where nothing else handles it. Main thread only (signals live there); elsewhere the block runs as it is."""
    import threading

    import psutil

    from gfcore.tracking.run import Terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    seen: dict[int, psutil.Process] = {}

    def remember() -> None:
        try:
            seen.update((p.pid, p) for p in me.children(recursive=True) if p.pid not in before)
        except psutil.Error:
            pass

    def chained(signum: int, frame: Any, previous: Any) -> None:
        remember()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig, prev in previous.items():
        signal.signal(sig, lambda signum, frame, prev=prev: chained(signum, frame, prev))
    try:
        yield
    except BaseException:
        with _signals_held():
            remember()
            stop_processes(list(seen.values()), grace_s)
        raise
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev if prev is not None else signal.SIG_DFL)


def stop_processes(procs: list[Any], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM each process that is still running (a process whose parent is still running is left to its
    parent until that one is gone: a launcher forwards the signal itself), wait up to `grace_s` seconds for
    all of them, then SIGKILL the rest. A process that ignores SIGTERM is left alone: that is a helper such as
    multiprocessing's or loky's resource tracker, which cleans up and ends by itself once its parent is gone."""
    import psutil

    def running(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    procs = [p for p in procs if not _ignores_sigterm(p.pid)]
    pids = {p.pid for p in procs}
    signalled: set[int] = set()
    deadline = time.monotonic() + grace_s
    while (alive := [p for p in procs if running(p)]) and time.monotonic() < deadline:
        alive_pids = {p.pid for p in alive}
        for p in alive:
            try:
                if p.pid not in signalled and not (p.ppid() in pids and p.ppid() in alive_pids):
                    p.send_signal(signal.SIGTERM)
                    signalled.add(p.pid)
            except psutil.Error:
                pass
        time.sleep(0.1)
    for p in alive:
        log.warning("process %d did not stop within %.0f s of SIGTERM: killing it", p.pid, grace_s)
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs([p for p in alive if running(p)], timeout=5)


def _ignores_sigterm(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            mask = next((line.split()[1] for line in status if line.startswith("SigIgn:")), "0")
        return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))
    except (OSError, ValueError, IndexError):  # not Linux, or the process is gone
        return False


@contextmanager
def _signals_held() -> Iterator[None]:
    """Let a bounded clean-up (stopping processes, ending runs) finish: a second SIGTERM or Ctrl-C waits."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev if prev is not None else signal.SIG_DFL)


def _signal_name(exc: BaseException) -> str:
    from gfcore.tracking.run import Terminated

    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"


def _interrupt_exit_code(exc: BaseException) -> int:
    from gfcore.tracking.run import Terminated

    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_CTRL_C


def _run_job(work: Callable[[Config], T], cfg: DictConfig) -> float:
    """One job of a multirun. SIGTERM stops it (its run ends KILLED) from its first line to its last, also in
    a job process of its own, where a launcher may have set SIGTERM aside (submitit only logs it)."""
    from gfcore.orchestration import sweep
    from gfcore.tracking.run import sigterm_raises, started_runs

    before = len(started_runs())
    try:
        with sigterm_raises():
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
