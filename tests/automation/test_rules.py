"""Alert rules fire exactly when their condition holds, on `metrics summary` rows of a seeded fleet."""

from __future__ import annotations

import pytest
import yaml

from gfcore.automation import rules
from gfcore.config.compose import CONF_DIR
from gfcore.core.errors import ConfigError
from gfcore.fleet.queries import SiteModel

DEFAULT = yaml.safe_load((CONF_DIR / "alerts" / "default.yaml").read_text())["rules"]


def _row(**kw):
    base = dict(site="acme/r-p1/gate", task="ppe", model="acme.r-p1.gate.ppe", champion="3", champion_days=10.0,
                det_mAP50=0.9, det_mAP50_95=0.6, eval_split="test", deployed="__openvino_int8", latency_p50_ms=20.0,
                latency_p95_ms=24.0, runs=5, failed_runs=0)
    return SiteModel(**{**base, **kw})


def test_healthy_site_has_no_alert():
    assert rules.evaluate([_row()], DEFAULT, {"acme/r-p1/gate": 30.0}) == []


def test_low_accuracy_fires_below_the_threshold_only():
    [alert] = rules.evaluate([_row(det_mAP50=0.7499)], DEFAULT)
    assert (alert.rule, alert.severity, alert.model, alert.version) == ("low_accuracy", "warning",
                                                                        "acme.r-p1.gate.ppe", "3")
    assert alert.evidence == {"metric": "det.mAP50", "value": 0.7499, "threshold": 0.75}
    assert alert.key == "low_accuracy|acme.r-p1.gate.ppe|3"
    assert rules.evaluate([_row(det_mAP50=0.75)], DEFAULT) == [], "at the threshold is not below it"
    assert rules.evaluate([_row(champion=None, det_mAP50=None)], DEFAULT) == [], "no champion, nothing to judge"


def test_latency_budget_comes_from_the_site():
    slow = _row(latency_p95_ms=31.0)
    assert rules.evaluate([slow], DEFAULT) == [], "no budget set: no latency alert"
    [alert] = rules.evaluate([slow], DEFAULT, {"acme/r-p1/gate": 30.0})
    assert alert.rule == "slow_champion" and alert.evidence["budget_ms"] == 30.0
    assert "served as __openvino_int8" in alert.message
    assert rules.evaluate([slow], DEFAULT, {"acme/r-p1/gate": 31.0}) == []


def test_failed_runs_and_stale_champions():
    found = rules.evaluate([_row(failed_runs=2, champion_days=120.0)], DEFAULT)
    assert [(a.rule, a.severity, a.version) for a in found] == [("failed_runs", "critical", None),
                                                                ("stale_champion", "info", "3")]


def test_new_and_resolved_between_evaluations():
    before = {a.key: a.as_dict() for a in rules.evaluate([_row(det_mAP50=0.7)], DEFAULT)}
    assert rules.changes(before, rules.evaluate([_row(det_mAP50=0.7)], DEFAULT)) == ([], [])
    new, resolved = rules.changes(before, rules.evaluate([_row(det_mAP50=0.8, failed_runs=1)], DEFAULT))
    assert [a.rule for a in new] == ["failed_runs"] and [r["rule"] for r in resolved] == ["low_accuracy"]


@pytest.mark.parametrize("bad, message", [
    ({"x": {"kind": "nope"}}, "kind 'nope' is not one of"),
    ({"x": {"kind": "champion_below", "metric": "det.map", "threshold": 1}}, "metric 'det.map' is not a champion"),
    ({"x": {"kind": "failed_runs", "severity": "urgent"}}, "severity 'urgent' is not one of"),
])
def test_bad_rules_are_refused_with_the_rule_named(bad, message):
    with pytest.raises(ConfigError, match=f"alerts.rules.x: {message}"):
        rules.evaluate([_row()], bad)


def test_a_site_config_sets_its_budget_and_its_own_thresholds():
    sites = {"acme/r-p1/gate": {"latency_budget_ms": 20.0, "alerts": {"low_accuracy": {"threshold": 0.95}}}}
    found = rules.evaluate([_row(), _row(site="beta/r-p1/dock", model="beta.r-p1.dock.ppe")], DEFAULT, sites=sites)
    assert {(a.rule, a.site) for a in found} == {("slow_champion", "acme/r-p1/gate"),
                                                 ("low_accuracy", "acme/r-p1/gate")}
    assert rules.evaluate([_row()], DEFAULT, {"acme/r-p1/gate": 30.0}, sites={"acme/r-p1/gate": {
        "latency_budget_ms": 20.0}}) == [], "a budget on the command line wins over the site's config"
    off = {"acme/r-p1/gate": {"alerts": {"failed_runs": {"enabled": False}}}}
    assert rules.evaluate([_row(failed_runs=3)], DEFAULT, sites=off) == []


