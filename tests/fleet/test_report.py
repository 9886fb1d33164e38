"""`metrics report`: the page written from a seeded fleet, logged in `guardianflow/fleet`, and opened in headless
Chromium with no network: no console error, no request beyond the file itself, one table row per site model, every
chart drawn with its data."""

from __future__ import annotations

import json
import os
import shutil

import mlflow
import pytest

from gfcore import cli
from tests.fleet.seed import seed


def _chromium() -> str:
    found = shutil.which("chromium")
    if not found:
        if os.environ.get("GF_REQUIRE_STACK") == "1":
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed")
    return found


def test_report_logged_and_drawn_offline(mlflow_store, tmp_path, capsys):
    seed(mlflow.MlflowClient())
    out = tmp_path / "fleet.html"
    assert cli.main(["metrics", "report", "-o", str(out), "--log", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    page = out.read_text()
    assert "<script src" not in page and "https://" not in page.split("<script>", 2)[-1], "no outside resource"

    client = mlflow.MlflowClient()
    run = client.get_run(answer["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "guardianflow/fleet"
    assert run.info.status == "FINISHED" and run.data.metrics["fleet.site_models"] == 3
    assert run.data.metrics["fleet.failed_runs"] == 1 and run.data.metrics["fleet.candidates_waiting"] == 2
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"fleet.html", "fleet_summary.json"}

    from tests.tools.chromium import Browser

    browser = Browser(_chromium())
    try:
        browser.record()
        browser.open(out.as_uri(), 1600, 1200)
        browser.wait_for("document.querySelectorAll('.chart .main-svg').length >= 3", 60, "the charts")
        rows = browser.eval("[...document.querySelectorAll('#summary tbody tr')].map(r => r.cells[2].innerText)")
        charts = browser.eval("Object.fromEntries([...document.querySelectorAll('.chart')].map(d => [d.id, "
                              "d.data.map(t => [t.name, t.x.length])]))")
        points = browser.eval("document.querySelectorAll('#accuracy-latency .scatterlayer .point').length")
        events = browser.drain(1.0)
    finally:
        browser.close()
    assert sorted(rows) == ["", "acme.r-p1.gate.ppe", "beta.r-p1.dock.ppe"], "one row per site model"
    assert charts["trend-ppe"] == [["acme/r-p1/gate", 4], ["beta/r-p1/dock", 2]]
    assert charts["trend-fire"] == [["beta/r-p1/dock", 2]], "the trend spans 90 days: the 60-day-old run is in"
    assert dict(charts["accuracy-latency"]) == {"openvino_int8": 1, "pytorch_fp32": 1}
    assert points == 2, "both champions with latency and accuracy are drawn as points"
    errors = [e for e in events if e["method"] == "Runtime.exceptionThrown"
              or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, errors
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    assert requests and all(u == out.as_uri() or u.startswith("data:") for u in requests), requests


def test_report_on_an_empty_store(mlflow_store, tmp_path, capsys):
    out = tmp_path / "empty.html"
    assert cli.main(["metrics", "report", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    page = out.read_text()
    assert "No site has runs or registered models yet." in page and "<table id='summary'" not in page
