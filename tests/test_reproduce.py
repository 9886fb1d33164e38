"""`guardianflow reproduce`, `guardianflow run`, and `mlflow run` from a git URL at a fixed version."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from tests.conftest import REPO, run_cli, runs_of


def test_reproduce_a_train_run(trained_store, tmp_path):
    [original] = [r for r in runs_of(trained_store) if r.data.tags["exp.type"] == "train"]
    mlflow.MlflowClient().set_tag(original.info.run_id, "gf.code_version", "0ld")
    proc = run_cli(trained_store, "reproduce", original.info.run_id, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"run {original.info.run_id} ran with code version 0ld" in proc.stderr
    said = [line.split(" ", 1)[1] for line in proc.stderr.splitlines() if line.startswith("files: ")]
    assert len(said) == 1 and said[0].startswith(str(tmp_path.resolve() / "outputs")), proc.stderr[-3000:]
    assert (Path(said[0]) / "ultralytics" / "train" / "results.csv").is_file()
    again = [r for r in runs_of(trained_store) if r.data.tags.get("gf.reproduced_from") == original.info.run_id]
    assert len(again) == 1 and again[0].info.status == "FINISHED"
    ignore = {"tracking.system_metrics_interval_s"}
    assert {k: v for k, v in again[0].data.params.items() if k not in ignore} == \
        {k: v for k, v in original.data.params.items() if k not in ignore}


def test_reproduce_refuses_what_it_cannot_rerun(trained_store):
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("demo/local-plant1/yard").experiment_id
    bare = client.create_run(exp, tags={"exp.type": "train"}).info.run_id
    client.set_terminated(bare, "FINISHED")
    before = len(runs_of(trained_store))
    proc = run_cli(trained_store, "reproduce", bare)
    assert proc.returncode == 2 and "has no logged config (config/resolved.yaml)" in proc.stderr
    proc = run_cli(trained_store, "reproduce", "0123456789abcdef")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert len(runs_of(trained_store)) == before


def _checkout_state() -> list[str]:
    """`git status` of the checkout, ignored files each on its own line (bytecode left out: any import writes it)."""
    out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "__pycache__/" not in line]


def test_run_files_the_run_under_the_site_and_its_files_where_the_user_is(mlflow_store, tmp_path):
    """Started in another folder, `guardianflow run train` (its entry point runs in the checkout, under `mlflow run`)
    writes its outputs into that folder, says where, and leaves the checkout as it was."""
    git = (REPO / ".git").exists() and shutil.which("git") is not None
    before = _checkout_state() if git else []
    user = tmp_path / "elsewhere"
    user.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store}
    for name in ("MLFLOW_RUN_ID", "GF_WORK_DIR", "GF_FILES_SAID"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "gfcore.cli", "run", "train", "scenario=smoke",
                           "train.epochs=1 registry.register=false", "site.zone=gate"], cwd=user, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = runs_of(mlflow_store, "demo/local-plant1/gate")
    assert run.info.run_id == proc.stdout.strip().splitlines()[-1]
    assert run.data.tags["mlflow.project.entryPoint"] == "train" and run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "1"
    assert f"train run {run.info.run_name} ({run.info.run_id}) finished" in proc.stderr
    said = [line.split(" ", 1)[1] for line in proc.stderr.splitlines() if line.startswith("files: ")]
    assert len(said) == 1 and said[0].startswith(str(user.resolve() / "outputs")), proc.stderr[-3000:]
    assert (Path(said[0]) / "ultralytics" / "train" / "results.csv").is_file()
    if git:
        changed = sorted(set(_checkout_state()) ^ set(before))
        assert not changed, changed[:20]
    proc = run_cli(mlflow_store, "run", "deploy", "scenario=smoke")
    assert proc.returncode == 2 and "unknown entry point 'deploy'" in proc.stderr


@pytest.fixture
def git_daemon(tmp_path):
    """This repository's HEAD as a bare repo served over git:// on loopback."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs this project as a git checkout and the git command")
    root = tmp_path / "git"
    root.mkdir()
    subprocess.run(["git", "clone", "--quiet", "--bare", str(REPO), str(root / "guardianflow.git")], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={root}",
                               "--listen=127.0.0.1", f"--port={port}", str(root)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    yield f"git://127.0.0.1:{port}/guardianflow.git", head
    daemon.terminate()
    daemon.wait(timeout=10)


def test_mlflow_run_from_a_git_url_at_a_version(mlflow_store, git_daemon, tmp_path):
    url, head = git_daemon
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store}
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", url, "--version", head, "-e", "train", "--env-manager", "local",
         "-P", "scenario=smoke", "-P", f"overrides=train.epochs=1 registry.register=false hydra.run.dir={tmp_path}/o",
         "--experiment-name", "demo/local-plant1/yard"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = runs_of(mlflow_store)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.source.git.commit"] == head
    assert run.data.tags["mlflow.source.name"] == url
