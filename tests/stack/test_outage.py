"""Faults injected into the real stack (PostgreSQL, SeaweedFS, the MLflow server on loopback) while a real
training records into it: the server stopped for 40 seconds, stopped until the training is over, PostgreSQL
restarted; and a run recorded offline, published later. No record is lost, none is doubled."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

import mlflow
import pytest

from gfcore.stack import local
from tests.conftest import REPO
from tests.stack.servers import stack_missing

pytestmark = pytest.mark.skipif(bool(stack_missing()) and not os.environ.get("GF_REQUIRE_STACK"),
                                reason=f"needs {' and '.join(stack_missing())}")

SMOKE = ["scenario=smoke", "tracking.system_metrics_interval_s=2"]
MODEL = "demo.local-plant1.yard.ppe"


@pytest.fixture(scope="module")
def stack(stack_pool):
    """The package's stack, shared with the modules before (test_local_stack.py): what they left in it changes
    nothing here (each test looks at its own runs, and the newest version is the candidate)."""
    with stack_pool.shared() as running:
        yield running


@pytest.fixture
def journal_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GF_JOURNAL_DIR", str(tmp_path / "journal"))
    return tmp_path / "journal"


def _stop(stack, service: str) -> None:
    local._stop(stack["stack"], [service])


def _start(stack) -> None:
    local.up(stack["dir"], stack["ports"])  # starts what is not running, nothing else


def _train_in_process(overrides: list[str], at_epoch: int, fault, epoch_s: float = 0.0, paced=lambda: True) -> str:
    """Train here; `fault(run_id)` runs (in a thread) once epoch `at_epoch` has been logged; each epoch takes at
    least `epoch_s` more (the smoke model trains an epoch in a fraction of a second: a real one takes minutes),
    as long as `paced()` is true. The run id."""
    from gfcore.config import compose, to_typed
    from gfcore.jobs.train import train
    from gfcore.tracking.run import OwnedRun, started_runs

    log_metrics, fired = OwnedRun.log_metrics, []

    def hooked(self, metrics, step=None, **kwargs):
        log_metrics(self, metrics, step, **kwargs)
        if epoch_s and step and any(k.startswith("val.") for k in metrics) and paced():
            time.sleep(epoch_s)
        if step == at_epoch and not fired:
            fired.append(threading.Thread(target=fault, args=(self.run_id,), daemon=True))
            fired[0].start()

    mp = pytest.MonkeyPatch()
    mp.setattr(OwnedRun, "log_metrics", hooked)
    try:
        train(to_typed(compose(SMOKE + overrides)))
    finally:
        mp.undo()
    fired[0].join(timeout=300)
    return started_runs()[-1]


def _epochs(client, run_id: str) -> dict[str, list[int]]:
    run = client.get_run(run_id)
    return {k: [m.step for m in client.get_metric_history(run_id, k)] for k in run.data.metrics if k.startswith("val.")}


def _assert_complete(client, run_id: str, epochs: int) -> None:
    """FINISHED, each epoch once per val.* metric, weights in the bucket, registered as candidate."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED", run.data.tags.get("gf.error")
    history = _epochs(client, run_id)
    assert history and all(steps == list(range(1, epochs + 1)) for steps in history.values()), history
    assert {"weights/best.pt", "weights/last.pt"} <= {a.path for a in client.list_artifacts(run_id, "weights")}
    assert client.get_model_version_by_alias(MODEL, "candidate").run_id == run_id


def test_forty_seconds_without_the_server_costs_no_epoch(stack, journal_dir):
    """Epochs are paced to ~3 s (a real training's epochs take minutes) until the server is back; the epochs
    after it run at the smoke set's own pace (no assertion reads their spacing), so the outage falls in the
    middle without minutes of paced epochs after it."""
    outage = {}

    def stop_for_forty_seconds(run_id):
        outage["start"] = time.time()
        _stop(stack, "mlflow")
        time.sleep(40)
        _start(stack)
        outage["end"] = time.time()

    # Paced, the 28 epochs after epoch 2 would take at least 95 s: far more than the outage (40 s stopped, 10-20 s
    # to start again), so it ends before the training does on any machine; once it ended, the rest go unpaced.
    epochs = 30
    run_id = _train_in_process([f"train.epochs={epochs}"], 2, stop_for_forty_seconds, epoch_s=3,
                               paced=lambda: "end" not in outage)
    client = mlflow.MlflowClient()
    _assert_complete(client, run_id, epochs)
    assert outage["end"] < client.get_run(run_id).info.end_time / 1000, "the outage was in the middle"
    # The training never waited on the network: epochs ended during the outage as often as before it.
    ends = [m.timestamp / 1000 for m in client.get_metric_history(run_id, "val.mAP50")]
    gaps = [(b - a, b) for a, b in zip(ends, ends[1:])]
    before = [g for g, t in gaps if t < outage["start"]]
    during = [g for g, t in gaps if outage["start"] + 5 < t < outage["end"]]
    print(f"\nepochs {epochs}, outage {outage['end'] - outage['start']:.0f} s: median epoch {statistics.median(before):.2f} s "
          f"before it, {statistics.median(during):.2f} s during it ({len(during)} epochs)")
    assert len(during) >= 3, "epochs went on during the outage"
    assert statistics.median(during) <= 2 * statistics.median(before), (before, during)
    assert not list(journal_dir.glob("*/entries.jsonl")), "everything was sent: no journal left"


