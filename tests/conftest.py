"""Shared fixtures: a real temporary sqlite MLflow store per test, one demo-data cache per session."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """One plain MLflow server (sqlite behind it) for the session's modules that stop and start one
    (tests/stack/test_server_lost.py, tests/tracking/test_journal.py) instead of one per test: each start costs
    10-15 s. Each test works in runs and experiments of its own and hands it on running (`servers.running`)."""
    from tests.stack.servers import plain_server

    with plain_server(tmp_path_factory.mktemp("shared-server")) as server:
        yield server


_EMPTY_STORE: dict[str, Path] = {}  # the session's empty MLflow sqlite database, made by MLflow itself


def _copy_sqlite(src: Path, dst: Path) -> None:
    """SQLite's own backup of the database `src` into `dst`."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(src)) as source, closing(sqlite3.connect(dst)) as target:
        source.backup(target)


def _empty_store(tmp_path_factory, dst: Path) -> None:
    """Into `dst`, an empty sqlite tracking store: the tables and Default experiment MLflow creates in a new
    database. MLflow's migrations take 2-5 s per new database; they run once per session, and each store is a copy."""
    import mlflow

    if "db" not in _EMPTY_STORE:
        db = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
        mlflow.MlflowClient(f"sqlite:///{db}").search_experiments()  # what the first use of a new store does
        _EMPTY_STORE["db"] = db
    _copy_sqlite(_EMPTY_STORE["db"], dst)


@pytest.fixture
def mlflow_store(tmp_path: Path, tmp_path_factory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh sqlite tracking store with local artifacts; MLflow's own, not a mock (its empty database is a copy of
    one MLflow made this session: `_empty_store`)."""
    import mlflow

    _empty_store(tmp_path_factory, tmp_path / "mlflow.db")
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


def run_cli(uri: str, *args: str, timeout: int = 600, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`python -m gfcore.cli ARGS` (the `guardianflow` command) from the repo root (or `cwd`: the user's folder,
    where its files go), against `uri`."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    if Path(cwd) != REPO:  # this checkout's code, not whichever is installed
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    for name in ("MLFLOW_RUN_ID", "GF_WORK_DIR", "GF_FILES_SAID"):
        env.pop(name, None)
    if Path(cwd) == REPO:  # run files (Hydra's outputs/) go to a scratch folder, not into the checkout
        env["GF_WORK_DIR"] = tempfile.mkdtemp(prefix="gf-test-work-")
    return subprocess.run([sys.executable, "-m", "gfcore.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


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


_FIRST_VERSION: dict[str, Path] = {}  # the session's sqlite database with version 1 (smoke, one epoch, seed 0)


def _train_smoke(seed: int, extra=()) -> None:
    from gfcore.config import compose, to_typed
    from gfcore.jobs.train import train

    train(to_typed(compose(["scenario=smoke", "train.epochs=1", f"train.seed={seed}", *extra])))


def _copy_first_version(tmp_path_factory, dst: Path) -> None:
    """Into `dst`, a copy of the sqlite database in which `train` (smoke, one epoch, seed 0) registered version 1 of
    the demo model: trained once per session, then copied with SQLite's own backup (the run's artifacts, written
    once by that training, are read where it wrote them; what a store adds stays in that store)."""
    import mlflow

    if "db" not in _FIRST_VERSION:
        db = tmp_path_factory.mktemp("first-version") / "mlflow.db"
        _empty_store(tmp_path_factory, db)
        mp = pytest.MonkeyPatch()
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(f"sqlite:///{db}")
        try:
            _train_smoke(0)
        finally:
            mlflow.set_tracking_uri(None)
            mp.undo()
        _FIRST_VERSION["db"] = db
    _copy_sqlite(_FIRST_VERSION["db"], dst)


@contextmanager
def smoke_versions(tmp_path_factory, label: str, seeds=(0,), promote_first: bool = False, later=()):
    """A sqlite store in which `train` (smoke, one epoch) registered one version of the demo model per seed; with
    `promote_first` the first becomes champion, so the next is a candidate against it. `later`: overrides for the
    versions after the first (what their logged scenario carries). A first version of seed 0 is the session's one
    (`_copy_first_version`): the same training, done once."""
    import mlflow

    from gfcore.registry import lifecycle

    path = tmp_path_factory.mktemp(label)
    uri = f"sqlite:///{path / 'mlflow.db'}"
    copied = seeds[0] == 0
    if copied:
        _copy_first_version(tmp_path_factory, path / "mlflow.db")
    else:
        _empty_store(tmp_path_factory, path / "mlflow.db")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    try:
        for n, seed in enumerate(seeds):
            if not (n == 0 and copied):
                _train_smoke(seed, list(later) if n else [])
            if promote_first and n == 0:
                lifecycle.promote("demo.local-plant1.yard.ppe")
        yield uri
    finally:
        mlflow.set_tracking_uri(None)
        mp.undo()


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory):
    """A sqlite store in which `train` (smoke, one epoch) registered version 1 of the demo model (per module, a copy
    of the session's one: see `smoke_versions`)."""
    with smoke_versions(tmp_path_factory, "trained") as uri:
        yield uri
