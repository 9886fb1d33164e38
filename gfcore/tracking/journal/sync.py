"""`guardianflow sync`: send what journals of runs whose process has ended still hold."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from gfcore.tracking.journal.replay import RunGone
from gfcore.tracking.journal.sender import is_transient, send_pending
from gfcore.tracking.journal.store import Journal, JournalBusy

log = logging.getLogger("gfcore.tracking.journal")


@dataclass
class SyncResult:
    run_id: str
    tracking_uri: str
    pending: int  # entries waiting before this sync
    sent: int = 0
    outcome: str = "sent"  # sent | would send | busy | run deleted | unreachable | kept
    detail: str = ""
    rejected: list[dict] = field(default_factory=list)


def pending_journals(run_id: str | None = None, uri: str | None = None) -> list[Journal]:
    """Journals with something to send (of run `run_id` / of server `uri` when given)."""
    found = [j for j in Journal.all() if j.pending_count() > 0 or _partial(j)]
    if run_id:
        found = [j for j in found if j.run_id == run_id]
    if uri:
        found = [j for j in found if j.tracking_uri.rstrip("/") == uri.rstrip("/")]
    return found


def _partial(journal: Journal) -> bool:
    return any(line.entry is None for line in journal.pending(partial_is_damage=True))


def sync_journal(journal: Journal, dry_run: bool = False) -> SyncResult:
    result = SyncResult(journal.run_id, journal.tracking_uri, journal.pending_count())
    if dry_run:
        result.outcome = "would send"
        return result
    try:
        journal.lock()
    except JournalBusy as busy:
        result.outcome, result.detail = "busy", str(busy)
        return result
    try:
        result.sent = send_pending(journal, journal.run_id, writer_gone=True)
    except RunGone:
        result.outcome = "run deleted"
        result.detail = (f"run {journal.run_id} was deleted on {journal.tracking_uri}: its journal stays at "
                         f"{journal.dir} (restore the run with `mlflow runs restore --run-id {journal.run_id}` and "
                         "sync again, or delete that folder to drop what it holds)")
        journal.unlock()
        return result
    except Exception as exc:
        journal.unlock()
        if not is_transient(exc):
            raise
        result.outcome = "unreachable"
        result.detail = f"the server at {journal.tracking_uri} did not answer: {str(exc).splitlines()[0][:200]}"
        return result
    result.rejected = journal.rejected()
    if result.rejected:
        result.outcome = "kept"
        named = "; ".join(f"entry {r['line']}: {r['reason']}" for r in result.rejected[:5])
        result.detail = (f"{len(result.rejected)} entries could not be sent ({named}); the rest was sent; they are "
                         f"kept in {journal.dir / 'rejected.jsonl'}")
    journal.remove()
    return result


def sync(run_id: str | None = None, dry_run: bool = False, uri: str | None = None) -> list[SyncResult]:
    """Send every pending journal (of one run, or of one server); one result each."""
    return [sync_journal(j, dry_run) for j in pending_journals(run_id, uri)]


def sync_quietly(uri: str) -> None:
    """What every command that reaches `uri` does first: send what earlier runs left, saying so in one line."""
    for result in sync(uri=uri):
        if result.outcome == "sent":
            log.warning("sent %d records that run %s had left in its journal", result.sent, result.run_id)
        elif result.outcome not in ("busy",):
            log.warning("the journal of run %s: %s", result.run_id, result.detail)
