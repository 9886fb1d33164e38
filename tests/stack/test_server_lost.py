"""A real MLflow server (sqlite behind it) that goes away in the middle of a training run recorded without a journal
(`tracking.journal=false`), and comes back: one clear error, the run ended on the next contact.
With the journal (the default) an outage costs nothing: tests/tracking/test_journal.py, tests/stack/test_outage.py."""

from __future__ import annotations

import json
import time

import mlflow
import pytest

from gfcore.core.errors import TrackingError
from tests.stack.servers import running, serve_mlflow, stop


@pytest.fixture
def server(shared_server, monkeypatch):
    """The session's plain server (tests/conftest.py), running; the test stops it and starts it again."""
    state = running(shared_server)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", state["uri"])
    for name in ("MLFLOW_RUN_ID", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    mlflow.set_tracking_uri(state["uri"])
    yield state
    while mlflow.active_run():
        mlflow.end_run("FAILED")
    mlflow.set_tracking_uri(None)


def test_server_lost_mid_run(server, monkeypatch):
    from gfcore.config import compose, to_typed
    from gfcore.jobs.train import train
    from gfcore.tracking import server as tracking_server
    from gfcore.tracking.run import OwnedRun

    log_metrics, killed = OwnedRun.log_metrics, {}

    def log_then_lose_server(self, metrics, step=None):
        log_metrics(self, metrics, step)
        if step == 1 and not killed:  # epoch 1 is on the server; then the server goes away
            stop(server["proc"])
            killed.update(run_id=self.run_id, at=time.monotonic())

    monkeypatch.setattr(OwnedRun, "log_metrics", log_then_lose_server)
    cfg = to_typed(compose(["scenario=smoke", "train.epochs=3", "tracking.system_metrics=false",
                             "tracking.journal=false"]))
    with pytest.raises(TrackingError, match="stopped answering during run") as err:
        train(cfg)
    assert time.monotonic() - killed["at"] < 90, "bounded retries, then one error"
    assert killed["run_id"] in str(err.value) and "stays on the server" in str(err.value)
    assert mlflow.active_run() is None
    pending = json.loads(tracking_server.pending_file().read_text())
    assert {"run_id": killed["run_id"], "status": "FAILED"}.items() <= next(
        e for e in pending if e["run_id"] == killed["run_id"]).items()

    # Down at start: a few quick tries, then one clear error.
    with pytest.raises(TrackingError, match="cannot reach the MLflow tracking server"):
        tracking_server.check_tracking_store(retries=2, timeout_s=1)

    server["proc"] = serve_mlflow(server["root"], server["port"])  # back, same store
    tracking_server.check_tracking_store()  # the next contact ends the run left RUNNING
    run = mlflow.get_run(killed["run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["gf.error"].startswith("the tracking server stopped answering")
    history = mlflow.MlflowClient().get_metric_history(killed["run_id"], "train.box_loss")
    assert [m.step for m in history] == [1], "epoch 1, logged before the server went away, stays"
    assert run.data.params["train.epochs"] == "3"
    left = tracking_server.pending_file()
    assert killed["run_id"] not in {e["run_id"] for e in (json.loads(left.read_text()) if left.exists() else [])}
