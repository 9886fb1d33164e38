"""`guardianflow alerts list` on a seeded fleet: the rules that must fire and the ones that must not, each
evaluation recorded in `guardianflow/alerts`, and `--notify` sending a signed payload only for what changed."""

from __future__ import annotations

import json

import mlflow
import pytest

from gfcore import cli
from gfcore.automation import alerts, webhook
from tests.automation.test_webhook import SECRET, Receiver
from tests.fleet.seed import seed

LOW_BETA = "low_accuracy|beta.r-p1.dock.ppe|1"
FAILED_ACME = "failed_runs|acme.r-p1.gate.ppe|-"


@pytest.fixture
def fleet(mlflow_store):
    return seed(mlflow.MlflowClient())


def _list(capsys, *args):
    code = cli.main(["alerts", "list", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def _evaluations():
    exp = mlflow.get_experiment_by_name(alerts.EXPERIMENT)
    return mlflow.MlflowClient().search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def test_rules_fire_exactly_when_they_should(fleet, capsys):
    code, out = _list(capsys)
    assert code == 0
    assert {a["key"] for a in out["open"]} == {LOW_BETA, FAILED_ACME}, "beta's champion 0.6 < 0.75, acme's failed run"
    [low] = [a for a in out["open"] if a["key"] == LOW_BETA]
    assert low["evidence"] == {"metric": "det.mAP50", "value": 0.6, "threshold": 0.75} and low["severity"] == "warning"
    # acme's deployed variant has p95 4.5 ms: over a 4 ms budget, not over 5 ms.
    _, out = _list(capsys, "+budgets_ms={acme/r-p1/gate: 4}")
    assert "slow_champion|acme.r-p1.gate.ppe|1" in {a["key"] for a in out["open"]}
    _, out = _list(capsys, "+budgets_ms={acme/r-p1/gate: 5}", "rules.low_accuracy.threshold=0.6")
    assert {a["key"] for a in out["open"]} == {FAILED_ACME}, "at the threshold is not below it; within budget"

    runs = _evaluations()
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    assert runs[0].data.metrics["alerts.open"] == 2 and runs[0].data.metrics["alerts.open.critical"] == 1
    # What a person reads first in the MLflow UI: the run's name and its description with the open alerts.
    assert runs[0].info.run_name == "alerts-2-open"
    assert "| warning | low_accuracy | beta/r-p1/dock | beta.r-p1.dock.ppe | 1 |" in \
        runs[0].data.tags["mlflow.note.content"]
    recorded = mlflow.artifacts.load_dict(f"runs:/{runs[0].info.run_id}/{alerts.OPEN_FILE}")
    assert {a["key"] for a in recorded} == {LOW_BETA, FAILED_ACME}
    # One tag per open alert, in the listed order, for the Grafana panel (which cannot read artifacts).
    tagged = [json.loads(v) for k, v in sorted(runs[0].data.tags.items()) if k.startswith("alerts.open_alert.")]
    assert [{k: a[k] for k in tagged[0]} for a in recorded] == tagged
    assert [a["task"] for a in tagged] == ["ppe", "ppe"]


def test_fail_on_sets_the_exit_status(fleet, capsys):
    assert _list(capsys, "--fail-on", "critical")[0] == 1
    assert _list(capsys, "--fail-on", "critical", "rules.failed_runs.severity=warning")[0] == 0
    assert _list(capsys, "--fail-on", "warning", "rules.failed_runs.severity=warning")[0] == 1


def test_notify_sends_new_once_and_resolved_once(fleet, capsys, monkeypatch):
    hook = Receiver([200])
    try:
        monkeypatch.setenv(webhook.URL_ENV, hook.url)
        monkeypatch.setenv(webhook.SECRET_ENV, SECRET)
        _list(capsys, "--notify")
        [(headers, body)] = hook.got
        assert webhook.verify(body, SECRET, headers[webhook.SIGNATURE_HEADER])
        sent = json.loads(body)
        assert {a["key"] for a in sent["new"]} == {LOW_BETA, FAILED_ACME} and sent["resolved"] == []
        assert sent["text"].startswith("GuardianFlow: 2 new, 0 resolved")
        assert "NEW beta.r-p1.dock.ppe v1" in sent["text"]

        _list(capsys, "--notify")
        assert len(hook.got) == 1, "nothing changed: nothing sent again"

        _list(capsys, "--notify", "rules.low_accuracy.threshold=0.5")
        assert len(hook.got) == 2
        sent = json.loads(hook.got[-1][1])
        assert sent["new"] == [] and [r["key"] for r in sent["resolved"]] == [LOW_BETA]
        assert "RESOLVED beta.r-p1.dock.ppe v1" in sent["text"]
        _list(capsys, "--notify", "rules.low_accuracy.threshold=0.5")
        assert len(hook.got) == 2, "a resolved alert is notified once"
    finally:
        hook.close()


def test_a_refused_notification_is_sent_again_next_time(fleet, capsys, monkeypatch):
    refusing, taking = Receiver([403]), Receiver([200])
    try:
        monkeypatch.setenv(webhook.SECRET_ENV, SECRET)
        monkeypatch.setenv(webhook.URL_ENV, refusing.url)
        assert cli.main(["alerts", "list", "--notify"]) == 2
        assert "refused the notification: HTTP 403" in capsys.readouterr().err
        assert _evaluations()[-1].info.status == "FAILED"
        monkeypatch.setenv(webhook.URL_ENV, taking.url)
        _list(capsys, "--notify")
        assert {a["key"] for a in json.loads(taking.got[0][1])["new"]} == {LOW_BETA, FAILED_ACME}
    finally:
        refusing.close()
        taking.close()


def _keys(capsys, *args):
    return {a["key"] for a in _list(capsys, "--no-record", *args)[1]["open"]}


def test_candidate_worse_than_the_current_champion(fleet, capsys):
    client = mlflow.MlflowClient()
    name, key = "acme.r-p1.gate.ppe", "candidate_worse|acme.r-p1.gate.ppe|2"
    assert key not in _keys(capsys), "no challenge yet"
    for verdict, champion, fires in (("better", "1", False), ("worse", "0", False), ("worse", "1", True)):
        for tag, value in (("challenge.verdict", verdict), ("challenge.champion_version", champion),
                           ("challenge.run_id", fleet["t2"])):
            client.set_model_version_tag(name, "2", tag, value)
        assert (key in _keys(capsys)) is fires, (verdict, champion)


def test_tracking_drop_against_the_previous_champion(fleet, capsys):
    from tests.fleet.seed import _run, _site_tags, _version

    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("acme/r-p1/gate").experiment_id
    key = "tracking_drop|acme.r-p1.gate.ppe|1"
    assert key not in _keys(capsys), "no previous champion"
    variant = {"backend.name": "openvino", "backend.precision": "int8"}
    for hota, fires in ((0.74, False), (0.80, True)):  # the served champion's HOTA is 0.7; allowed drop 0.05
        q0 = _run(client, exp, 30, _site_tags("acme", "gate", "ppe", "quant", **variant), {"det.mAP50": 0.8})
        _run(client, exp, 29, _site_tags("acme", "gate", "ppe", "infer", **{"source.run_id": q0, **variant}),
             {"mot.hota": hota, "mot.idf1": 0.8})
        _version(client, "acme.r-p1.gate.ppe__openvino_int8", q0, {}, ["rollback"])
        assert (key in _keys(capsys)) is fires, hota
    [alert] = [a for a in _list(capsys, "--no-record")[1]["open"] if a["key"] == key]
    assert alert["evidence"]["previous"] == 0.8 and alert["evidence"]["value"] == 0.7


def test_failed_runs_counted_over_the_rule_hours(fleet, capsys):
    from tests.fleet.seed import _run, _site_tags

    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("beta/r-p1/dock").experiment_id
    _run(client, exp, 3, _site_tags("beta", "dock", "ppe", "train"), {}, status="FAILED")
    key = "failed_runs|beta.r-p1.dock.ppe|-"
    assert key not in _keys(capsys), "3 days ago is outside the default 48 hours"
    assert key in _keys(capsys, "rules.failed_runs.hours=96")


def test_notify_without_a_webhook_fails_before_evaluating(fleet, capsys, monkeypatch):
    monkeypatch.delenv(webhook.URL_ENV, raising=False)
    assert cli.main(["alerts", "list", "--notify", "rules.low_accuracy.threshold=0.1"]) == 2, "even with no change"
    assert f"set {webhook.URL_ENV}" in capsys.readouterr().err
    assert mlflow.get_experiment_by_name(alerts.EXPERIMENT) is None, "nothing evaluated, nothing recorded"


def test_champion_below_on_a_safety_class_recall_at_the_operating_point(fleet, capsys):
    from mlflow.entities import Metric

    from gfcore.fleet import queries
    from tests.fleet.seed import NOW

    client = mlflow.MlflowClient()
    on, key = "rules.helmet_recall.enabled=true", "helmet_recall|beta.r-p1.dock.ppe|1"
    assert not any(k.startswith("helmet_recall|") for k in _keys(capsys)), "off by default"
    missing = [a for a in _list(capsys, "--no-record", on)[1]["open"] if a["rule"] == "helmet_recall"]
    assert [a["evidence"]["missing"] for a in missing] == [True, True], "champions without det.op.* are said so"
    assert "has no det.op.recall.helmet recorded" in missing[0]["message"]

    beta = client.get_model_version("beta.r-p1.dock.ppe", "1").run_id
    for run_id, helmet in ((fleet["t1"], 0.95), (beta, 0.85)):  # what train records at site.conf_threshold
        figures = {"det.op.recall.helmet": helmet, "det.op.recall.vest": 0.9, "det.op.recall": 0.9,
                   "det.ap50_95.vest": 0.5}
        client.log_batch(run_id, metrics=[Metric(k, v, NOW, 0) for k, v in figures.items()])
        client.set_tag(run_id, "task.classes", "helmet,vest")
    acme = {r.model: r for r in queries.summary()}["acme.r-p1.gate.ppe"]
    assert acme.classes == ["helmet", "vest"] and acme.figures["det.op.recall.helmet"] == 0.95
    assert set(acme.figures) == {"det.op.recall.helmet", "det.op.recall.vest", "det.op.recall", "det.ap50_95.vest"}
    assert not {"figures", "classes"} & set(acme.as_dict()), "what rules read, not columns of the summary's table"

    [alert] = [a for a in _list(capsys, "--no-record", on)[1]["open"] if a["rule"] == "helmet_recall"]
    assert alert["key"] == key, "beta's champion recalls 0.85 of helmets, acme's 0.95"
    assert alert["evidence"] == {"metric": "det.op.recall.helmet", "value": 0.85, "threshold": 0.9}
    assert key not in _keys(capsys, on, "rules.helmet_recall.threshold=0.85"), "at the threshold is not below it"
    assert "helmet_recall|acme.r-p1.gate.ppe|1" in _keys(capsys, on, "rules.helmet_recall.threshold=0.96")

    assert cli.main(["alerts", "list", "--no-record", on, "rules.helmet_recall.metric=det.op.recall.helmett"]) == 2
    err = capsys.readouterr().err
    assert "names the class 'helmett', which no champion's task has (did you mean det.op.recall.helmet?)" in err
    assert mlflow.get_experiment_by_name(alerts.EXPERIMENT) is None, "refused before anything is recorded"


def test_a_long_alert_is_cut_to_fit_its_tag():
    from gfcore.automation.rules import Alert
    from gfcore.core.vocabulary import MAX_TAG_VALUE

    long = Alert("r", "failed_runs", "warning", "a/r-p/z", None, None, "é" * 9000, task="ppe")
    [(key, value)] = alerts.open_alert_tags([long]).items()
    row = json.loads(value)
    assert key == "alerts.open_alert.0001" and len(value) <= MAX_TAG_VALUE and row["message"].endswith("\u2026")
    assert row["task"] == "ppe" and row["message"].startswith("é" * 4000)
