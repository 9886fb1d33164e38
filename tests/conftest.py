"""Shared fixtures: a real temporary sqlite MLflow store per test, one demo-data cache per session."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _offline_and_cached(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Offline Ultralytics and one demo-data cache for the whole session (generated once, reused)."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.setdefault("GF_CACHE_DIR", str(tmp_path_factory.mktemp("gfcache")))


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh sqlite tracking store with local artifacts; MLflow's own, not a mock."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():  # never leak a run into the next test
        mlflow.end_run("FAILED")
    mlflow.set_tracking_uri(None)


def runs_of(uri: str, experiment: str = "demo/local-plant1/yard") -> list:
    import mlflow

    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        return []
    return mlflow.search_runs(experiment_names=[experiment], output_format="list", order_by=["start_time ASC"])


def run_entrypoint(args: list[str], uri: str, cwd: Path, timeout: int = 600, audit: Path | None = None,
                   **env) -> subprocess.CompletedProcess:
    """Run `python -m guardianflow.<args>` from the repo root as a user would, against `uri`. With `audit`, the
    processes it starts and the heavy modules it imports are written there (tests/audit.py)."""
    full_env = {**os.environ, "MLFLOW_TRACKING_URI": uri, **env}
    full_env.pop("MLFLOW_RUN_ID", None)
    full_env.pop("PYTEST_CURRENT_TEST", None)
    runner = [sys.executable, "-m", "tests.audit", str(audit)] if audit else [sys.executable, "-m"]
    return subprocess.run([*runner, *args, f"hydra.run.dir={cwd}/outputs"], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def run_project(entry: str, uri: str, params: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    """`mlflow run` of this repository's entry point, filed under the demo site's experiment, as a user runs it."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_RUN_ID", None)
    args = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", entry, "--env-manager", "local"]
    for key, value in params.items():
        args += ["-P", f"{key}={value}"]
    return subprocess.run([*args, "--experiment-name", "demo/local-plant1/yard"], env=env, capture_output=True,
                          text=True, timeout=timeout)


def artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for a in client.list_artifacts(run_id, path):
        out |= artifact_paths(client, run_id, a.path) if a.is_dir else {a.path}
    return out


@contextmanager
def smoke_versions(tmp_path_factory, label: str, seeds=(0,), promote_first: bool = False, later=()):
    """A sqlite store in which `train` (smoke, one epoch) registered one version of the demo model per seed; with
    `promote_first` the first becomes champion, so the next is a candidate against it. `later`: overrides for the
    versions after the first (what their logged scenario carries)."""
    import mlflow

    from gfcore.config import compose, to_typed
    from gfcore.jobs.train import train
    from gfcore.registry import lifecycle

    path = tmp_path_factory.mktemp(label)
    uri = f"sqlite:///{path / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    try:
        for n, seed in enumerate(seeds):
            extra = list(later) if n else []
            train(to_typed(compose(["scenario=smoke", "train.epochs=1", f"train.seed={seed}", *extra])))
            if promote_first and n == 0:
                lifecycle.promote("demo.local-plant1.yard.ppe")
        yield uri
    finally:
        mlflow.set_tracking_uri(None)
        mp.undo()


@pytest.fixture(scope="session")
def _trained_template(tmp_path_factory) -> Path:
    """The sqlite database of a store in which `train` (smoke, one epoch) registered version 1 of the demo model,
    trained once for the session; `trained_store` hands each module a copy of it."""
    with smoke_versions(tmp_path_factory, "trained-template") as uri:
        pass  # trained; nothing stays pointed at it
    return Path(uri.removeprefix("sqlite:///"))


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory, _trained_template):
    """A sqlite store in which `train` (smoke, one epoch) registered version 1 of the demo model: per module, a copy
    of the database the session trained once (what a module adds stays in its copy; the run's artifacts, written
    once by that training, are read where it wrote them)."""
    import sqlite3
    from contextlib import closing

    import mlflow

    path = tmp_path_factory.mktemp("trained") / "mlflow.db"
    with closing(sqlite3.connect(_trained_template)) as src, closing(sqlite3.connect(path)) as dst:
        src.backup(dst)  # SQLite's own copy of a database
    uri = f"sqlite:///{path}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(None)
        mp.undo()
