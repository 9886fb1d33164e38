"""The version of GuardianFlow's own code, as a content hash: a step ran with the same code if this matches,
whether or not the folder is a git checkout (and whatever is uncommitted in it)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]  # the project root (MLproject, conf/, gfcore/): defined here only
SOURCES = ("gfcore/**/*.py", "conf/**/*.yaml", "guardianflow/*.py", "MLproject")


@functools.cache
def code_version() -> str:
    digest = hashlib.sha256()
    for path in sorted({p for pattern in SOURCES for p in PROJECT.glob(pattern) if p.is_file()}):
        digest.update(path.relative_to(PROJECT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
