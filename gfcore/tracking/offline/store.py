"""The local store of offline runs: $GF_OFFLINE_DIR (default $GF_CACHE_DIR/offline) holds mlflow.db and artifacts/."""

from __future__ import annotations

import os
from pathlib import Path

from gfcore.core.paths import cache_dir

ENV = "GF_OFFLINE"  # 1 on a box that is always offline: every run records locally
TARGET_ENV = "GF_OFFLINE_TARGET"  # the server the runs are meant for (MLFLOW_TRACKING_URI when it went offline)


def folder() -> Path:
    """$GF_OFFLINE_DIR, or the offline folder of the cache."""
    return Path(os.environ.get("GF_OFFLINE_DIR") or cache_dir() / "offline")


def uri() -> str:
    return f"sqlite:///{folder() / 'mlflow.db'}"


def wanted(setting: bool) -> bool:
    return setting or os.environ.get(ENV, "").lower() in ("1", "true", "yes")


def is_active() -> bool:
    import mlflow

    return mlflow.get_tracking_uri() == uri()


def activate() -> str:
    """Point this process, and every process it starts (pipeline steps, sweep jobs), at the offline store."""
    import mlflow

    target = os.environ.get("MLFLOW_TRACKING_URI", "")
    if target and target != uri():
        os.environ[TARGET_ENV] = target
    folder().mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = uri()
    os.environ[ENV] = "1"
    mlflow.set_tracking_uri(uri())
    return uri()


def artifact_location(experiment: str) -> str | None:
    """Where a new experiment of the offline store keeps its artifacts (None: the store's default)."""
    if not is_active():
        return None
    return (folder() / "artifacts" / experiment.replace("/", "__")).as_uri()
