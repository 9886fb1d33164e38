"""Alert rules over the fleet's state: each rule is a kind with its settings (Hydra config, `conf/alerts/`), evaluated
against the `metrics summary` rows (gfcore.fleet.queries) and the site's own budgets.

An alert is identified by (rule, model, version): the same condition on the same version is the same alert from
one evaluation to the next, which is what lets `--notify` send only what is new or resolved.

Kinds (settings in brackets):
- champion_below [metric, threshold]: the champion's figure on its evaluation split is below the threshold;
- latency_over_budget [metric, budget_ms]: the served variant's latency is above the site's budget
  (`budget_ms` in the rule, overridden per site);
- failed_runs [hours]: runs of the site ended FAILED in the last hours;
- stale_champion [days]: the champion became champion more than `days` ago.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "critical")
KINDS = ("champion_below", "latency_over_budget", "failed_runs", "stale_champion")
_ROW_FIGURES = {"det.mAP50": "det_mAP50", "det.mAP50_95": "det_mAP50_95", "sys.latency_p50_ms": "latency_p50_ms",
                "sys.latency_p95_ms": "latency_p95_ms", "mot.hota": "hota", "mot.idf1": "idf1"}


@dataclass
class Alert:
    rule: str
    kind: str
    severity: str
    site: str
    model: str | None
    version: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.rule}|{self.model or self.site}|{self.version or '-'}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "key": self.key}


def check_rules(rules: dict[str, dict[str, Any]]) -> None:
    """Refuse a rule set that cannot be evaluated, naming the rule and what to write instead."""
    from gfcore.errors import ConfigError

    for name, rule in rules.items():
        kind = rule.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"alerts.rules.{name}: kind {kind!r} is not one of {', '.join(KINDS)}.")
        if rule.get("severity", "warning") not in SEVERITIES:
            raise ConfigError(f"alerts.rules.{name}: severity {rule.get('severity')!r} is not one of "
                              f"{', '.join(SEVERITIES)}.")
        metric = rule.get("metric")
        if kind in ("champion_below", "latency_over_budget") and metric not in _ROW_FIGURES:
            raise ConfigError(f"alerts.rules.{name}: metric {metric!r} is not a champion figure the fleet summary "
                              f"has; use one of {', '.join(_ROW_FIGURES)}.")


def evaluate(rows: list[Any], rules: dict[str, dict[str, Any]],
             budgets: dict[str, float] | None = None) -> list[Alert]:
    """The alerts open now. `rows` are `metrics summary` rows (SiteModel); `budgets` the latency budget in ms per
    site (customer/region-plant/zone), where a site's config sets one."""
    check_rules(rules)
    budgets = budgets or {}
    alerts: list[Alert] = []
    for name, rule in rules.items():
        if not rule.get("enabled", True):
            continue
        for row in rows:
            alert = _KIND[rule["kind"]](name, rule, row, budgets)
            if alert is not None:
                alerts.append(alert)
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(alerts, key=lambda a: (order[a.severity], a.site, a.rule, a.model or ""))


def _new(name: str, rule: dict[str, Any], row: Any, message: str, version: str | None = None,
         **evidence: Any) -> Alert:
    """An alert about the row's champion version (or, with `version=None` given by a site rule, its site)."""
    return Alert(rule=name, kind=rule["kind"], severity=rule.get("severity", "warning"), site=row.site,
                 model=row.model, version=version, message=message, evidence=evidence)


def _champion_below(name: str, rule: dict[str, Any], row: Any, budgets: dict[str, float]) -> Alert | None:
    metric, threshold = rule["metric"], float(rule["threshold"])
    value = getattr(row, _ROW_FIGURES[metric])
    if row.champion is None or value is None or value >= threshold:
        return None
    return _new(name, rule, row, f"{row.model} v{row.champion}: champion {metric} {value:.3f} < {threshold:g}"
                f"{f' (on {row.eval_split})' if row.eval_split else ''}", version=row.champion, metric=metric,
                value=value, threshold=threshold)


def _latency_over_budget(name: str, rule: dict[str, Any], row: Any, budgets: dict[str, float]) -> Alert | None:
    metric = rule["metric"]
    budget = budgets.get(row.site, rule.get("budget_ms"))
    value = getattr(row, _ROW_FIGURES[metric])
    if row.champion is None or budget is None or value is None or value <= float(budget):
        return None
    return _new(name, rule, row, f"{row.model} v{row.champion} served as {row.deployed}: {metric} {value:.2f} ms > "
                f"the site's budget {float(budget):g} ms", version=row.champion, metric=metric, value=value,
                budget_ms=float(budget), deployed=row.deployed)


def _failed_runs(name: str, rule: dict[str, Any], row: Any, budgets: dict[str, float]) -> Alert | None:
    if not row.failed_runs:
        return None
    task = f" {row.task}" if row.task else ""
    return _new(name, rule, row, f"{row.site}{task}: {row.failed_runs} run(s) FAILED in the summary's window",
                failed_runs=row.failed_runs, runs=row.runs)


def _stale_champion(name: str, rule: dict[str, Any], row: Any, budgets: dict[str, float]) -> Alert | None:
    days = float(rule["days"])
    if row.champion is None or row.champion_days is None or row.champion_days <= days:
        return None
    return _new(name, rule, row, f"{row.model} v{row.champion} has been champion for {row.champion_days:.0f} days "
                f"(> {days:g})", version=row.champion, champion_days=row.champion_days, days=days)


_KIND = {"champion_below": _champion_below, "latency_over_budget": _latency_over_budget,
         "failed_runs": _failed_runs, "stale_champion": _stale_champion}


def changes(previous: dict[str, dict[str, Any]], current: list[Alert]) -> tuple[list[Alert], list[dict[str, Any]]]:
    """(new alerts, resolved ones) between the previous evaluation's open alerts (by key) and now."""
    now = {a.key: a for a in current}
    new = [a for k, a in now.items() if k not in previous]
    resolved = [p for k, p in previous.items() if k not in now]
    return new, resolved
