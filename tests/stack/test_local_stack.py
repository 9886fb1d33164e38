"""The stack as real processes on loopback (PostgreSQL, SeaweedFS, the MLflow server), started and stopped by the
package (tests/stack/conftest.py): a smoke train and a promote against it, where its data lands, the Grafana
queries, and the fault cases."""

from __future__ import annotations

import json
import os
import re
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

    # ... and an alert evaluation (the open-alerts panel: that failure is one).
    from gfcore import cli

    assert cli.main(["alerts", "list", "--json"]) == 0

    dashboard = _dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"customer", "task"}
    assert all(v["includeAll"] and v["multi"] and v["allValue"] == ALL_VALUE for v in variables.values())
    with _pg(stack, "grafana_ro", "GRAFANA_DB_PASSWORD") as conn:
        for panel in dashboard["panels"]:  # every panel follows both variables
            assert {"$customer", "$task"} <= set(re.findall(r"\$\w+", panel["targets"][0]["rawSql"])), panel["title"]
        results = {panel["title"]: conn.execute(_interpolate(panel["targets"][0]["rawSql"])).fetchall()
                   for panel in dashboard["panels"]}
        options = {name: [r[0] for r in conn.execute(v["query"]).fetchall()] for name, v in variables.items()}
        with pytest.raises(Exception, match="permission denied"):  # read-only
            conn.execute("delete from runs")
    assert options == {"customer": ["demo"], "task": ["ppe"]}
    assert all(results.values()), [title for title, rows in results.items() if not rows]
    [failed] = results["Failed and killed runs"]
    assert failed[4] == "FAILED" and "an injected failure" in failed[5]
    [(variant, mean, best, runs)] = results["Batch-1 latency p50 by backend and precision (ms)"]
    assert variant == "pytorch_fp32" and mean >= best > 0 and runs == 2  # the train run measured it, then infer
    [site_model] = results["Site models: champion, figures, latency, candidate, runs (30 days)"]
    assert site_model[:4] == ("demo/local-plant1/yard", "ppe", "demo.local-plant1.yard.ppe", "1")
    assert any(a[1] == "failed_runs" and a[2] == "demo/local-plant1/yard" for a in results["Open alerts (newest evaluation)"])
    [(arch, map50, _, map_runs, p50, _, p50_runs)] = results["Architectures: det.mAP50 and batch-1 latency p50"]
    assert arch == "yolov8n" and 0 <= map50 <= 1 and p50 > 0 and map_runs == p50_runs == 2


ALL_VALUE = "'__all__'"  # the variables' custom All value, which Grafana puts in verbatim


def _dashboard() -> dict:
    return json.loads((REPO / "compose" / "grafana" / "dashboards" / "guardianflow.json").read_text())


def _interpolate(sql: str, customer: str | None = None, task: str | None = None) -> str:
    """The SQL as Grafana sends it: a chosen value of a multi-value / include-All variable quoted as a literal (its
    quotes doubled), All as the variable's custom all value, verbatim."""
    chosen = {"customer": customer, "task": task}
    values = {name: v["allValue"] if chosen[name] is None else "'" + chosen[name].replace("'", "''") + "'"
              for name, v in ((v["name"], v) for v in _dashboard()["templating"]["list"])}
    return re.sub(r"\$\{?(customer|task)\}?\b", lambda m: values[m.group(1)], sql)


def _panel_rows(stack, title: str, customer: str | None = None, task: str | None = None) -> list[dict]:
    """The panel's rows for a chosen customer and task (None: All)."""
    [panel] = [p for p in _dashboard()["panels"] if p["title"].startswith(title)]
    with _pg(stack, "grafana_ro", "GRAFANA_DB_PASSWORD") as conn:
        cursor = conn.execute(_interpolate(panel["targets"][0]["rawSql"], customer, task))
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (x is None and y is None) or (isinstance(x, float) and isinstance(y, (int, float))
                                      and y == pytest.approx(x, rel=1e-9, abs=0.002)) or x == y
        for x, y in ((a[k], b[k]) for k in a))


