"""Talking to the tracking store: reachable, credentials accepted, artifact store usable, bounded retries.

A run whose server went away mid-run cannot be ended there: it is remembered in a small local file and
ended (FAILED or KILLED, with the reason) the next time GuardianFlow reaches that server, so no run is
left RUNNING for good and nothing logged before is touched.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from unittest import mock

from gfcore.core.errors import TrackingError
from gfcore.core.paths import cache_dir
from gfcore.core.vocabulary import ERROR_TAG, MAX_TAG_VALUE
from gfcore.tracking.health import answers  # noqa: F401  (the probe, for callers of this module)

log = logging.getLogger(__name__)

# MLflow's client retries a dead server for about four minutes per call (7 retries, backoff factor 2).
# GuardianFlow gives up after about ten seconds and says so, unless these variables are set already.
RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def bound_retries() -> None:
    for name, value in RETRY_DEFAULTS.items():
        os.environ.setdefault(name, value)


def check_tracking_store(retries: int = 3, timeout_s: float = 3.0) -> str:
    """Fail fast, with what to do, when the tracking store cannot be reached or used; return its URI.

    A server must answer /health, accept the credentials (MLFLOW_TRACKING_USERNAME / PASSWORD) and reach
    its artifact store, all said before any work. Runs a lost server left RUNNING are ended here."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    if is_server(uri):
        bound_retries()
        _wait_for_health(uri, retries, timeout_s)
        _check_server_access(uri, timeout_s)
        settle_pending(uri)
        from gfcore.tracking.journal.sync import sync_quietly

        sync_quietly(uri)  # what runs left in their journals while this server was away
        return uri
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        if not db.parent.is_dir():
            raise TrackingError(f"the tracking store {uri} is in a folder that does not exist ({db.parent}): "
                                "create it or point MLFLOW_TRACKING_URI elsewhere.")
    return uri


def _wait_for_health(uri: str, retries: int, timeout_s: float) -> None:
    import requests

    last: Exception | None = None
    for attempt in range(retries):
        try:
            resp = requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_s)
            if resp.status_code < 500:
                return
            last = RuntimeError(f"HTTP {resp.status_code}")
        except requests.RequestException as exc:
            last = exc
        if attempt + 1 < retries:
            time.sleep(min(2.0, 0.5 * 2**attempt))
    raise TrackingError(
        f"cannot reach the MLflow tracking server at {uri} (MLFLOW_TRACKING_URI) after {retries} tries: "
        f"{short(last)}. Start the server (`guardianflow stack up` or docker compose), fix MLFLOW_TRACKING_URI, "
        "or unset it to use the local store sqlite:///mlflow.db."
    )


def _auth() -> tuple[str, str] | None:
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    return (user, password) if user and password else None


def _check_server_access(uri: str, timeout_s: float) -> None:
    """The server answers: are our credentials accepted, and can it store artifacts?"""
    import requests

    try:
        _check_credentials_and_artifacts(uri, max(timeout_s, 30))  # a cold server's first queries can be slow
    except requests.RequestException as exc:
        raise TrackingError(f"the tracking server at {uri} answers /health but not its API ({short(exc)}): "
                            "see the server's log.") from exc


def _check_credentials_and_artifacts(uri: str, timeout_s: float) -> None:
    import requests

    auth, base = _auth(), uri.rstrip("/")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    resp = requests.get(f"{base}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, auth=auth,
                        timeout=timeout_s)
    if resp.status_code == 401:
        raise TrackingError(f"the tracking server at {uri} rejected the credentials "
                            f"({'MLFLOW_TRACKING_USERNAME=' + user if user else 'none given'}): set "
                            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account of the server.")
    if resp.status_code == 403:
        raise TrackingError(f"the account {user} may not read experiments on {uri}: ask an admin for permission.")
    # A server that serves artifacts proxies them to its store: a wrong S3 key or a missing bucket shows here.
    art = requests.get(f"{base}/api/2.0/mlflow-artifacts/artifacts", params={"path": ""}, auth=auth,
                       timeout=timeout_s)
    try:
        message = art.json().get("message", "") if art.status_code != 200 else ""
    except ValueError:
        message = art.text.strip()[:300] if art.status_code >= 500 else ""
    # MLflow answers 401 (wrong S3 key), 404 (no bucket) or 500 with "Failed to list artifacts in s3://...".
    if message.startswith("Failed to list artifacts") or art.status_code >= 500:
        detail = message.splitlines()[0][:300] if message else f"HTTP {art.status_code}"
        raise TrackingError(f"the tracking server at {uri} cannot reach its artifact store ({detail}): check the "
                            "server's S3 credentials and that its bucket exists (`guardianflow stack status`).")


# -- runs a lost server left RUNNING -------------------------------------------------------------------------

def pending_file() -> Path:
    return cache_dir() / "pending_run_status.json"


def _load_pending() -> list[dict]:
    try:
        return json.loads(pending_file().read_text())
    except (OSError, ValueError):
        return []


def _save_pending(entries: list[dict]) -> None:
    path = pending_file()
    if not entries:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    tmp.replace(path)


def remember(uri: str, run_id: str, status: str, reason: str) -> None:
    """The server is gone: end this run there as soon as it answers again."""
    entries = [e for e in _load_pending() if e["run_id"] != run_id]
    entries.append({"uri": uri, "run_id": run_id, "status": status, "reason": reason,
                    "end_time_ms": int(time.time() * 1000)})
    _save_pending(entries)


def settle_pending(uri: str) -> list[str]:
    """End the remembered runs of this server that are still RUNNING; the ids settled."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    entries = _load_pending()
    mine = [e for e in entries if e["uri"] == uri]
    if not mine:
        return []
    client, settled = MlflowClient(uri), []
    for entry in mine:
        try:
            if client.get_run(entry["run_id"]).info.status == "RUNNING":
                client.set_tag(entry["run_id"], ERROR_TAG, entry["reason"][:MAX_TAG_VALUE])
                client.set_terminated(entry["run_id"], entry["status"], end_time=entry["end_time_ms"])
                log.warning("run %s, left RUNNING when the server went away, is now %s", entry["run_id"],
                            entry["status"])
            settled.append(entry["run_id"])
        except MlflowException as exc:
            if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                settled.append(entry["run_id"])  # deleted meanwhile: nothing to end
            else:
                log.warning("could not end run %s yet: %s", entry["run_id"], short(exc))
    _save_pending([e for e in _load_pending() if e["run_id"] not in settled])
    return settled


def no_retries(timeout_s: int = 5):
    """MLflow calls that fail at once: for a server already known to be gone (restored on exit)."""
    return mock.patch.dict(os.environ, {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                                        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)})


def is_connection_failure(exc: BaseException) -> bool:
    """An MLflow or HTTP error anywhere in the chain (what a vanished server raises)."""
    import requests
    from mlflow.exceptions import MlflowException

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (MlflowException, requests.RequestException)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def short(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else "unknown error"
    return text.splitlines()[0][:300] if text else type(exc).__name__