def _cli(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    return {**env, **extra}


def _record(client, run_id: str) -> dict:
    run = client.get_run(run_id)
    return {"status": run.info.status, "params": run.data.params,
            "tags": sorted(k for k in run.data.tags if not k.startswith("mlflow.")),
            "metrics": {k: [m.step for m in client.get_metric_history(run_id, k)] for k in run.data.metrics
                        if not k.startswith("system/")},
            "artifacts": sorted(a.path for folder in ("", "weights", "results", "config")
                                for a in client.list_artifacts(run_id, folder or None))}


def test_server_gone_until_the_end_then_sync_makes_the_run_whole(stack, journal_dir, tmp_path):
    client = mlflow.MlflowClient()
    overrides = ["train.epochs=3", "tracking.drain_timeout_s=5"]
    env = _env(GF_JOURNAL_DIR=str(journal_dir))
    baseline = _cli(["-m", "guardianflow.train", *SMOKE, *overrides], env)
    assert baseline.returncode == 0, baseline.stderr[-3000:]
    reference = client.search_runs([client.get_experiment_by_name("demo/local-plant1/yard").experiment_id],
                                   order_by=["attributes.start_time DESC"], max_results=1)[0].info.run_id

    proc = subprocess.Popen([sys.executable, "-m", "guardianflow.train", *SMOKE, *overrides], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run_id is None:  # the server goes once epoch 1 is on it
        time.sleep(1)
        runs = client.search_runs([client.get_experiment_by_name("demo/local-plant1/yard").experiment_id],
                                  "attributes.status = 'RUNNING'")
        if runs and client.get_metric_history(runs[0].info.run_id, "val.mAP50"):
            run_id = runs[0].info.run_id
    assert run_id, "epoch 1 was logged"
    _stop(stack, "mlflow")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    said = out + err  # Hydra's console log is on stdout
    assert "have not reached the tracking server" in said and f"guardianflow sync --run {run_id}" in said
    kept = journal_dir / run_id
    copy = tmp_path / "journal-copy"
    shutil.copytree(kept, copy)

    _start(stack)
    synced = _cli(["-m", "guardianflow", "sync"], env)
    assert synced.returncode == 0, synced.stderr[-3000:]
    assert run_id in synced.stdout
    _assert_complete(client, run_id, 3)
    after = _record(client, run_id)
    assert after == {**_record(client, reference), "params": after["params"]}
    assert after["params"] == client.get_run(reference).data.params

    shutil.copytree(copy, kept)  # replayed twice: nothing changes
    again = _cli(["-m", "guardianflow", "sync"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _record(client, run_id) == after
    assert [v.run_id for v in client.search_model_versions(f"name='{MODEL}'")].count(run_id) == 1


def test_postgres_restarted_mid_run(stack, journal_dir):
    def restart_postgres(run_id):
        _stop(stack, "postgres")  # the server answers 5xx while its database is away
        time.sleep(10)  # what the run records meanwhile waits in its journal
        _start(stack)

    run_id = _train_in_process(["train.epochs=6"], 2, restart_postgres)
    _assert_complete(mlflow.MlflowClient(), run_id, 6)


def test_offline_run_is_published_by_sync(stack, tmp_path):
    offline = tmp_path / "offline"
    env = _env(GF_OFFLINE="1", GF_OFFLINE_DIR=str(offline))
    trained = _cli(["-m", "guardianflow.train", *SMOKE, "train.epochs=3"], env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "recording offline" in trained.stdout + trained.stderr
    local_client = mlflow.MlflowClient(f"sqlite:///{offline / 'mlflow.db'}")
    offline_run = local_client.search_runs([e.experiment_id for e in local_client.search_experiments()])[0]
    assert offline_run.info.status == "FINISHED" and "gf.offline" in offline_run.data.tags

    synced = _cli(["-m", "guardianflow", "sync"], {k: v for k, v in env.items() if k != "GF_OFFLINE"})
    assert synced.returncode == 0, synced.stdout[-3000:] + synced.stderr[-3000:]
    client = mlflow.MlflowClient()
    published = client.search_runs([client.get_experiment_by_name("demo/local-plant1/yard").experiment_id],
                                   f"tags.`gf.offline.run_id` = '{offline_run.info.run_id}'")
    assert len(published) == 1
    new_id = published[0].info.run_id
    _assert_complete(client, new_id, 3)
    assert published[0].data.params == offline_run.data.params
    old_points = [(m.step, m.timestamp, m.value) for m in local_client.get_metric_history(offline_run.info.run_id,
                                                                                            "val.mAP50")]
    assert [(m.step, m.timestamp, m.value) for m in client.get_metric_history(new_id, "val.mAP50")] == old_points
    assert published[0].info.start_time == offline_run.info.start_time

    again = _cli(["-m", "guardianflow", "sync"], {k: v for k, v in env.items() if k != "GF_OFFLINE"})
    assert again.returncode == 0 and again.stdout.startswith("nothing to send"), again.stdout
