"""SIGTERM and Ctrl-C, handled one way everywhere.

SIGTERM is turned into `Terminated`, a KeyboardInterrupt, so that both unwind the same way: a run open in the
process ends KILLED (gfcore.tracking.run), the processes a block started are stopped (SIGTERM, STOP_GRACE_S to end
their own runs, then SIGKILL), jobs a block submitted are cancelled, and the process exits 143 (SIGTERM) or 130
(Ctrl-C). A bounded clean-up holds further signals until it is done. Signals live in the main thread: elsewhere
these blocks run as they are.

A stop sticks: a library may swallow the exception a signal raised (Ultralytics' TryExcept, around its plots,
swallows every exception), so the stop is remembered until it has left GuardianFlow's blocks, raised again on
entering or leaving one and wherever work would go on (`raise_if_stopped`: each training batch, before a model is
registered, before a run ends FINISHED).

Standard library only (psutil inside the functions that look at processes): every layer may use it.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0  # how long a stopped child process gets to end its own run before it is killed
EXIT_SIGTERM, EXIT_CTRL_C = 143, 130
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C."""


def signal_name(exc: BaseException) -> str:
    """What stopped the process, as a person says it: "SIGTERM" or "Ctrl-C"."""
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"


def exit_code(exc: BaseException) -> int:
    """143 after SIGTERM, 130 after Ctrl-C (the shell's 128 + signal number)."""
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_CTRL_C


def stop_reason(exc: BaseException) -> str:
    """Why a run that was stopped ended KILLED, for its error tag."""
    return "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


_stop: list[int] = []  # the signal that stopped this process, until its exception has left GuardianFlow's blocks
_depth = 0  # raising blocks open in the main thread


def _stopping(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _raise(signum: int, frame: Any) -> None:
    """The handler of a raising block: the stop is remembered, then raised."""
    if not _stop:
        _stop.append(signum)
    raise _stopping(signum)


def raise_if_stopped() -> None:
    """Raise the stop again (Terminated or KeyboardInterrupt) if a signal stopped this process and something
    swallowed its exception: called where work would otherwise go on (in the main thread, where signals land)."""
    if _stop and _main_thread():
        raise _stopping(_stop[0])


@contextmanager
def _stop_sticks() -> Iterator[None]:
    """A raising block: a stop pending is raised on entering and on leaving it normally; it is forgotten once its
    exception has left the outermost block (whoever catches it there handles it)."""
    global _depth
    _depth += 1
    try:
        raise_if_stopped()
        yield
        raise_if_stopped()
    finally:
        _depth -= 1
        if not _depth:
            _stop.clear()


def _restore(previous: dict[int, Any]) -> None:
    for sig, prev in previous.items():
        signal.signal(sig, prev if prev is not None else signal.SIG_DFL)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` within the block (Ctrl-C stays KeyboardInterrupt); both stick (see the
    module)."""
    if not _main_thread():
        yield
        return
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # an ignored Ctrl-C stays ignored
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise)
    try:
        with _stop_sticks():
            yield
    finally:
        _restore(previous)


@contextmanager
def signals_held() -> Iterator[None]:
    """Let a bounded clean-up (stopping processes, ending runs) finish: a second SIGTERM or Ctrl-C waits."""
    if not _main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _SIGNALS}
    try:
        yield
    finally:
        _restore(previous)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """A short step that must not be cut in half (filing a run and learning its id): SIGTERM or Ctrl-C arriving
    inside is delivered when the block ends, to whatever handled it before."""
    if not _main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: arrived.append(signum)) for sig in _SIGNALS}
    try:
        yield
    finally:
        _restore(previous)
        for signum in dict.fromkeys(arrived):
            signal.raise_signal(signum)


@contextmanager
def sigterm_noted() -> Iterator[list[int]]:
    """SIGTERM noted in the list the block gets, not acted on: for a process whose work must see its own end first
    (a SLURM job, where scancel signals every process of the job at once)."""
    noted: list[int] = []
    if not _main_thread():
        yield noted
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: noted.append(signum))
    try:
        yield noted
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def taken_by_thread(sig: int, on_signal: Callable[[], None]) -> Iterator[None]:
    """`sig` (SLURM's warning before a time limit, which it sends to every process of the job step) is taken by a
    thread of this process, which calls `on_signal`, and never reaches the processes started inside the block: the
    signal is blocked in this thread first and they inherit it blocked (a blocked signal stays blocked across fork
    and exec, through a shell too), so its default action, ending the process, never ends them. Here it may land
    in any other thread (a library's own, which blocks nothing): a handler that does nothing replaces that default
    action, and Python's wakeup fd, which the handler's C half writes to in whatever thread, tells the taking
    thread."""
    if not _main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.signal(sig, lambda signum, frame: None)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {sig})
    done = threading.Event()

    def take() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})  # one thread at least can receive it
        while not done.is_set():
            if select.select([read_fd], [], [], 0.5)[0] and sig in os.read(read_fd, 512):
                try:
                    on_signal()
                except Exception:
                    log.exception("handling %s failed", signal.Signals(sig).name)

    taker = threading.Thread(target=take, name=f"gf-{signal.Signals(sig).name}", daemon=True)
    taker.start()
    try:
        yield
    finally:
        done.set()
        taker.join()
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # one pending meets the handler that does nothing
        signal.set_wakeup_fd(previous_fd)
        signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        os.close(read_fd)
        os.close(write_fd)


@contextmanager
def on_stop(cleanup: Callable[[], None], unless: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Whatever ends the block early (SIGTERM, Ctrl-C, an error; not the `unless` errors, which are handled
    already), `cleanup` runs (cancelling jobs the block submitted) before the exception goes on."""
    try:
        yield
    except unless:
        raise
    except BaseException:
        cleanup()
        raise


@contextmanager
def children_stopped_when_interrupted(grace_s: float = STOP_GRACE_S, also: Sequence[int] = ()) -> Iterator[None]:
    """Whatever ends the block early (SIGTERM, Ctrl-C, an error), the processes started inside it and still
    running are stopped before the exception goes on: SIGTERM, then `grace_s` seconds to end their own runs
    (GuardianFlow's runs end KILLED on SIGTERM), then SIGKILL. `also`: processes started before the block (and
    their descendants) that are stopped the same way.

    The process tree is remembered the moment a signal arrives, before a library that is interrupted stops
    its own children in its way (MLflow's `mlflow run` stops only the shell it started; loky kills its
    workers): a grandchild orphaned by that is still found. Within the block SIGTERM raises `Terminated`
    where nothing else handles it."""
    if not _main_thread():
        yield
        return
    import psutil

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    seen: dict[int, psutil.Process] = {}

    def remember() -> None:
        try:
            seen.update((p.pid, p) for p in me.children(recursive=True) if p.pid not in before)
        except psutil.Error:
            pass
        for pid in also:
            try:
                root = psutil.Process(pid)
                seen.update((p.pid, p) for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                pass

    def chained(signum: int, frame: Any, previous: Any) -> None:
        remember()
        if previous is signal.default_int_handler or (not callable(previous) and previous != signal.SIG_IGN):
            _raise(signum, frame)
        elif callable(previous):
            previous(signum, frame)

    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    for sig, prev in previous.items():
        signal.signal(sig, lambda signum, frame, prev=prev: chained(signum, frame, prev))
    try:
        with _stop_sticks():
            yield
    except BaseException:
        with signals_held():
            remember()
            stop_processes(list(seen.values()), grace_s)
        raise
    finally:
        _restore(previous)


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
