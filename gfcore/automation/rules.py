"""Alert rules over the fleet's state: each rule is a kind with its settings (Hydra config, `conf/alerts/`), evaluated
against the `metrics summary` rows (gfcore.fleet.queries) and the site's own budgets.

An alert is identified by (rule, model, version): the same condition on the same version is the same alert from
one evaluation to the next, which is what lets `--notify` send only what is new or resolved.

Kinds (settings in brackets):
- champion_below [metric, threshold]: the champion's figure on its evaluation split is below the threshold: a
  summary figure (det.mAP50, ...), or one of its run at the site's operating confidence or per class
  (`det.op.recall.helmet`, `det.op.f1`, `det.ap50_95.vest`: gfcore.fleet.figures). A per-class rule judges the
  champions whose task has that class; one that names a class no champion's task has is refused with the close
  names. A champion without the figure recorded gets an alert that says so, since the rule cannot judge it;
- latency_over_budget [metric, budget_ms]: the served variant's latency is above the site's budget
  (`site.latency_budget_ms` of the site's config, else `budget_ms` of the rule);
- candidate_worse: the candidate's challenge against the current champion has the verdict `worse`;
- tracking_drop [metric, max_drop]: the served champion's HOTA (or IDF1) is more than `max_drop` below the
  previous champion's (its `rollback`);
- failed_runs [hours]: runs of the site ended FAILED in the last hours (without `hours`: the summary's days);
- stale_champion [days, data_changed]: the champion became champion more than `days` ago, or (with
  `data_changed`) the data of the scenario it was trained on changed since (a newer pushed version, named with
  what changed, or a different hash now).

A site's config (`conf/site/*.yaml`) can change any rule's settings for that site under `alerts`, e.g.
`alerts: {low_accuracy: {threshold: 0.85}}`. A rule is a RuleConfig and a site's settings of it RuleSettings
(gfcore.config.automation); plain dicts of the same keys are read as those. The kinds that need more than the
summary's rows read it through gfcore.automation.facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any

from gfcore.config.automation import RuleConfig, RuleSettings
from gfcore.config.enums import RuleKind, Severity
from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import (
    CHALLENGE_CHAMPION_VERSION,
    CHALLENGE_REASONS,
    CHALLENGE_RUN_ID,
    CHALLENGE_VERDICT,
    DET_MAP50,
    DET_MAP50_95,
    DET_OP,
    MOT_HOTA,
    MOT_IDF1,
    SYS_LATENCY_P50_MS,
    SYS_LATENCY_P95_MS,
)
from gfcore.fleet import figures

SEVERITIES = tuple(s.value for s in Severity)  # mildest first
KINDS = tuple(k.value for k in RuleKind)
_SETTINGS = ("kind", *(f.name for f in fields(RuleSettings)))
_NEEDS = {"champion_below": "threshold", "tracking_drop": "max_drop", "stale_champion": "days"}
_NEEDS_FACTS = ("candidate_worse", "tracking_drop")
_ROW_FIGURES = {DET_MAP50: "det_mAP50", DET_MAP50_95: "det_mAP50_95", SYS_LATENCY_P50_MS: "latency_p50_ms",
                SYS_LATENCY_P95_MS: "latency_p95_ms", MOT_HOTA: "hota", MOT_IDF1: "idf1"}


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
    task: str | None = None  # the site model's task (the summary row's), which dashboards filter on

    @property
    def key(self) -> str:
        return f"{self.rule}|{self.model or self.site}|{self.version or '-'}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "key": self.key}


def check_rules(rules: Mapping[str, RuleConfig | Mapping[str, Any]]) -> dict[str, RuleConfig]:
    """The rules as RuleConfig; a rule set that cannot be evaluated is refused, naming the rule and what to write
    instead."""
    return {name: _checked(name, rule) for name, rule in rules.items()}


def _checked(name: str, rule: RuleConfig | Mapping[str, Any]) -> RuleConfig:
    if not isinstance(rule, RuleConfig):
        unknown = sorted(set(rule) - set(_SETTINGS))
        if unknown:
            raise ConfigError(f"alerts.rules.{name}: {', '.join(unknown)} is not a setting of a rule; the settings "
                              f"are {', '.join(_SETTINGS)}.")
        rule = RuleConfig(**{"kind": None, **rule})
    kind, severity = _plain(rule.kind), _plain(rule.severity)
    if kind not in KINDS:
        raise ConfigError(f"alerts.rules.{name}: kind {kind!r} is not one of {', '.join(KINDS)}.")
    if severity not in SEVERITIES:
        raise ConfigError(f"alerts.rules.{name}: severity {severity!r} is not one of {', '.join(SEVERITIES)}.")
    metric = rule.metric
    if kind == "champion_below" and metric not in _ROW_FIGURES:
        _check_figure(name, metric)
    if kind == "latency_over_budget" and metric not in _ROW_FIGURES:
        raise ConfigError(f"alerts.rules.{name}: metric {metric!r} is not a champion figure the fleet summary "
                          f"has; use one of {', '.join(_ROW_FIGURES)}.")
    if kind == "tracking_drop" and metric not in (MOT_HOTA, MOT_IDF1):
        raise ConfigError(f"alerts.rules.{name}: metric {metric!r}: a tracking drop compares mot.hota or mot.idf1.")
    if kind in _NEEDS and getattr(rule, _NEEDS[kind]) is None:
        raise ConfigError(f"alerts.rules.{name}: a {kind} rule needs {_NEEDS[kind]}.")
    return replace(rule, kind=RuleKind(kind), severity=Severity(severity))


def _check_figure(name: str, metric: Any) -> None:
    """Refuse a champion_below metric that is neither a summary figure nor of the operating-point / per-class forms
    (with the close names), and the miss counts, of which fewer is better."""
    parts = figures.split(metric)
    if parts is None:
        close = [*_ROW_FIGURES, *(f"{DET_OP}{s}" for s in figures.OP_STATS)]
        if str(metric).count(".") >= 2:  # the last part may be a class: `det.op.recal.helmet`
            tail = str(metric).rsplit(".", 1)[-1]
            close += [*(f"{DET_OP}{s}.{tail}" for s in figures.OP_STATS), f"{figures.DET_AP_CLASS}{tail}"]
        raise ConfigError(f"alerts.rules.{name}: metric {metric!r} is not a champion figure the fleet summary has"
                          f"{figures.did_you_mean(str(metric), close)}; use one of {', '.join(_ROW_FIGURES)}, or "
                          f"{figures.FORMS} (e.g. {DET_OP}recall.helmet).")
    if parts[0] == f"{DET_OP}missed":
        recall = f"{DET_OP}recall" + (f".{parts[1]}" if parts[1] else "")
        raise ConfigError(f"alerts.rules.{name}: metric {metric!r} counts missed objects (fewer is better), so "
                          f"champion_below would fire when few are missed; judge {recall} instead.")


def _check_class(name: str, metric: str, known: set[str]) -> None:
    """Refuse a per-class figure whose class no champion's task has (`task.classes` of their runs), where those are
    known, naming the close ones."""
    parts = figures.split(metric)
    if parts is None or parts[1] is None or not known or parts[1] in known:
        return
    hint = figures.did_you_mean(parts[1], sorted(known), spelled=f"{parts[0]}.{{}}")
    raise ConfigError(f"alerts.rules.{name}: metric {metric!r} names the class {parts[1]!r}, which no champion's task "
                      f"has{hint}; their classes are {', '.join(sorted(known))}.")


def _plain(value: Any) -> Any:
    """An enum's value (the composed config holds enums, a plain dict strings)."""
    return value.value if isinstance(value, Enum) else value


