"""What a sweep on Ray needs beyond Hydra's Ray launcher: the environment its jobs need reaching the workers
(an existing cluster's workers do not inherit it, so children would not nest and the parent would fail), and
`ray.init` arguments that work both for a local Ray and for connecting to a cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# What a job reads from its environment: the tracking server and its credentials, the sweep's parent run id and
# the caches (GF_*), the S3 endpoint and keys, and Ultralytics' offline settings.
ENV_PREFIXES = ("MLFLOW_", "AWS_", "GF_", "YOLO_", "ULTRALYTICS_")
# Run ids that name the driver's own run: a job must start runs of its own.
NOT_PASSED = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID")


def worker_env(prefixes: tuple[str, ...] | list[str] | None = None) -> dict[str, str]:
    """The driver's settings whose names start with `prefixes` (default ENV_PREFIXES) for the jobs, with the
    tracking URI made absolute (a worker's working directory is not the driver's, so `sqlite:///mlflow.db` would
    open another file)."""
    import mlflow

    wanted = tuple(prefixes) if prefixes else ENV_PREFIXES
    env = {k: v for k, v in os.environ.items() if k.startswith(wanted) and k not in NOT_PASSED}
    env["MLFLOW_TRACKING_URI"] = absolute_uri(mlflow.get_tracking_uri())
    return env


def absolute_uri(uri: str) -> str:
    """`sqlite:///relative.db` and plain paths made absolute; server URIs as they are."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    if "://" not in uri:
        return str(Path(uri).resolve())
    if uri.startswith("file://") and not uri.startswith("file:///"):
        return f"file://{Path(uri.removeprefix('file://')).resolve()}"
    return uri


def use_token_if_present() -> None:
    """Connecting to a cluster: speak token authentication when a token is at hand (RAY_AUTH_TOKEN, or
    ~/.ray/auth_token, which a local Ray writes), as `ray start` does; a head started with a token refuses a
    client without one, and Ray's client does not look by itself. Ray before token authentication: nothing."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def init_args(address: str | None, extra: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """ray.init's arguments: a local Ray sized for a sweep (no dashboard, a small object store: jobs hand back
    only their figures), or a connection to `address`, where Ray refuses resource and memory settings."""
    args: dict[str, Any] = {"runtime_env": {"env_vars": env}, "log_to_driver": True}
    if address:
        args["address"] = address
        refused = {"object_store_memory", "num_cpus", "num_gpus", "include_dashboard", "resources"}
        args.update({k: v for k, v in extra.items() if k not in refused})
    else:
        args.update({"include_dashboard": False, "object_store_memory": 78_643_200, **extra})
    return args
