"""Where GuardianFlow keeps what it generates outside of git: demo data, dataset hashes, locks."""

from __future__ import annotations

import os
import sys
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


# The folder the user started GuardianFlow in, handed to the entry points' processes: `mlflow run` starts them in
# the project checkout, and their Hydra folders (conf/config.yaml hydra.run.dir, hydra.sweep.dir) are built from it.
WORK_DIR_ENV = "GF_WORK_DIR"
# Set once a process said where its files go: the steps it launches (children inherit it) do not say it again.
FILES_SAID_ENV = "GF_FILES_SAID"


def user_work_dir() -> Path:
    """Where a command's files go (Hydra's outputs/ and multirun/, Ultralytics' folders, exports): $GF_WORK_DIR,
    else the current folder, where the user started the command."""
    return Path(os.environ.get(WORK_DIR_ENV) or Path.cwd()).resolve()


@contextmanager
def work_dir_handed_on() -> Iterator[Path]:
    """The user's work folder in this process's environment for the block, so the processes started in it (which
    run in the project checkout) inherit it and write there, not into the checkout; yields the folder."""
    folder, before = user_work_dir(), os.environ.get(WORK_DIR_ENV)
    os.environ[WORK_DIR_ENV] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(WORK_DIR_ENV, None)
        else:
            os.environ[WORK_DIR_ENV] = before


def say_where_files_are(folder: Path) -> None:
    """One line on stderr, `files: FOLDER`, once per command: not again in the processes it starts."""
    if os.environ.get(FILES_SAID_ENV):
        return
    os.environ[FILES_SAID_ENV] = str(folder)
    print(f"files: {folder.resolve()}", file=sys.stderr, flush=True)


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