def _for_site(name: str, rule: RuleConfig, given: RuleSettings | Mapping[str, Any] | None) -> RuleConfig:
    """The rule with the settings a site's config gives it over its own (a site's RuleSettings: those it sets)."""
    if not given:
        return rule
    if isinstance(given, RuleSettings):
        given = {k: v for k, v in asdict(given).items() if v is not None}
    return _checked(name, {**asdict(rule), **given})


def evaluate(rows: list[Any], rules: Mapping[str, RuleConfig | Mapping[str, Any]],
             budgets: Mapping[str, float] | None = None, facts: Any = None,
             sites: dict[str, dict[str, Any]] | None = None) -> list[Alert]:
    """The alerts open now. `rows` are `metrics summary` rows (SiteModel); `budgets` latency budgets in ms per site
    (customer/region-plant/zone) given on the command line; `sites` each site's settings from its config
    (gfcore.automation.facts.site_settings); `facts` the MLflow lookups of the kinds that need them (without it,
    those kinds are not evaluated)."""
    sites = sites or {}
    known = {c for row in rows for c in (getattr(row, "classes", None) or ())}  # the champions' tasks' classes
    alerts: list[Alert] = []
    for name, base in check_rules(rules).items():
        if base.kind.value in _NEEDS_FACTS and facts is None:
            continue
        for row in rows:
            site = sites.get(row.site, {})
            rule = _for_site(name, base, (site.get("alerts") or {}).get(name))
            if rule.enabled is False:
                continue
            if rule.kind is RuleKind.champion_below:
                _check_class(name, rule.metric, known)
            budget = (budgets or {}).get(row.site, site.get("latency_budget_ms"))
            alert = _KIND[rule.kind.value](name, rule, row, _Context(budget, facts))
            if alert is not None:
                alerts.append(alert)
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(alerts, key=lambda a: (order[a.severity], a.site, a.rule, a.model or ""))


