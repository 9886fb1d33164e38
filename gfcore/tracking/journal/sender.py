"""Sending a journal: in order, from where it stopped, classifying what the server says.

A live run's journal is sent by a background thread (`Sender`) so the work never waits on the network; what
is left when the work ends is waited for a bounded time (`Sender.finish`), then left for `guardianflow sync`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gfcore.tracking.journal.replay import RunGone, apply
from gfcore.tracking.journal.store import Line

if TYPE_CHECKING:
    from gfcore.tracking.journal.store import Journal

log = logging.getLogger("gfcore.tracking.journal")


# What MLflow's server says (as HTTP 400, from SQLAlchemy) when its database is away or its connection pool is
# exhausted under load: the entry was fine, the server was not.
_DATABASE_AWAY = ("QueuePool limit", "OperationalError", "TimeoutError", "timed out", "could not connect",
                  "connection", "the database system is", "terminating connection", "server closed")


def is_transient(exc: BaseException) -> bool:
    """The server did not answer, answered 5xx / 429, or said its database was away (anywhere in the chain):
    try again later. Anything else it refused will be refused again."""
    import requests
    from mlflow.exceptions import MlflowException

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (requests.RequestException, ConnectionError, TimeoutError)):
            return True
        if isinstance(seen, MlflowException):
            status = seen.get_http_status_code()
            if status >= 500 or status == 429 or any(s in str(seen.message) for s in _DATABASE_AWAY):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def _run_deleted(journal: Journal, run_id: str) -> bool:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient(journal.tracking_uri or None).get_run(run_id).info.lifecycle_stage == "deleted"
    except MlflowException as exc:
        return exc.error_code == "RESOURCE_DOES_NOT_EXIST"


def send_pending(journal: Journal, run_id: str, writer_gone: bool = False, stop: threading.Event | None = None) -> int:
    """Send every pending entry of `journal` to run `run_id`; the count sent. A damaged entry or one the server
    refuses for good is kept aside (rejected.jsonl, named in the log) and the rest goes on; a server that does
    not answer raises (the position is kept); a run deleted on the server raises RunGone."""
    sent = 0
    for line in _coalesced(journal.pending(partial_is_damage=writer_gone)):
        if stop is not None and stop.is_set():
            break
        if line.entry is None:
            journal.reject(line, line.damage or "damaged")
            log.error("entry %d of the journal of run %s is damaged (%s): kept in %s; the rest is sent", line.number,
                      run_id, line.damage, journal.dir / "rejected.jsonl")
        else:
            try:
                apply(journal, run_id, line.entry)
            except Exception as exc:
                if is_transient(exc):
                    raise
                if _run_deleted(journal, run_id):
                    raise RunGone(run_id) from exc
                reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                journal.reject(line, reason)
                log.error("the server refused entry %d (%s) of run %s: %s; kept in %s", line.number,
                          line.entry.get("op"), run_id, reason, journal.dir / "rejected.jsonl")
        journal.mark_sent(line)
        sent += 1
    return sent


# MLflow's limits for one log_batch request.
_MAX_METRICS, _MAX_PARAMS_TAGS = 1000, 100


def _coalesced(lines: Iterator[Line]) -> Iterator[Line]:
    """Consecutive metric/param/tag entries as one request (order kept, within MLflow's limits): a journal that
    fell behind drains in a few round trips, not one per epoch. A merged line ends where its last entry does."""
    merged: Line | None = None
    for line in lines:
        entry = line.entry
        if entry is not None and entry.get("op") == "batch":
            if merged is not None and _fits(merged.entry, entry):
                merged = Line(line.number, line.end, {
                    "op": "batch", "metrics": merged.entry["metrics"] + entry["metrics"],
                    "params": merged.entry["params"] + entry["params"], "tags": merged.entry["tags"] + entry["tags"]})
                continue
            if merged is not None:
                yield merged
            merged = line
            continue
        if merged is not None:
            yield merged
            merged = None
        yield line
    if merged is not None:
        yield merged


def _fits(a: dict, b: dict) -> bool:
    # A key twice in one request is refused by some stores: params and tags are merged only when new.
    if {p[0] for p in a["params"]} & {p[0] for p in b["params"]} or {t[0] for t in a["tags"]} & {t[0] for t in b["tags"]}:
        return False
    return (len(a["metrics"]) + len(b["metrics"]) <= _MAX_METRICS
            and len(a["params"]) + len(b["params"]) <= _MAX_PARAMS_TAGS
            and len(a["tags"]) + len(b["tags"]) <= _MAX_PARAMS_TAGS)


class Sender:
    """The background sender of a live run's journal; says once when the server goes away and once when it is
    back, with what is pending."""

    def __init__(self, journal: Journal, run_id: str, probe_s: float = 2.0) -> None:
        self.journal, self.run_id, self.probe_s = journal, run_id, probe_s
        self._wake, self._closing, self._abandon = threading.Event(), threading.Event(), threading.Event()
        self.away_since: float | None = None
        self.gone: RunGone | None = None
        self._thread = threading.Thread(target=self._loop, name="gf-journal-sender", daemon=True)

    def start(self) -> Sender:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def pending(self) -> int:
        return self.journal.pending_count()

    def wait_sent(self, timeout_s: float = 10.0) -> None:
        """Read-your-writes: before the work reads its own run back, let what it wrote reach the server (not
        while the server is away: the read will say so itself)."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        while self.away_since is None and self._thread.is_alive() and self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _loop(self) -> None:
        from gfcore.tracking.health import answers

        while not self._abandon.is_set():
            self._wake.wait(self.probe_s if self.away_since else 1.0)
            self._wake.clear()
            if self._abandon.is_set():
                return
            if self.away_since:
                if not answers(self.journal.tracking_uri):
                    continue
                log.warning("the tracking server is back after %.0f s: sending the %d records waiting in the journal",
                            time.monotonic() - self.away_since, self.pending())
                self.away_since = None
            try:
                send_pending(self.journal, self.run_id, stop=self._abandon)
            except RunGone as gone:
                self.gone = gone
                log.error("run %s was deleted on the server: its journal stays at %s and is no longer sent",
                          self.run_id, self.journal.dir)
                return
            except Exception as exc:
                if not is_transient(exc):  # a bug of ours: keep the journal, say it, stop sending
                    log.exception("the journal of run %s could not be sent; it stays at %s", self.run_id,
                                  self.journal.dir)
                    return
                if self.away_since is None:
                    self.away_since = time.monotonic()
                    log.warning("the tracking server at %s stopped answering (%s): the work goes on and records "
                                "wait in the journal (%d pending, %s)", self.journal.tracking_uri,
                                str(exc).splitlines()[0][:160], self.pending(), self.journal.dir)
                continue
            if self._closing.is_set() and self.pending() == 0:
                return

    def finish(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for the journal to be sent, saying how it goes; the count still pending."""
        self._closing.set()
        self._wake.set()
        deadline, said = time.monotonic() + timeout_s, 0.0
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(timeout=1.0)
            left = self.pending()
            if self._thread.is_alive() and left and time.monotonic() - said >= 10:
                said = time.monotonic()
                what = "waiting for the tracking server" if self.away_since else "sending the journal"
                log.warning("%s: %d records of run %s pending (%.0f s left)", what, left, self.run_id,
                            max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():  # out of time: stop sending, so `guardianflow sync` alone owns what is left
            self._abandon.set()
            self._wake.set()
            self._thread.join(timeout=30)
        return self.pending()
