"""The stack as real processes on loopback (PostgreSQL, SeaweedFS, the MLflow server), started and stopped by the
package (tests/stack/conftest.py): a smoke train and a promote against it, where its data lands, the Grafana
queries, and the fault cases."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from pathlib import Path

import mlflow
import pytest

from gfcore.core.errors import ConfigError, TrackingError
from tests.conftest import REPO
from tests.stack.servers import free_port, spawn_mlflow, stack_missing, stop, wait_healthy

# CI (GF_REQUIRE_STACK=1) installs every part, so there a missing part fails instead of skipping.
pytestmark = pytest.mark.skipif(bool(stack_missing()) and not os.environ.get("GF_REQUIRE_STACK"),
                                reason=f"needs {' and '.join(stack_missing())}")


@pytest.fixture(scope="module")
def stack(stack_pool):
    """A stack no module wrote into before (the dashboard's panels are counted below): the package's shared one
    when this module is the first to use it (as in a plain `pytest` run), else one of its own."""
    with stack_pool.fresh() as running:
        yield running


def _pg(stack, user="gfadmin", password_key="POSTGRES_PASSWORD"):
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=stack["ports"]["postgres"], user=user,
                           password=stack["secrets"][password_key], dbname="mlflow", autocommit=True)


def test_train_promote_and_where_it_lands(stack):
    import boto3
    import pandas as pd

    from gfcore.config import compose, to_typed
    from gfcore.data.dataset import resolve_dataset
    from gfcore.jobs.train import train
    from gfcore.registry.lifecycle import promote
    from gfcore.registry.pyfunc import encode_image

    cfg = to_typed(compose(["scenario=smoke", "train.epochs=1", "tracking.system_metrics=false"]))
    train(cfg)
    [run] = mlflow.search_runs(experiment_names=["demo/local-plant1/yard"], output_format="list")
    assert run.info.status == "FINISHED"
    promote("demo.local-plant1.yard.ppe")

    with _pg(stack) as conn:  # the run's metadata is in PostgreSQL
        assert conn.execute("select status from runs where run_uuid = %s", (run.info.run_id,)).fetchone() == \
            ("FINISHED",)
        assert conn.execute("select count(*) from metrics where run_uuid = %s", (run.info.run_id,)).fetchone()[0] > 0
    # A session of its own: the default session keeps the keys it first read (another stack's, in a test run).
    s3 = boto3.session.Session().client("s3", endpoint_url=stack["env"]["MLFLOW_S3_ENDPOINT_URL"],
                                        region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mlflow", MaxKeys=1000).get("Contents", [])]
    assert any(k.endswith(f"{run.info.run_id}/artifacts/weights/best.pt") for k in keys)
    image = sorted(resolve_dataset(cfg.data, cfg.task).splits["test"][0].glob("*.png"))[0]
    champion = mlflow.pyfunc.load_model("models:/demo.local-plant1.yard.ppe@champion")  # through the server
    out = champion.predict(pd.DataFrame({"image": [encode_image(image)]}), params={"conf": 0.0001})
    assert list(out.columns)[:2] == ["image", "class_id"]


def test_every_dashboard_query_returns_rows(stack, monkeypatch):
    from gfcore.config import compose, to_typed
    from gfcore.jobs.infer import infer
    from gfcore.jobs.train import train
    from gfcore.yolo import training

    # A benchmark of the champion through the server (latency by backend and precision) ...
    infer(to_typed(compose(["scenario=smoke", "infer.model_uri=models:/demo.local-plant1.yard.ppe@champion",
                            "infer.batch_sizes=[1]", "latency.runs=5", "infer.tracking.enabled=false",
                            "tracking.system_metrics=false"])))

    # ... and a training that fails inside its run (the failed-runs panel).
    def failing_fit(model, args):
        raise RuntimeError("an injected failure")

    monkeypatch.setattr(training, "_fit", failing_fit)
    with pytest.raises(RuntimeError, match="an injected failure"):
        train(to_typed(compose(["scenario=smoke", "tracking.system_metrics=false"])))

    dashboard = json.loads((REPO / "compose" / "grafana" / "dashboards" / "guardianflow.json").read_text())
    with _pg(stack, "grafana_ro", "GRAFANA_DB_PASSWORD") as conn:
        results = {panel["title"]: conn.execute(panel["targets"][0]["rawSql"]).fetchall()
                   for panel in dashboard["panels"]}
        with pytest.raises(Exception, match="permission denied"):  # read-only
            conn.execute("delete from runs")
    assert all(results.values()), [title for title, rows in results.items() if not rows]
    [failed] = results["Failed and killed runs"]
    assert failed[4] == "FAILED" and "an injected failure" in failed[5]
    [(variant, mean, best, runs)] = results["Batch-1 latency p50 by backend and precision (ms)"]
    assert variant == "pytorch_fp32" and mean >= best > 0 and runs == 2  # the train run measured it, then infer
    [site_model] = results["Site models: champion, figures, latency, candidate, runs (30 days)"]
    assert site_model[:4] == ("demo/local-plant1/yard", "ppe", "demo.local-plant1.yard.ppe", "1")


def _panel_rows(stack, title: str) -> list[dict]:
    dashboard = json.loads((REPO / "compose" / "grafana" / "dashboards" / "guardianflow.json").read_text())
    [panel] = [p for p in dashboard["panels"] if p["title"].startswith(title)]
    with _pg(stack, "grafana_ro", "GRAFANA_DB_PASSWORD") as conn:
        cursor = conn.execute(panel["targets"][0]["rawSql"])
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (x is None and y is None) or (isinstance(x, float) and isinstance(y, (int, float))
                                      and y == pytest.approx(x, rel=1e-9, abs=0.002)) or x == y
        for x, y in ((a[k], b[k]) for k in a))


def test_grafana_panels_equal_the_fleet_commands(stack, capsys):
    """The panels' SQL, run as grafana_ro on the stack's PostgreSQL, gives what `guardianflow metrics summary
    --json`, `trend --json` and `compare --by backend --latency --json` print for the same store."""
    from datetime import datetime, timezone

    from gfcore import cli
    from gfcore.registry.lifecycle import promote
    from tests.fleet.seed import seed

    seed(mlflow.MlflowClient())  # two more sites: candidates on and off the champion's basis, a variant, tracking
    promote("acme.r-p1.gate.ppe", version="2")  # a promotion (gf.promoted_at), the old champion to rollback
    capsys.readouterr()  # MLflow's "View run ..." lines of the seeding

    def command(*args):
        assert cli.main(["metrics", *args, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    summary = command("summary")
    panel = _panel_rows(stack, "Site models")
    key = lambda r: (r["site"], r["task"] or "", r["model"] or "")  # noqa: E731
    assert {("acme/r-p1/gate", "ppe", "acme.r-p1.gate.ppe"), ("beta/r-p1/dock", "fire", "")} <= set(map(key, summary))
    assert sorted(map(key, panel)) == sorted(map(key, summary))
    for want, got in zip(sorted(summary, key=key), sorted(panel, key=key)):
        assert _same(want, got), (want, got)
    acme = next(r for r in panel if r["model"] == "acme.r-p1.gate.ppe")
    assert (acme["champion"], acme["deployed"], acme["hota"]) == ("2", "__openvino_int8", 0.7)

    trend = command("trend", "--metric", "det.mAP50", "--days", "90")
    points = {(r["metric"], r["time"].astimezone(timezone.utc).date().isoformat()): r["det.mAP50"]
              for r in _panel_rows(stack, "det.mAP50 per site")}
    assert points == pytest.approx({(f"{r['site']} {r['task']}", r["day"]): r["det.mAP50"] for r in trend})
    assert len(points) >= 8

    latency = command("compare", "--by", "backend", "--latency")
    bars = _panel_rows(stack, "Batch-1 latency")
    assert [{"backend": r["backend"], "mean": r["mean"], "best": r["best"], "count": r["count"]} for r in bars] == \
        [pytest.approx(r) for r in latency] and "openvino_int8" in {r["backend"] for r in bars}

    failed = _panel_rows(stack, "Failed and killed")
    for row in summary:
        recent = [f for f in failed if (f["site"], f["task"] or None) == (row["site"], row["task"]) and
                  f["status"] == "FAILED" and (datetime.now(timezone.utc) - f["time"]).days < 30]
        assert len(recent) == row["failed_runs"], row


def test_fault_cases(stack, monkeypatch):
    from gfcore.stack import local
    from gfcore.tracking.server import check_tracking_store

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    with pytest.raises(TrackingError, match="rejected the credentials"):
        check_tracking_store()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    mlflow.set_tracking_uri(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TrackingError, match="cannot reach the MLflow tracking server"):
        check_tracking_store(retries=2, timeout_s=1)
    mlflow.set_tracking_uri(stack["env"]["MLFLOW_TRACKING_URI"])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ConfigError, match=f"port {busy.getsockname()[1]} \\(mlflow\\) is already in use"):
            local.up(stack["dir"].parent / "other", {**{k: free_port() for k in local.PORTS},
                                                     "mlflow": busy.getsockname()[1]})
    if os.geteuid() == 0:  # PostgreSQL then runs as `postgres`, which must reach the folder
        private = Path(tempfile.mkdtemp(dir="/tmp"))  # mode 0700
        with pytest.raises(ConfigError, match=f"cannot enter {private}"):
            local.up(private / "stack", {k: free_port() for k in local.PORTS})
        assert not list(private.glob("stack/postgres/*")), "nothing started"
        shutil.rmtree(private)


def test_wrong_s3_credentials_or_missing_bucket_said_at_start(stack, tmp_path, monkeypatch):
    """Servers whose artifact store is the stack's S3 gateway, one with a wrong key, one with a missing bucket."""
    from gfcore.tracking.server import check_tracking_store

    s3 = {"MLFLOW_S3_ENDPOINT_URL": stack["env"]["MLFLOW_S3_ENDPOINT_URL"], "AWS_ACCESS_KEY_ID":
          stack["env"]["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": stack["env"]["AWS_SECRET_ACCESS_KEY"]}
    cases = {"wrong key": ("s3://mlflow", {**s3, "AWS_SECRET_ACCESS_KEY": "not-the-key"}),
             "no bucket": ("s3://no-such-bucket", s3)}
    servers = {name: (free_port(), dest, env) for name, (dest, env) in cases.items()}
    procs = [spawn_mlflow(tmp_path, port, dest, env) for port, dest, env in servers.values()]  # both at once
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")  # these servers have no auth
    try:
        for proc, (port, _, _) in zip(procs, servers.values()):
            wait_healthy(proc, tmp_path, port)
        for port, _, _ in servers.values():
            mlflow.set_tracking_uri(f"http://127.0.0.1:{port}")
            with pytest.raises(TrackingError, match="cannot reach its artifact store"):
                check_tracking_store()
    finally:
        for proc in procs:
            stop(proc)
        mlflow.set_tracking_uri(stack["env"]["MLFLOW_TRACKING_URI"])


def test_status_down_and_up_again_keeps_data(stack):
    from gfcore.stack import local

    rows = {r["service"]: r for r in local.status(stack["dir"])}
    assert {r["state"] for r in rows.values()} == {"running"}
    assert rows["mlflow"]["address"] == stack["env"]["MLFLOW_TRACKING_URI"]
    assert local.up(stack["dir"]) == stack["env"], "already up: same ports and secrets, nothing restarted"
    assert local.status(stack["dir"]) == list(rows.values())

    before = {r.info.run_id for r in mlflow.search_runs(experiment_names=["demo/local-plant1/yard"],
                                                        output_format="list")}
    local.down(stack["dir"])
    assert {r["state"] for r in local.status(stack["dir"])} == {"stopped"}
    assert (stack["dir"] / "postgres" / "PG_VERSION").is_file() and (stack["dir"] / "seaweedfs").is_dir()
    assert local.up(stack["dir"]) == stack["env"]  # same folder: same ports, secrets and data
    after = {r.info.run_id for r in mlflow.search_runs(experiment_names=["demo/local-plant1/yard"],
                                                       output_format="list")}
    assert before and after == before
    info = mlflow.models.get_model_info("models:/demo.local-plant1.yard.ppe@champion")  # its MLmodel, from S3
    assert info.flavors["python_function"]
