"""The fleet queries against a real sqlite store seeded through MLflow's own APIs: two sites, champions and
candidates with their version tags, variants, runs over several days, a failed run, and a site without a model."""

from __future__ import annotations

import time

import mlflow
import pandas as pd
import pytest

from gfcore.errors import ConfigError
from gfcore.fleet import queries
from gfcore.fleet.export import export

DAY = 86_400_000
NOW = int(time.time() * 1000)


def _run(client, exp_id, days_ago, tags, metrics, status="FINISHED"):
    start = NOW - days_ago * DAY
    run = client.create_run(exp_id, start_time=start, tags=tags)
    from mlflow.entities import Metric

    client.log_batch(run.info.run_id, metrics=[Metric(k, v, start, 0) for k, v in metrics.items()])
    client.set_terminated(run.info.run_id, status, end_time=start + 60_000)
    return run.info.run_id


def _site_tags(customer, zone, task, exp_type, **extra):
    return {"site.customer": customer, "site.region": "r", "site.plant": "p1", "site.zone": zone,
            "task.type": task, "exp.type": exp_type, "model.architecture": "yolov8n", **extra}


def _version(client, name, run_id, tags, aliases=()):
    customer, _, zone, task = name.split("__")[0].split(".")
    try:
        client.create_registered_model(name, tags={"site.customer": customer, "task.type": task,
                                                   "gf.path": f"{customer}/r-p1/{zone}/{task}"})
    except mlflow.exceptions.MlflowException:
        pass
    mv = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, tags=tags)
    for alias in aliases:
        client.set_registered_model_alias(name, alias, mv.version)
    return mv.version


@pytest.fixture
def fleet(mlflow_store):
    client = mlflow.MlflowClient()
    a = client.create_experiment("acme/r-p1/gate")
    b = client.create_experiment("beta/r-p1/dock")
    basis = {"eval.split": "test", "eval.dataset_digest": "d1"}
    # acme: v1 champion (trained 20 days ago), v2 candidate on the same basis, an OpenVINO variant champion.
    t1 = _run(client, a, 20, _site_tags("acme", "gate", "ppe", "train"), {"det.mAP50": 0.80, "det.mAP50_95": 0.50})
    t2 = _run(client, a, 2, _site_tags("acme", "gate", "ppe", "train"), {"det.mAP50": 0.85, "det.mAP50_95": 0.55})
    q1 = _run(client, a, 19, _site_tags("acme", "gate", "ppe", "quant", **{"backend.name": "openvino",
                                                                          "backend.precision": "int8"}),
              {"det.mAP50": 0.79, "sys.latency_p50_ms": 4.0})
    _run(client, a, 18, _site_tags("acme", "gate", "ppe", "infer", **{"source.run_id": q1, "backend.name": "openvino",
                                                                     "backend.precision": "int8"}),
         {"det.mAP50": 0.79, "mot.hota": 0.7, "mot.idf1": 0.75, "sys.latency_p50_ms": 4.2})
    _run(client, a, 1, _site_tags("acme", "gate", "ppe", "train"), {}, status="FAILED")
    _version(client, "acme.r-p1.gate.ppe", t1, {**basis, "det.mAP50": "0.8", "det.mAP50_95": "0.5",
                                               "sys.latency_p50_ms": "12.0"}, ["champion"])
    _version(client, "acme.r-p1.gate.ppe", t2, {**basis, "det.mAP50": "0.85", "det.mAP50_95": "0.55"}, ["candidate"])
    _version(client, "acme.r-p1.gate.ppe__openvino_int8", q1,
             {**basis, "sys.latency_p50_ms": "4.0", "sys.latency_p95_ms": "4.5"}, ["champion"])
    # beta: a champion and a candidate measured on another split; a fire site with runs only.
    t3 = _run(client, b, 5, _site_tags("beta", "dock", "ppe", "train"), {"det.mAP50": 0.6, "det.mAP50_95": 0.3})
    t4 = _run(client, b, 3, _site_tags("beta", "dock", "ppe", "train"), {"det.mAP50": 0.7, "det.mAP50_95": 0.35})
    _version(client, "beta.r-p1.dock.ppe", t3, {**basis, "det.mAP50": "0.6"}, ["champion"])
    _version(client, "beta.r-p1.dock.ppe", t4, {"eval.split": "val", "eval.dataset_digest": "d1"}, ["candidate"])
    _run(client, b, 4, _site_tags("beta", "dock", "fire", "train"), {"det.mAP50": 0.4})
    _run(client, b, 60, _site_tags("beta", "dock", "fire", "train"), {"det.mAP50": 0.3})
    return {"t1": t1, "t2": t2, "q1": q1}


