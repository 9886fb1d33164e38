"""Where GuardianFlow keeps what it generates outside of git: demo data, dataset hashes, locks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def hydra_output_dir() -> Path | None:
    """The output folder of the running Hydra app, or None outside of one."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return Path(HydraConfig.get().runtime.output_dir)


def cache_dir() -> Path:
    """$GF_CACHE_DIR, or ~/.cache/guardianflow."""
    return Path(os.environ.get("GF_CACHE_DIR") or Path.home() / ".cache" / "guardianflow")


@contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """Where an entry point's intermediate files go: the Hydra run folder, or a temporary one outside Hydra."""
    out = hydra_output_dir()
    if out is not None:
        yield out
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
