"""One run's journal on local disk: an append-only file of operations (one JSON line each, with a CRC), the
copies of the files its artifacts were made from, and how far it has been sent.

    $GF_JOURNAL_DIR/<run_id>/   (default $GF_CACHE_DIR/journal)
        meta.json        run id, tracking URI, experiment, writer's pid
        entries.jsonl    {"op": ..., ..., "crc": ...} per line, in the order the work recorded them
        sent.json        {"offset": bytes, "lines": n}: everything before offset has reached the server
        files/<line>/    artifacts as they were when logged (the work may delete or rewrite its own)
        rejected.jsonl   entries the server refused for good (kept, with the reason)
        lock             held by the process that sends it (the writer, or `guardianflow sync`)
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gfcore.core.errors import TrackingError
from gfcore.core.paths import cache_dir


def journal_root() -> Path:
    """$GF_JOURNAL_DIR, or the journal folder of the cache (keep it on a disk that survives a reboot)."""
    return Path(os.environ.get("GF_JOURNAL_DIR") or cache_dir() / "journal")


def _crc(body: str) -> str:
    return f"{zlib.crc32(body.encode()):08x}"


def encode(entry: dict[str, Any]) -> str:
    body = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    return json.dumps({**entry, "crc": _crc(body)}, sort_keys=True, separators=(",", ":")) + "\n"


@dataclass
class Line:
    """One line of the journal: its number (1-based), the entry, or why it cannot be read."""

    number: int
    end: int  # byte offset after it
    entry: dict[str, Any] | None
    damage: str | None = None
    text: str = ""


def decode(number: int, end: int, raw: bytes) -> Line:
    text = raw.decode("utf-8", errors="replace").rstrip("\n")
    try:
        entry = json.loads(text)
        crc = entry.pop("crc")
    except (ValueError, KeyError, AttributeError, TypeError):
        return Line(number, end, None, "not a journal entry (unreadable JSON or no checksum)", text)
    if _crc(json.dumps(entry, sort_keys=True, separators=(",", ":"))) != crc:
        return Line(number, end, None, "its checksum does not match its content", text)
    return Line(number, end, entry, text=text)


class JournalBusy(TrackingError):
    """Another process sends this journal."""


class Journal:
    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self._append_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._lines: int | None = None  # lines written, counted once

    # -- creating and finding --------------------------------------------------------------------------------

    @classmethod
    def create(cls, run_id: str, tracking_uri: str, experiment_id: str) -> Journal:
        folder = journal_root() / run_id
        folder.mkdir(parents=True, exist_ok=True)
        journal = cls(folder)
        meta = {**journal.meta(), "run_id": run_id, "tracking_uri": tracking_uri, "experiment_id": experiment_id,
                "pid": os.getpid(), "host": os.uname().nodename, "opened": time.time()}
        _write_json(folder / "meta.json", meta)
        (folder / "entries.jsonl").touch()
        return journal

    @classmethod
    def find(cls, run_id: str) -> Journal | None:
        folder = journal_root() / run_id
        return cls(folder) if (folder / "meta.json").is_file() else None

    @classmethod
    def all(cls) -> list[Journal]:
        root = journal_root()
        if not root.is_dir():
            return []
        return [cls(f) for f in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime) if (f / "meta.json").is_file()]

    def meta(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / "meta.json").read_text())
        except (OSError, ValueError):
            return {}

    @property
    def run_id(self) -> str:
        return self.meta().get("run_id", self.dir.name)

    @property
    def tracking_uri(self) -> str:
        return self.meta().get("tracking_uri", "")

    # -- writing ---------------------------------------------------------------------------------------------

    def append(self, entry: dict[str, Any], files: dict[str, Path] | None = None) -> int:
        """Write one entry durably (flushed and fsynced before this returns); `files` (name -> local file or
        folder) are copied first, and the entry gets `files: {name: path inside the journal}`. Its line number."""
        with self._append_lock:
            path = self.dir / "entries.jsonl"
            if self._lines is None:
                self._lines = _count_lines(path)
            number = self._lines + 1
            if files:
                kept = {}
                for name, src in files.items():
                    dst = self.dir / "files" / str(number) / name / Path(src).name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    if Path(src).is_dir():
                        shutil.copytree(src, dst, dirs_exist_ok=True)
                    else:
                        shutil.copy2(src, dst)
                    kept[name] = str(dst.relative_to(self.dir))
                entry = {**entry, "files": kept}
            with path.open("a") as f:
                f.write(encode(entry))
                f.flush()
                os.fsync(f.fileno())
            self._lines = number
            return number

    # -- reading and sending ---------------------------------------------------------------------------------

    def sent(self) -> tuple[int, int]:
        """(byte offset, lines) of what has reached the server."""
        try:
            data = json.loads((self.dir / "sent.json").read_text())
            return int(data["offset"]), int(data["lines"])
        except (OSError, ValueError, KeyError):
            return 0, 0

    def mark_sent(self, line: Line) -> None:
        _write_json(self.dir / "sent.json", {"offset": line.end, "lines": line.number})

    def pending(self, partial_is_damage: bool = False) -> Iterator[Line]:
        """The lines not yet sent, in order. A last line without its newline is being written (skipped), unless
        its writer is gone (`partial_is_damage`): then it is a damaged entry."""
        offset, number = self.sent()
        with (self.dir / "entries.jsonl").open("rb") as f:
            f.seek(offset)
            while True:
                raw = f.readline()
                if not raw:
                    return
                number += 1
                offset += len(raw)
                if not raw.endswith(b"\n"):
                    if partial_is_damage:
                        yield Line(number, offset, None, "it was cut off (its writer stopped mid-line)",
                                   raw.decode("utf-8", "replace"))
                    return
                yield decode(number, offset, raw)

    def pending_count(self) -> int:
        written = self._lines if self._lines is not None else _count_lines(self.dir / "entries.jsonl")
        return written - self.sent()[1]

    def file(self, relative: str) -> Path:
        return self.dir / relative

    def reject(self, line: Line, reason: str) -> None:
        """Keep an entry the server refused (or that cannot be read) beside the journal, with why."""
        with (self.dir / "rejected.jsonl").open("a") as f:
            f.write(json.dumps({"line": line.number, "reason": reason, "text": line.text or json.dumps(line.entry)})
                    + "\n")

    def rejected(self) -> list[dict[str, Any]]:
        path = self.dir / "rejected.jsonl"
        if not path.is_file():
            return []
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]

    # -- ownership -------------------------------------------------------------------------------------------

    def lock(self) -> None:
        """Become the one sender of this journal, or raise JournalBusy naming the one that is."""
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = (self.dir / "lock").read_text().strip() or "another process"
            raise JournalBusy(f"the journal of run {self.run_id} is being sent by process {holder}: wait for it to "
                              "finish, or stop it, then run `guardianflow sync` again.") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def remove(self) -> None:
        """All sent: the journal goes (unless entries were refused or damaged: those stay, with the folder)."""
        self.unlock()
        if self.rejected():
            for name in ("files", "entries.jsonl", "sent.json"):
                target = self.dir / name
                shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
            return
        shutil.rmtree(self.dir, ignore_errors=True)


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return 0


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
