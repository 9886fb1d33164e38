"""Plain processes on 127.0.0.1: free ports, waiting for a port or an HTTP endpoint, starting a service in its
own session with a pid file, and stopping its process group. Nothing here knows which service it is."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from gfcore.core.errors import TrackingError


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_port(port: int, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TrackingError(f"{what} did not answer on 127.0.0.1:{port} within {timeout:.0f} s; see {log}.")


def alive(pid: int) -> bool:
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False  # exited, not yet reaped by whoever started it
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_http(url: str, what: str, log: Path, timeout: float = 90) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TrackingError(f"{what} did not answer at {url} within {timeout:.0f} s; see {log}.")


def spawn(cmd: list[str], env: dict[str, str], log: Path, pidfile: Path, cwd: Path) -> None:
    """Start `cmd` in a session of its own (so its whole group can be stopped), output into `log`."""
    with log.open("a") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    pidfile.write_text(str(proc.pid))


def stop_pid(pidfile: Path, timeout: float = 4) -> None:
    """SIGTERM the process group, SIGKILL after `timeout` (SeaweedFS takes ~25 s to stop gracefully; what it
    has written is on disk either way)."""
    if not pidfile.is_file():
        return
    pid = int(pidfile.read_text())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.2)
        if not alive(pid):
            break
    pidfile.unlink(missing_ok=True)
