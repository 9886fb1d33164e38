"""Structured-config schema of the fleet's alert rules (`conf/alerts`, `guardianflow alerts`) and of automatic
improvement (`conf/automation`, `guardianflow optimize`), registered with Hydra's ConfigStore.

Each of the two folders is a config root of its own: its `default.yaml` starts its defaults list with
`gf_alerts_schema` or `gf_automation_schema`, so the command line's overrides (`rules.low_accuracy.threshold=0.8`,
`triggers.low_accuracy.trials=4`, `'+budgets_ms={acme/r-p1/gate: 30}'`) are merged onto these dataclasses: an
unknown key or a value of the wrong type fails in Hydra's composition, or (a rule's settings, a key added with `+`)
as the composed config becomes these objects (gfcore.config.compose.compose_root), before anything is evaluated.
A site's own settings of the rules (`alerts:` in `conf/site/*.yaml`) are checked against `RuleSettings` when the
site is (check_rule_settings).

`enabled` is unset (None, on) rather than true by default, so that `+rules.NAME.enabled=false` and
`+triggers.NAME.enabled=false` add it as they always have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gfcore.config.enums import EnvManager, RuleKind, Severity
from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import DET_MAP50, DET_MAP50_95, SYS_LATENCY_P50_MS, SYS_LATENCY_P95_MS

ALERTS_SCHEMA, AUTOMATION_SCHEMA = "gf_alerts_schema", "gf_automation_schema"


@dataclass
class RuleSettings:
    """The settings of an alert rule, each unset (None) until given; which ones a kind reads: enums.RuleKind. A site's
    `alerts: {RULE: {KEY: VALUE}}` sets these over the rule's own."""

    # champion_below (a summary figure, det.op.*[.CLASS], det.ap50_95.CLASS), latency_over_budget (a summary
    # figure), tracking_drop (mot.*)
    metric: Optional[str] = None
    threshold: Optional[float] = None  # champion_below: the champion's figure below this
    budget_ms: Optional[float] = None  # latency_over_budget, where neither budgets_ms nor the site sets a budget
    max_drop: Optional[float] = None  # tracking_drop: below the previous champion's by more than this
    hours: Optional[float] = None  # failed_runs: over these hours; unset: the summary's days
    days: Optional[float] = None  # stale_champion: champion for longer than this
    data_changed: Optional[bool] = None  # stale_champion: also when the champion's data changed since
    severity: Optional[Severity] = None
    enabled: Optional[bool] = None  # false: not evaluated; unset: on


