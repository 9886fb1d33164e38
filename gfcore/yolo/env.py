"""Ultralytics runs offline, never installs packages, and never logs to MLflow by itself.

`configure()` must run before the first `import ultralytics`: Ultralytics reads YOLO_AUTOINSTALL at
import time. Its own MLflow callback (and the other hub integrations) are switched off in its settings,
because GuardianFlow owns the run and logs through its own callbacks.
"""

from __future__ import annotations

import os

_INTEGRATIONS_OFF = {"mlflow": False, "sync": False, "clearml": False, "comet": False, "dvc": False,
                     "raytune": False, "tensorboard": False, "wandb": False}


def configure() -> None:
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    from ultralytics.utils import SETTINGS

    if any(SETTINGS.get(k) != v for k, v in _INTEGRATIONS_OFF.items()):
        SETTINGS.update(_INTEGRATIONS_OFF)
