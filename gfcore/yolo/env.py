"""Ultralytics runs offline, never installs packages, and never logs to MLflow by itself.

`configure()` must run before the first `import ultralytics`: Ultralytics reads YOLO_AUTOINSTALL at
import time. Its own MLflow callback (and the other hub integrations) are switched off in its settings,
because GuardianFlow owns the run and logs through its own callbacks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from gfcore.core import quiet

_INTEGRATIONS_OFF = {"mlflow": False, "sync": False, "clearml": False, "comet": False, "dvc": False,
                     "raytune": False, "tensorboard": False, "wandb": False}


def configure() -> None:
    quiet.defaults()  # MLflow's download bars and torch's deprecation warnings: not in a command's output
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    from ultralytics.utils import SETTINGS

    if any(SETTINGS.get(k) != v for k, v in _INTEGRATIONS_OFF.items()):
        SETTINGS.update(_INTEGRATIONS_OFF)


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Everything Ultralytics (and anything else) prints goes to stderr, so a command's stdout holds only its
    result (`--json`). Ultralytics' logger keeps the stdout it found at import: its handler is pointed away too."""
    # Not imported for this: imported inside, its logger starts out on the redirected stdout, i.e. stderr.
    utils = sys.modules.get("ultralytics.utils")
    handlers = utils.LOGGER.handlers if utils is not None else []
    moved = [h for h in handlers if isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.__stdout__)]
    before = [h.setStream(sys.stderr) for h in moved]
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler, stream in zip(moved, before):
            handler.setStream(stream)
