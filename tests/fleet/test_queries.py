"""The fleet queries against a real sqlite store seeded through MLflow's own APIs: two sites, champions and
candidates with their version tags, variants, runs over several days, a failed run, and a site without a model."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from gfcore.core.errors import ConfigError
from gfcore.fleet import queries, trends
from gfcore.fleet.export import export
from tests.fleet.seed import seed


@pytest.fixture
def fleet(mlflow_store):
    return seed(mlflow.MlflowClient())


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
    rows = trends.trend("det.mAP50", days=30)
    acme = [r for r in rows if r["site"] == "acme/r-p1/gate"]
    assert [r["det.mAP50"] for r in acme] == [0.8, 0.79, 0.79, 0.85]  # by day: train, quant, infer, train
    assert all(r["runs"] == 1 for r in acme)
    assert len(trends.trend("det.mAP50", days=90, customer="beta", task="fire")) == 2
    weekly = trends.trend("det.mAP50", days=90, by="week")
    assert sum(r["runs"] for r in weekly) == sum(r["runs"] for r in trends.trend("det.mAP50", days=90))


def test_compare_groups(fleet):
    by_backend = {r["backend"]: r for r in trends.compare("backend", "sys.latency_p50_ms", lower_is_better=True)}
    assert by_backend["openvino_int8"] == {"backend": "openvino_int8", "mean": 4.1, "best": 4.0, "count": 2}
    by_task = {r["task"]: r for r in trends.compare("task", "det.mAP50")}
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
        trends.trend("det.mAP5")
    with pytest.raises(ConfigError, match="the store has acme, beta"):
        queries.summary(customer="gamma")
    with pytest.raises(ConfigError, match="use one of ppe, fall"):
        queries.summary(task="smoke")
    with pytest.raises(ConfigError, match="--by"):
        trends.compare("zone")


def test_an_empty_store_is_an_empty_table(mlflow_store):
    assert queries.summary() == [] and trends.trend("det.mAP50") == [] and trends.compare("site") == []


def test_cli_json_and_text(fleet, capsys, tmp_path):
    import json

    from gfcore import cli

    assert cli.main(["metrics", "summary", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in rows} == {"acme.r-p1.gate.ppe", "beta.r-p1.dock.ppe", None}
    assert cli.main(["metrics", "trend", "--metric", "det.mAP50", "--by", "week", "--plot", str(tmp_path / "t.png")]) == 0
    out = capsys.readouterr()
    title, header = out.out.splitlines()[:2]
    assert title.startswith("det.mAP50 (higher is better) per week: the mean over the finished runs")
    assert [c.strip() for c in header.split("  ") if c] == ["site", "task", "week", "mAP50 mean", "runs",
                                                            "mAP50 last run"]
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
