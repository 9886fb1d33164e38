"""The schemas of conf/alerts, conf/automation and a site's rule settings (gfcore.config.automation): the documented
overrides compose into typed objects, and a typo'd key or a wrongly typed value is refused at composition."""

from __future__ import annotations

import pytest
from hydra.errors import HydraException

from gfcore.config import compose, to_typed
from gfcore.config.automation import AlertsConfig, AutomationConfig, RuleConfig
from gfcore.config.compose import compose_root
from gfcore.config.enums import EnvManager, RuleKind, Severity
from gfcore.core.errors import ConfigError


def test_alerts_overrides_compose_typed():
    cfg = compose_root("alerts", AlertsConfig, [
        "rules.low_accuracy.threshold=0.8", "+rules.failed_runs.enabled=false", "+budgets_ms={acme/r-p1/gate: 30}",
        "+rules.mine={kind: champion_below, metric: det.mAP50_95, threshold: 0.5}"])
    assert all(isinstance(r, RuleConfig) for r in cfg.rules.values())
    assert cfg.rules["low_accuracy"].threshold == 0.8 and cfg.rules["low_accuracy"].kind == RuleKind.champion_below
    assert cfg.rules["failed_runs"].enabled is False and cfg.rules["failed_runs"].severity == Severity.critical
    assert cfg.rules["mine"].severity == Severity.warning and cfg.budgets_ms == {"acme/r-p1/gate": 30.0}


@pytest.mark.parametrize("override, named", [
    ("rules.low_accuracy.threshhold=0.8", "threshhold"),  # a typo'd key
    ("+rules.low_accuracy.threshhold=0.8", "threshhold"),  # ... added with `+`
    ("+budget_ms={acme/r-p1/gate: 30}", "budget_ms"),
    ("rules.low_accuracy.threshold=high", "threshold"),  # a wrongly typed value
    ("rules.failed_runs.severity=urgent", "severity"),
    ("rules.failed_runs.kind=nope", "kind"),
    ("+budgets_ms={acme/r-p1/gate: fast}", "budgets_ms"),
])
def test_alerts_schema_refuses_typos_and_wrong_types(override, named):
    with pytest.raises((HydraException, ConfigError), match=named):
        compose_root("alerts", AlertsConfig, [override])


def test_automation_overrides_compose_typed():
    cfg = compose_root("automation", AutomationConfig, [
        "+budgets_ms={demo/local-plant1/yard: 0.001}", "target_backend=onnx_fp32", "auto_promote=true",
        "triggers.low_accuracy.trials=2", "+triggers.new_candidate.enabled=false", "gates=['det.mAP50>=champion-1']"])
    assert cfg.triggers.low_accuracy.trials == 2 and cfg.triggers.low_accuracy.threshold == 0.75
    assert cfg.triggers.new_candidate.enabled is False and cfg.triggers.high_latency.enabled is None
    assert (cfg.auto_promote, cfg.target_backend, cfg.gates) == (True, "onnx_fp32", ["det.mAP50>=champion-1"])
    assert cfg.env_manager == EnvManager.local and cfg.cooldown_hours == 24.0
    assert cfg.budgets_ms == {"demo/local-plant1/yard": 0.001}


@pytest.mark.parametrize("override, named", [
    ("triggers.low_accuracy.trails=4", "trails"),  # a typo'd key
    ("+triggers.sometimes={}", "sometimes"),  # an unknown trigger, added with `+`
    ("+auto_promot=true", "auto_promot"),
    ("cooldown_hours=soon", "cooldown_hours"),  # a wrongly typed value
    ("auto_promote=maybe", "auto_promote"),
    ("env_manager=docker", "env_manager"),
    ("triggers.low_gpu_utilization.pct=half", "pct"),
    ("triggers.low_accuracy.metric=det.map", "metric"),
])
def test_automation_schema_refuses_typos_and_wrong_types(override, named):
    with pytest.raises((HydraException, ConfigError), match=named):
        compose_root("automation", AutomationConfig, [override])


def test_a_sites_rule_settings_are_checked_with_the_site():
    cfg = to_typed(compose(["scenario=smoke", "+site.alerts.low_accuracy={threshold: 0.9}"]))
    assert cfg.site.alerts == {"low_accuracy": {"threshold": 0.9}}
    for override, named in (("+site.alerts.low_accuracy={threshhold: 0.9}", "threshhold"),
                            ("+site.alerts.low_accuracy={threshold: high}", "high"),
                            ("+site.alerts.failed_runs={enabled: sometimes}", "sometimes")):
        with pytest.raises(ConfigError, match=f"site.alerts.*{named}"):
            to_typed(compose(["scenario=smoke", override]))