def test_summary_one_row_per_site_model(fleet):
    rows = {(r.site, r.task): r for r in queries.summary(days=30)}
    assert set(rows) == {("acme/r-p1/gate", "ppe"), ("beta/r-p1/dock", "ppe"), ("beta/r-p1/dock", "fire")}
    acme = rows[("acme/r-p1/gate", "ppe")]
    assert (acme.model, acme.champion, acme.candidate) == ("acme.r-p1.gate.ppe", "1", "2")
    assert (acme.det_mAP50, acme.det_mAP50_95, acme.eval_split) == (0.8, 0.5, "test")
    assert acme.deployed == "__openvino_int8" and (acme.latency_p50_ms, acme.latency_p95_ms) == (4.0, 4.5)
    assert (acme.hota, acme.idf1) == (0.7, 0.75), "from the infer run that measured the deployed variant"
    assert acme.candidate_same_basis is True and acme.runs == 5 and acme.failed_runs == 1
    assert 0 <= acme.champion_days < 1  # registered just now (no promotion tag)
    beta = rows[("beta/r-p1/dock", "ppe")]
    assert beta.candidate_same_basis is False and beta.deployed == "(itself)" and beta.hota is None
    fire = rows[("beta/r-p1/dock", "fire")]
    assert fire.model is None and fire.runs == 1, "the 60-day-old run is outside --days 30"
    assert [r.site for r in queries.summary(customer="beta")] == ["beta/r-p1/dock", "beta/r-p1/dock"]
    assert [r.task for r in queries.summary(task="fire")] == ["fire"]


def test_trend_per_site_by_end_day(fleet):
    rows = queries.trend("det.mAP50", days=30)
    acme = [r for r in rows if r["site"] == "acme/r-p1/gate"]
    assert [r["det.mAP50"] for r in acme] == [0.8, 0.79, 0.79, 0.85]  # by day: train, quant, infer, train
    assert all(r["runs"] == 1 for r in acme)
    assert len(queries.trend("det.mAP50", days=90, customer="beta", task="fire")) == 2
    weekly = queries.trend("det.mAP50", days=90, by="week")
    assert sum(r["runs"] for r in weekly) == sum(r["runs"] for r in queries.trend("det.mAP50", days=90))


def test_compare_groups(fleet):
    by_backend = {r["backend"]: r for r in queries.compare("backend", "sys.latency_p50_ms", lower_is_better=True)}
    assert by_backend["openvino_int8"] == {"backend": "openvino_int8", "mean": 4.1, "best": 4.0, "count": 2}
    by_task = {r["task"]: r for r in queries.compare("task", "det.mAP50")}
    assert by_task["fire"]["count"] == 2 and by_task["fire"]["best"] == 0.4
    assert by_task["ppe"]["count"] == 6 and by_task["ppe"]["best"] == 0.85


def test_export_reads_back_equal(fleet, tmp_path):
    runs_file, history_file = export(tmp_path, "parquet", history=True)
    frame = pd.read_parquet(runs_file)
    assert len(frame) == 9 and {"customer", "task", "backend", "status", "det.mAP50"} <= set(frame.columns)
    q1 = frame.set_index("run_id").loc[fleet["q1"]]
    assert (q1["backend"], q1["precision"], q1["sys.latency_p50_ms"]) == ("openvino", "int8", 4.0)
    assert frame["status"].value_counts()["FAILED"] == 1
    history = pd.read_parquet(history_file)
    assert set(history.columns) == {"run_id", "key", "step", "timestamp", "value"}
    assert history[history.run_id == fleet["t1"]].set_index("key")["value"].to_dict() == {"det.mAP50": 0.8,
                                                                                          "det.mAP50_95": 0.5}
    csv = export(tmp_path / "csv", "csv")[0]
    assert len(pd.read_csv(csv)) == 9


def test_bad_input_says_what_exists(fleet):
    with pytest.raises(ConfigError, match="did you mean det.mAP50"):
        queries.trend("det.mAP5")
    with pytest.raises(ConfigError, match="the store has acme, beta"):
        queries.summary(customer="gamma")
    with pytest.raises(ConfigError, match="use one of ppe, fall"):
        queries.summary(task="smoke")
    with pytest.raises(ConfigError, match="--by"):
        queries.compare("zone")


def test_an_empty_store_is_an_empty_table(mlflow_store):
    assert queries.summary() == [] and queries.trend("det.mAP50") == [] and queries.compare("site") == []


def test_cli_json_and_text(fleet, capsys, tmp_path):
    import json

    from gfcore import cli

    assert cli.main(["metrics", "summary", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in rows} == {"acme.r-p1.gate.ppe", "beta.r-p1.dock.ppe", None}
    assert cli.main(["metrics", "trend", "--metric", "det.mAP50", "--by", "week", "--plot", str(tmp_path / "t.png")]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0].split() == ["site", "task", "week", "det.mAP50", "runs", "last"]
    assert (tmp_path / "t.png").stat().st_size > 1000
    assert cli.main(["metrics", "compare", "--by", "site", "--latency", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0] == {"site": "acme/r-p1/gate", "mean": 4.1, "best": 4.0, "count": 2}
    assert cli.main(["metrics", "trend", "--metric", "det.mAP5"]) == 2
    assert "did you mean det.mAP50" in capsys.readouterr().err


def test_cli_on_an_empty_store_says_so(mlflow_store, capsys):
    from gfcore import cli

    assert cli.main(["metrics", "summary"]) == 0
    assert "no site has runs or registered models" in capsys.readouterr().out


def test_cli_on_an_unreachable_server_is_one_error(monkeypatch, capsys):
    from gfcore import cli

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    mlflow.set_tracking_uri("http://127.0.0.1:9")
    try:
        assert cli.main(["metrics", "summary"]) == 2
    finally:
        mlflow.set_tracking_uri(None)
    assert "127.0.0.1:9" in capsys.readouterr().err