@dataclass
class _Context:
    budget_ms: float | None  # the site's latency budget, where one is set
    facts: Any


def _new(name: str, rule: RuleConfig, row: Any, message: str, version: str | None = None,
         **evidence: Any) -> Alert:
    """An alert about the row's champion version (or, with `version=None` given by a site rule, its site)."""
    return Alert(rule=name, kind=rule.kind.value, severity=rule.severity.value, site=row.site,
                 model=row.model, version=version, message=message, evidence=evidence,
                 task=getattr(row, "task", None))


def _champion_below(name: str, rule: RuleConfig, row: Any, ctx: _Context) -> Alert | None:
    metric, threshold = rule.metric, float(rule.threshold)
    if row.champion is None:
        return None
    if metric in _ROW_FIGURES:
        value = getattr(row, _ROW_FIGURES[metric])
    else:
        cls, recorded = figures.split(metric)[1], getattr(row, "figures", None) or {}
        classes = getattr(row, "classes", None)
        if cls is not None and classes and cls not in classes:
            return None  # a champion of another task (a fire detector has no helmet)
        value = recorded.get(metric)
        if value is None:
            why = f", or its evaluation split has no {cls}" if cls else ""
            return _new(name, rule, row, f"{row.model} v{row.champion}: the champion's run has no {metric} recorded"
                        f"{figures.did_you_mean(metric, recorded)}, so {name} cannot judge it (it was measured "
                        f"before operating-point figures were recorded{why})", version=row.champion, metric=metric,
                        value=None, threshold=threshold, missing=True)
    if value is None or value >= threshold:
        return None
    return _new(name, rule, row, f"{row.model} v{row.champion}: champion {metric} {value:.3f} < {threshold:g}"
                f"{f' (on {row.eval_split})' if row.eval_split else ''}", version=row.champion, metric=metric,
                value=value, threshold=threshold)


def _latency_over_budget(name: str, rule: RuleConfig, row: Any, ctx: _Context) -> Alert | None:
    metric = rule.metric
    budget = ctx.budget_ms if ctx.budget_ms is not None else rule.budget_ms
    value = getattr(row, _ROW_FIGURES[metric])
    if row.champion is None or budget is None or value is None or value <= float(budget):
        return None
    return _new(name, rule, row, f"{row.model} v{row.champion} served as {row.deployed}: {metric} {value:.2f} ms > "
                f"the site's budget {float(budget):g} ms", version=row.champion, metric=metric, value=value,
                budget_ms=float(budget), deployed=row.deployed)