def test_grafana_panels_equal_the_fleet_commands(stack, capsys):
    """The panels' SQL, run as grafana_ro on the stack's PostgreSQL, gives what `guardianflow metrics summary
    --json`, `trend --json`, `compare --by backend --latency --json`, `compare --by architecture [--latency] --json`
    and `alerts list --json` print for the same store: for All and for one customer (and task) chosen."""
    from datetime import datetime, timezone

    from gfcore import cli
    from gfcore.registry.lifecycle import promote
    from tests.fleet.seed import seed

    seed(mlflow.MlflowClient())  # two more sites: candidates on and off the champion's basis, a variant, tracking
    promote("acme.r-p1.gate.ppe", version="2")  # a promotion (gf.promoted_at), the old champion to rollback
    capsys.readouterr()  # MLflow's "View run ..." lines of the seeding

    def command(*args):
        assert cli.main([*args, "--json"]) == 0
        lines = capsys.readouterr().out.splitlines()  # less MLflow's "View run ..." lines of a recorded run
        return json.loads("\n".join(line for line in lines if not line.startswith(("\N{RUNNER}", "\N{TEST TUBE}"))))

    key = lambda r: (r["site"], r["task"] or "", r["model"] or "")  # noqa: E731
    for customer, task in ((None, None), ("acme", None), (None, "fire")):
        chosen = [*(["--customer", customer] if customer else []), *(["--task", task] if task else [])]
        summary = [{k: v for k, v in r.items() if k != "data_newer"}  # read from S3, not in the database
                   for r in command("metrics", "summary", *chosen)]
        panel = _panel_rows(stack, "Site models", customer, task)
        assert summary and sorted(map(key, panel)) == sorted(map(key, summary)), (customer, task)
        for want, got in zip(sorted(summary, key=key), sorted(panel, key=key)):
            assert _same(want, got), (want, got)
        if customer or task:  # only what was chosen
            assert all(r["site"].startswith(f"{customer}/" if customer else "") and r["task"] == (task or r["task"])
                       for r in panel)
        else:
            assert {(r["site"].split("/")[0], r["task"]) for r in panel} >= {("acme", "ppe"), ("beta", "fire"),
                                                                               ("demo", "ppe")}
    acme = next(r for r in _panel_rows(stack, "Site models", "acme") if r["model"] == "acme.r-p1.gate.ppe")
    assert (acme["champion"], acme["deployed"], acme["hota"]) == ("2", "__openvino_int8", 0.7)

    for customer in (None, "acme"):
        chosen = ["--customer", customer] if customer else []
        trend = command("metrics", "trend", "--metric", "det.mAP50", "--days", "90", *chosen)
        points = {(r["metric"], r["time"].astimezone(timezone.utc).date().isoformat()): r["det.mAP50"]
                  for r in _panel_rows(stack, "det.mAP50 per site", customer)}
        assert points == pytest.approx({(f"{r['site']} {r['task']}", r["day"]): r["det.mAP50"] for r in trend})
        assert len(points) >= (8 if customer is None else 3)

        latency = command("metrics", "compare", "--by", "backend", "--latency", *chosen)
        bars = _panel_rows(stack, "Batch-1 latency", customer)
        assert [{"backend": r["backend"], "mean": r["mean"], "best": r["best"], "count": r["count"]} for r in bars] == \
            [pytest.approx(r) for r in latency] and "openvino_int8" in {r["backend"] for r in bars}

        # Architectures: det.mAP50 (best = highest) and batch-1 p50 (best = lowest) side by side.
        accuracy = {r["architecture"]: r for r in command("metrics", "compare", "--by", "architecture", *chosen)}
        speed = {r["architecture"]: r for r in command("metrics", "compare", "--by", "architecture", "--latency",
                                                       *chosen)}
        archs = _panel_rows(stack, "Architectures", customer)
        assert {r["architecture"] for r in archs} == set(accuracy) | set(speed) and accuracy
        for row in archs:
            a, s = accuracy.get(row["architecture"]), speed.get(row["architecture"])
            assert (row["det_mAP50_mean"], row["det_mAP50_best"], row["det_mAP50_runs"]) == (
                pytest.approx((a["mean"], a["best"], a["count"])) if a else (None, None, 0))
            assert (row["latency_p50_ms_mean"], row["latency_p50_ms_best"], row["latency_p50_ms_runs"]) == (
                pytest.approx((s["mean"], s["best"], s["count"])) if s else (None, None, 0))

        failed = _panel_rows(stack, "Failed and killed", customer)
        assert all(f["site"].startswith(f"{customer}/") for f in failed) if customer else failed
        for row in command("metrics", "summary", *chosen):
            recent = [f for f in failed if (f["site"], f["task"] or None) == (row["site"], row["task"]) and
                      f["status"] == "FAILED" and (datetime.now(timezone.utc) - f["time"]).days < 30]
            assert len(recent) == row["failed_runs"], row

    # Open alerts: the newest evaluation's, in its order.
    columns = ("severity", "rule", "site", "task", "model", "version", "message")
    listed = [{c: a[c] for c in columns} for a in command("alerts", "list")["open"]]
    assert {a["site"].split("/")[0] for a in listed} >= {"acme", "beta"}
    for customer, task in ((None, None), ("acme", None), ("beta", "ppe")):
        want = [a for a in listed if (customer is None or a["site"].split("/")[0] == customer)
                and (task is None or a["task"] == task)]
        assert want and _panel_rows(stack, "Open alerts", customer, task) == want, (customer, task)


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
