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


def run_work_dir(kind: str, run_id: str) -> tuple[Path, bool]:
    """Where a run keeps what must outlive a crash of its process (a train run's checkpoints, for a resume): the
    Hydra run folder, or $GF_CACHE_DIR/<kind>/<run_id> outside Hydra. The flag is True for the latter, a folder
    that is the run's alone (its owner removes it once the run finished)."""
    out = hydra_output_dir()
    if out is not None:
        return out.resolve(), False
    folder = cache_dir().resolve() / kind / run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder, True