def check_rule_settings(where: str, given: Any) -> None:
    """Refuse settings of a rule (a site's `alerts: {RULE: {KEY: VALUE}}`) with a key RuleSettings lacks or a value of
    the wrong type. The site's schema keeps them a plain dict: OmegaConf cannot add a plain dict to a dict of
    dataclasses, as `+site.alerts.RULE={...}` and the `++site.alerts.RULE.KEY=...` of a launched run's overrides do."""
    try:
        OmegaConf.merge(OmegaConf.structured(RuleSettings), given)
    except (OmegaConfBaseException, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


@dataclass
class RuleConfig(RuleSettings):
    """A rule of `rules:`: its kind, and the settings that kind reads (gfcore.automation.rules checks which)."""

    kind: RuleKind = MISSING
    severity: Severity = Severity.warning


@dataclass
class AlertsConfig:
    """conf/alerts/default.yaml: the rules by name (`+rules.NAME={kind: ..., ...}` adds one), and latency budgets
    in ms per site (its experiment's name) over the sites' configs."""

    rules: Dict[str, RuleConfig] = field(default_factory=dict)
    budgets_ms: Dict[str, float] = field(default_factory=dict)


@dataclass
class _ComposedAlertsConfig(AlertsConfig):
    """What Hydra composes conf/alerts on: each rule a plain dict until compose_root merges the result onto
    AlertsConfig (which refuses a typo or a wrong type there), since OmegaConf cannot add a plain dict to a dict of
    dataclasses, as `+rules.NAME={kind: ..., ...}` does."""

    rules: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TriggerConfig:
    enabled: Optional[bool] = None  # false: never fires; unset: on


@dataclass
class LowAccuracyTrigger(TriggerConfig):
    """The champion's figure below the threshold -> an Optuna sweep of its scenario."""

    metric: str = DET_MAP50
    threshold: float = 0.75
    trials: int = 8

    def __post_init__(self) -> None:
        if self.metric not in (DET_MAP50, DET_MAP50_95):
            raise ConfigError(f"triggers.low_accuracy.metric={self.metric!r}: use {DET_MAP50} or {DET_MAP50_95}.")
        if self.trials < 1:
            raise ConfigError(f"triggers.low_accuracy.trials={self.trials}: a sweep needs at least one trial.")


@dataclass
class LowGpuUtilizationTrigger(TriggerConfig):
    """The champion's infer run kept the GPU busy below `pct` -> infer with doubled batch sizes."""

    pct: float = 50.0


@dataclass
class TriggersConfig:
    """One field per trigger (gfcore.automation.optimize.TRIGGERS), so an unknown trigger fails at composition."""

    low_accuracy: LowAccuracyTrigger = field(default_factory=LowAccuracyTrigger)
    high_latency: TriggerConfig = field(default_factory=TriggerConfig)  # over the site's budget -> quant + infer
    low_gpu_utilization: LowGpuUtilizationTrigger = field(default_factory=LowGpuUtilizationTrigger)
    data_changed: TriggerConfig = field(default_factory=TriggerConfig)  # -> retrain on the data as it is now
    new_candidate: TriggerConfig = field(default_factory=TriggerConfig)  # -> challenge
    challenger_passes: TriggerConfig = field(default_factory=TriggerConfig)  # -> promote, only with auto_promote


@dataclass
class AutomationConfig:
    """conf/automation/default.yaml (its comments say what each value does)."""

    auto_promote: bool = False
    cooldown_hours: float = 24.0
    env_manager: EnvManager = EnvManager.local
    target_backend: Optional[str] = None  # a backend option; unset: the site's site.target_backend
    gates: List[str] = field(default_factory=list)  # where the site's config (site.gates) names none
    triggers: TriggersConfig = field(default_factory=TriggersConfig)
    budgets_ms: Dict[str, float] = field(default_factory=dict)


def register() -> None:
    """Register both schemas with Hydra's ConfigStore; safe to call more than once."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=ALERTS_SCHEMA, node=_ComposedAlertsConfig)
    ConfigStore.instance().store(name=AUTOMATION_SCHEMA, node=AutomationConfig)


register()


@dataclass
class ChallengeConfig:
    """How `guardianflow challenge` measures a candidate against the champion and decides (gfcore.verdicts):
    `worse` when a figure's 95 % interval lies wholly worse than the champion's by more than its tolerance,
    `better` when one lies wholly better by more than it and no other reaches past its tolerance, else `tie`."""

    map_tolerance: float = 0.005  # det.mAP50, absolute
    latency_tolerance: float = 0.10  # batch-1 latency (latency_figure), relative to the champion's
    # The latency figure the verdict reads. p50: on a shared CPU the p95 of a few hundred calls is the machine's
    # (its 95 % interval spans +-30 % under load, bench/challenge_fidelity.py); both are recorded with intervals.
    latency_figure: str = SYS_LATENCY_P50_MS
    hota_tolerance: float = 0.01  # mot.hota, absolute (where the data has sequences)
    safety_recall_tolerance: float = 0.0  # det.op.recall.{safety class}, absolute
    resamples: int = 1000  # paired bootstrap resamples of the evaluation images (and of the timed calls)
    seed: int = 0  # of the bootstrap: the same seed, the same intervals
    rounds: int = 5  # the latency calls alternate between the two models in this many rounds
    # Timed calls per model (after latency.warmup): a decision is worth more calls than one model's record;
    # null: latency.runs. bench/challenge_fidelity.py: 300 halves the worst p95 error of 100 on a shared machine.
    runs: Optional[int] = 300

    def __post_init__(self) -> None:
        if min(self.map_tolerance, self.latency_tolerance, self.hota_tolerance,
               self.safety_recall_tolerance) < 0 or self.rounds < 1:
            raise ConfigError("challenge tolerances must be >= 0 and challenge.rounds >= 1.")
        if self.latency_figure not in (SYS_LATENCY_P50_MS, SYS_LATENCY_P95_MS):
            raise ConfigError(f"challenge.latency_figure={self.latency_figure!r}: use {SYS_LATENCY_P50_MS} or "
                              f"{SYS_LATENCY_P95_MS}.")
        if self.resamples < 100:
            raise ConfigError(f"challenge.resamples={self.resamples}: a 95 % interval needs at least 100 bootstrap "
                              "resamples (default 1000).")
        if self.runs is not None and self.runs < self.rounds:
            raise ConfigError(f"challenge.runs={self.runs}: at least one timed call per round "
                              f"(challenge.rounds={self.rounds}), or null for latency.runs.")
