"""A durable per-run journal between GuardianFlow's work and the tracking server.

Everything a run records after it is owned (params, tags, each epoch's metrics, system metrics, artifacts, the
model's logging and registration, the final status) is appended to a journal on local disk, in order, and
sent from there by a background thread. A server that stops answering costs nothing but a longer journal: the
work goes on, the console says once that the server went away and once that it is back, and the journal is
replayed in order (replaying twice leaves the same records). At the end the process waits a bounded time for
the journal to drain, then says what is still pending; `guardianflow sync` (and every command that reaches the
server) sends it later.

    store      the on-disk format          intercept  MLflow's writes -> entries
    replay     one entry -> the server     sender     the background thread, the bounded drain
    sync       what ended processes left
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gfcore.tracking.journal import intercept
from gfcore.tracking.journal.sender import Sender
from gfcore.tracking.journal.store import Journal

log = logging.getLogger("gfcore.tracking.journal")

_senders: dict[str, Sender] = {}


def begin(run_id: str, tracking_uri: str, experiment_id: str) -> Journal:
    """From now on, what this process records for `run_id` goes through a journal (sent in the background)."""
    journal = Journal.create(run_id, tracking_uri, experiment_id)
    journal.lock()
    sender = Sender(journal, run_id)
    intercept.attach(run_id, journal, sender.wake, sender.wait_sent)
    _senders[run_id] = sender.start()
    return journal


def active(run_id: str | None) -> bool:
    return bool(run_id) and run_id in _senders


def call(run_id: str, fn: str, kwargs: dict[str, Any], files: dict[str, Path] | None = None) -> bool:
    """Run `fn` ("module:function", called with run_id=... and `kwargs`, its `files` copied into the journal
    first) in the journal's order, with the run active in the calling thread, once the server has everything
    before it: what needs the server's answers (logging a model, registering it). False when the run has no
    journal (the caller does it now)."""
    if not active(run_id):
        return False
    intercept.record(run_id, {"op": "call", "fn": fn, "kwargs": kwargs}, files)
    return True


def finish(run_id: str, timeout_s: float) -> int:
    """The work is done: wait up to `timeout_s` for its journal to reach the server, then stop recording into
    it; the count of entries still pending (0: the journal is gone)."""
    sender = _senders.pop(run_id, None)
    if sender is None:
        return 0
    try:
        left = sender.finish(timeout_s)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while waiting: stop waiting, keep the rest for `sync`
        left = sender.pending()
    intercept.detach(run_id, sender.wake)
    journal = sender.journal
    if left == 0 and sender.gone is None:
        journal.remove()
        return 0
    journal.unlock()
    log.warning("%d records of run %s have not reached the tracking server at %s yet; they are kept in %s. Send "
                "them with `guardianflow sync --run %s` once the server answers (every GuardianFlow command that "
                "reaches it sends them too).", left, run_id, journal.tracking_uri, journal.dir, run_id)
    return left
