"""Where GuardianFlow keeps what it generates outside of git: demo data, dataset hashes, locks."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$GF_CACHE_DIR, or ~/.cache/guardianflow."""
    return Path(os.environ.get("GF_CACHE_DIR") or Path.home() / ".cache" / "guardianflow")
