"""The run journal against a real MLflow server on loopback (sqlite behind it) that the tests stop and start:
an outage loses nothing, `guardianflow sync` sends what is left, twice changes nothing, and bad journals are
named and kept."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import mlflow
import pytest

from gfcore.cli import main
from gfcore.tracking import journal
from gfcore.tracking.journal.store import Journal
from tests.stack.servers import running, serve_mlflow, stop


@pytest.fixture
def server(shared_server, tmp_path, monkeypatch):
    """The session's plain server (tests/conftest.py), running; each test stops it and starts it again on the same
    port and store (`serve_mlflow(server["root"], server["port"])`), in an experiment of its own."""
    state = running(shared_server)
    uri = state["uri"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("GF_JOURNAL_DIR", str(tmp_path / "journal"))
    for name in ("MLFLOW_RUN_ID", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    # What check_tracking_store sets for every GuardianFlow process: a few quick retries, not four minutes.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    mlflow.set_tracking_uri(uri)
    yield state
    mlflow.set_tracking_uri(None)


def _journaled_run(uri: str) -> tuple[str, Journal]:
    client = mlflow.MlflowClient()
    exp = client.create_experiment(f"journal-{time.monotonic_ns()}")
    run_id = client.create_run(exp).info.run_id
    return run_id, journal.begin(run_id, uri, exp)


def _log_epochs(run_id: str, epochs: range) -> None:
    for epoch in epochs:
        mlflow.MlflowClient().log_batch(run_id, metrics=[
            mlflow.entities.Metric("val.mAP50", epoch / 10, 1_700_000_000_000 + epoch, epoch),
            mlflow.entities.Metric("train.box_loss", 1 / epoch, 1_700_000_000_000 + epoch, epoch)])


def _snapshot(run_id: str) -> dict:
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    return {"status": run.info.status, "params": run.data.params, "tags": run.data.tags,
            "points": {k: [(m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, k)]
                       for k in run.data.metrics},
            "artifacts": sorted(a.path for a in client.list_artifacts(run_id, "notes"))}


def test_outage_then_sync_sends_everything_once(server, tmp_path, capsys):
    run_id, kept = _journaled_run(server["uri"])
    mlflow.MlflowClient().log_param(run_id, "train.epochs", "6")
    _log_epochs(run_id, range(1, 4))
    stop(server["proc"])  # the server goes away mid-run: the work goes on, into the journal
    _log_epochs(run_id, range(4, 7))
    note = tmp_path / "note.txt"
    note.write_text("written during the outage")
    mlflow.MlflowClient().log_artifact(run_id, str(note), "notes")
    note.write_text("changed after logging: the journal kept the logged content")
    mlflow.MlflowClient().set_tag(run_id, "gf.note", "outage")
    mlflow.MlflowClient().set_terminated(run_id, "FINISHED")
    assert journal.finish(run_id, timeout_s=3) > 0, "the server is down: records stay pending"
    saved = tmp_path / "journal-copy"
    shutil.copytree(kept.dir, saved)

    server["proc"] = serve_mlflow(server["root"], server["port"])  # back, same store
    assert main(["sync", "--run", run_id]) == 0
    assert "sent" in capsys.readouterr().out
    first = _snapshot(run_id)
    assert first["status"] == "FINISHED" and first["tags"]["gf.note"] == "outage"
    assert [s for s, _, _ in first["points"]["val.mAP50"]] == [1, 2, 3, 4, 5, 6], "each epoch once, in order"
    assert first["artifacts"] == ["notes/note.txt"]
    client = mlflow.MlflowClient()
    assert "written during the outage" in open(client.download_artifacts(run_id, "notes/note.txt",
                                                                          str(tmp_path))).read()
    assert not kept.dir.exists(), "a journal sent in full is removed"

    shutil.copytree(saved, kept.dir)  # the same journal replayed a second time changes nothing
    assert main(["sync"]) == 0
    assert _snapshot(run_id) == first

    capsys.readouterr()
    assert main(["sync"]) == 0
    assert capsys.readouterr().out.startswith("nothing to send")


def test_damaged_entry_is_named_and_kept_the_rest_is_sent(server, capsys):
    run_id, kept = _journaled_run(server["uri"])
    stop(server["proc"])
    _log_epochs(run_id, range(1, 4))
    mlflow.MlflowClient().set_terminated(run_id, "FINISHED")
    journal.finish(run_id, timeout_s=1)
    lines = (kept.dir / "entries.jsonl").read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"value":0.2', '"value":0.9')  # epoch 2, altered on disk: its checksum fails
    (kept.dir / "entries.jsonl").write_text("".join(lines))

    server["proc"] = serve_mlflow(server["root"], server["port"])
    assert main(["sync"]) == 0
    out = capsys.readouterr()
    assert "entry 2: its checksum does not match" in out.out and "rejected.jsonl" in out.out
    history = mlflow.MlflowClient().get_metric_history(run_id, "val.mAP50")
    assert [m.step for m in history] == [1, 3], "the damaged epoch is not guessed at; the rest is sent"
    assert mlflow.get_run(run_id).info.status == "FINISHED"
    rejected = Journal(kept.dir).rejected()
    assert [r["line"] for r in rejected] == [2] and '"value":0.9' in rejected[0]["text"]


def test_busy_and_deleted_runs_are_clear_errors_and_stay(server, tmp_path, capsys):
    run_id, kept = _journaled_run(server["uri"])
    _log_epochs(run_id, range(1, 2))
    stop(server["proc"])
    _log_epochs(run_id, range(2, 3))
    journal.finish(run_id, timeout_s=1)
    server["proc"] = serve_mlflow(server["root"], server["port"])

    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); "
        "os.write(fd, str(os.getpid()).encode()); print('held', flush=True); time.sleep(60)"),
        str(kept.dir / "lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["sync"]) == 1
        assert f"being sent by process {holder.pid}" in capsys.readouterr().out
    finally:
        holder.kill()
        holder.wait()

    mlflow.MlflowClient().delete_run(run_id)
    assert main(["sync"]) == 1
    out = capsys.readouterr().out
    assert "was deleted" in out and str(kept.dir) in out
    assert kept.pending_count() == 1, "nothing is dropped: the journal stays"


def test_nothing_pending_is_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GF_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("GF_OFFLINE_DIR", str(tmp_path / "offline"))
    assert main(["sync", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to send: every run's records are on its server"