def test_the_shipped_site_configs_are_read_by_experiment():
    from gfcore.automation.facts import site_settings

    sites = site_settings()
    assert sites["donghwa-entec/busan-plant1/welding"]["latency_budget_ms"] == 50.0
    assert sites["demo/local-plant1/yard"]["latency_budget_ms"] is None


HELMET = {"helmet_recall": {**DEFAULT["helmet_recall"], "enabled": True}}
OP = {"det.op.recall.helmet": 0.92, "det.op.recall.vest": 0.8, "det.op.recall": 0.86, "det.ap50_95.vest": 0.4}


def test_operating_point_and_per_class_figures_of_the_champion():
    assert DEFAULT["helmet_recall"]["enabled"] is False, "off unless a site or the command line turns it on"
    assert rules.evaluate([_row(figures=OP, classes=["helmet", "vest"])], DEFAULT) == []
    assert rules.evaluate([_row(figures=OP, classes=["helmet", "vest"])], HELMET) == [], "0.92 is not below 0.9"
    [alert] = rules.evaluate([_row(figures={**OP, "det.op.recall.helmet": 0.85}, classes=["helmet", "vest"])], HELMET)
    assert (alert.key, alert.severity) == ("helmet_recall|acme.r-p1.gate.ppe|3", "warning")
    assert alert.evidence == {"metric": "det.op.recall.helmet", "value": 0.85, "threshold": 0.9}
    assert "champion det.op.recall.helmet 0.850 < 0.9 (on test)" in alert.message
    at = {"x": {"kind": "champion_below", "metric": "det.ap50_95.vest", "threshold": 0.4}}
    assert rules.evaluate([_row(figures=OP)], at) == [], "at the threshold is not below it"
    assert [a.key for a in rules.evaluate([_row(figures=OP)], {"x": {**at["x"], "threshold": 0.5}})] == ["x|acme.r-p1.gate.ppe|3"]
    pooled = {"x": {"kind": "champion_below", "metric": "det.op.recall", "threshold": 0.9}}
    assert rules.evaluate([_row(figures=OP)], pooled)[0].evidence["value"] == 0.86


def test_a_per_class_rule_judges_only_champions_of_tasks_with_that_class():
    fire = _row(site="beta/r-p1/dock", model="beta.r-p1.dock.fire", task="fire", classes=["fire", "smoke"])
    assert rules.evaluate([_row(figures=OP, classes=["helmet", "vest"]), fire], HELMET) == []
    [missing] = rules.evaluate([_row(figures={"det.op.recall.hemlet": 0.95})], HELMET)
    assert missing.evidence == {"metric": "det.op.recall.helmet", "value": None, "threshold": 0.9, "missing": True}
    assert "has no det.op.recall.helmet recorded (did you mean det.op.recall.hemlet?)" in missing.message


def test_a_class_no_champion_has_is_refused_with_the_close_names():
    typo = {"helmet_recall": {**HELMET["helmet_recall"], "metric": "det.op.recall.helmett"}}
    with pytest.raises(ConfigError, match=r"alerts.rules.helmet_recall: metric 'det.op.recall.helmett' names the "
                                          r"class 'helmett', which no champion's task has \(did you mean "
                                          r"det.op.recall.helmet\?\); their classes are helmet, vest"):
        rules.evaluate([_row(figures=OP, classes=["helmet", "vest"])], typo)
    site = {"acme/r-p1/gate": {"alerts": {"helmet_recall": {"metric": "det.ap50_95.vets"}}}}
    with pytest.raises(ConfigError, match=r"did you mean det.ap50_95.vest\?"):
        rules.evaluate([_row(figures=OP, classes=["helmet", "vest"])], HELMET, sites=site)


@pytest.mark.parametrize("metric, message", [
    ("det.op.recal.helmet", r"is not a champion figure the fleet summary has \(did you mean det.op.recall.helmet"),
    ("det.ap50_95", r"is not .*\(did you mean det.mAP50_95 .*; use one of det.mAP50, .*det.op.\{precision,recall,"),
    ("det.op.recall.", "is not a champion figure"),
    ("det.op.missed.helmet", "counts missed objects .* judge det.op.recall.helmet instead"),
])
def test_figures_of_neither_form_are_refused_at_composition(metric, message):
    with pytest.raises(ConfigError, match=f"alerts.rules.x: metric '{metric}' {message}"):
        rules.check_rules({"x": {"kind": "champion_below", "metric": metric, "threshold": 0.9}})