def _candidate_worse(name: str, rule: RuleConfig, row: Any, ctx: _Context) -> Alert | None:
    if row.model is None or row.candidate is None or row.champion is None:
        return None
    tags = ctx.facts.version_tags(row.model, row.candidate)
    if tags.get(CHALLENGE_VERDICT) != "worse" or tags.get(CHALLENGE_CHAMPION_VERSION) != row.champion:
        return None  # no challenge, another verdict, or a challenge of an earlier champion
    return _new(name, rule, row, f"{row.model} candidate v{row.candidate} is worse than champion v{row.champion} "
                f"(challenge run {tags.get(CHALLENGE_RUN_ID)}: {tags.get(CHALLENGE_REASONS, 'see the run')})",
                version=row.candidate, champion=row.champion, challenge_run_id=tags.get(CHALLENGE_RUN_ID))


def _tracking_drop(name: str, rule: RuleConfig, row: Any, ctx: _Context) -> Alert | None:
    metric, max_drop = rule.metric, float(rule.max_drop)
    value = getattr(row, _ROW_FIGURES[metric])
    if row.model is None or row.champion is None or value is None:
        return None
    previous = ctx.facts.previous_tracking(row.site, row.model, row.deployed, metric)
    if previous is None or previous[1] is None or previous[1] - value <= max_drop:
        return None
    version, before = previous
    return _new(name, rule, row, f"{row.model} v{row.champion} served as {row.deployed}: {metric} {value:.3f}, "
                f"{before - value:.3f} below the previous champion's {before:.3f} (v{version}; allowed {max_drop:g})",
                version=row.champion, metric=metric, value=value, previous=before, previous_version=version,
                max_drop=max_drop)


def _failed_runs(name: str, rule: RuleConfig, row: Any, ctx: _Context) -> Alert | None:
    hours = rule.hours
    if hours is not None and ctx.facts is not None:
        runs, failed = ctx.facts.run_counts(float(hours)).get((row.site, row.task), (0, 0))
        window = f"in the last {float(hours):g} hours"
    else:
        runs, failed, window = row.runs, row.failed_runs, "in the summary's window"
    if not failed:
        return None
    task = f" {row.task}" if row.task else ""
    return _new(name, rule, row, f"{row.site}{task}: {failed} run(s) FAILED {window}", failed_runs=failed, runs=runs,
                **({"hours": float(hours)} if hours is not None else {}))


def _stale_champion(name: str, rule: RuleConfig, row: Any, ctx: _Context) -> Alert | None:
    days = float(rule.days)
    if row.champion is None:
        return None
    if row.champion_days is not None and row.champion_days > days:
        return _new(name, rule, row, f"{row.model} v{row.champion} has been champion for {row.champion_days:.0f} "
                    f"days (> {days:g})", version=row.champion, champion_days=row.champion_days, days=days)
    if rule.data_changed and ctx.facts is not None:
        change = ctx.facts.data_change(row.model, row.champion)
        if change is not None:
            return _new(name, rule, row, f"{row.model} v{row.champion} was trained on {change.describe()}",
                        version=row.champion, **change.evidence())
    return None


_KIND = {"champion_below": _champion_below, "latency_over_budget": _latency_over_budget,
         "candidate_worse": _candidate_worse, "tracking_drop": _tracking_drop, "failed_runs": _failed_runs,
         "stale_champion": _stale_champion}


def changes(previous: dict[str, dict[str, Any]], current: list[Alert]) -> tuple[list[Alert], list[dict[str, Any]]]:
    """(new alerts, resolved ones) between the previous evaluation's open alerts (by key) and now."""
    now = {a.key: a for a in current}
    new = [a for k, a in now.items() if k not in previous]
    resolved = [p for k, p in previous.items() if k not in now]
    return new, resolved
