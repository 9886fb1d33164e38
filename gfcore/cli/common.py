"""What the command groups share: typed config from overrides, stdout kept for the result (tables are in
gfcore.cli.tables)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def typed(overrides: list[str]):
    """The typed config of `overrides`, configs outside the package included (GF_CONFIG_PATH, scenario=PATH.yaml);
    an error in one names its file."""
    from gfcore.config import split_overrides  # Hydra: only for the commands that compose
    from gfcore.config.compose import compose_typed

    return compose_typed(split_overrides(overrides))


@contextmanager
def result_only_on_stdout(on: bool = True) -> Iterator[None]:
    """While the work runs, everything written to stdout (by this process, Ultralytics' logger, or the processes
    it starts, which inherit file descriptor 1) goes to stderr, so that stdout carries only the `--json` result."""
    if not on:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        from gfcore.yolo import env

        with env.stdout_to_stderr():
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
