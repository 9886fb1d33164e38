"""`guardianflow alerts list`: evaluate the alert rules on the fleet, record the evaluation as a run of experiment
`guardianflow/alerts` (the open alerts as a table, a JSON artifact and one tag each for the Grafana panel, counts
as metrics), and with `notify` send what is new or resolved since the last evaluation to the webhook.

The previous evaluation is the newest FINISHED run of the experiment: its `open_alerts.json` is what was open
then. Notification state is that run history, in MLflow, so two machines running the same cron job agree.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from gfcore.automation import rules as rule_kinds
from gfcore.automation import webhook
from gfcore.automation.facts import Facts, site_settings
from gfcore.config.automation import AlertsConfig
from gfcore.config.compose import compose_root
from gfcore.core.vocabulary import (
    ALERTS,
    ALERTS_DAYS,
    ALERTS_NOTIFICATION,
    ALERTS_NOTIFIED,
    EXP_TYPE,
    MAX_TAG_VALUE,
    NOTE_TAG,
    OPEN_ALERT,
    RunKind,
)
from gfcore.fleet import queries
from gfcore.tracking.experiments import ensure_experiment

log = logging.getLogger(__name__)

EXPERIMENT = "guardianflow/alerts"
OPEN_FILE = "open_alerts.json"
SENT_TAG = ALERTS_NOTIFIED  # "true" on an evaluation whose changes reached the webhook (or had none to send)
DESCRIPTION = ("**GuardianFlow's alert evaluations** (`guardianflow alerts list`): one run per evaluation, with "
               "the alerts open then (artifact `open_alerts.json`, table `open_alerts_table.json`), what was new or "
               "resolved since the evaluation before, and whether the webhook took it.")


@dataclass
class Evaluation:
    open: list[rule_kinds.Alert]
    new: list[rule_kinds.Alert]
    resolved: list[dict[str, Any]]
    run_id: str | None = None
    notified: dict[str, Any] = field(default_factory=dict)

    def worst(self) -> str | None:
        for severity in reversed(rule_kinds.SEVERITIES):
            if any(a.severity == severity for a in self.open):
                return severity
        return None


def load_rules(overrides: list[str] | None = None) -> AlertsConfig:
    """The alerts config (conf/alerts/default.yaml on its schema) with Hydra overrides such as
    `rules.low_accuracy.threshold=0.8`; a rule that cannot be evaluated is refused here."""
    cfg = compose_root("alerts", AlertsConfig, overrides or [])
    cfg.rules = rule_kinds.check_rules(cfg.rules)
    return cfg


def evaluate(cfg: AlertsConfig, notify: bool = False, record: bool = True, days: int = 30) -> Evaluation:
    """The open alerts now, what changed since the last recorded evaluation, recorded (and sent) as asked."""
    if notify:
        webhook.configured()  # a cron job without its URL fails now, not on the day something changes
    rows = queries.summary(days=days)
    current = rule_kinds.evaluate(rows, cfg.rules, cfg.budgets_ms, facts=Facts(),
                                  sites=site_settings())
    previous = _previous_open(notified=notify)
    new, resolved = rule_kinds.changes(previous, current)
    result = Evaluation(open=current, new=new, resolved=resolved)
    if notify:
        result.notified = {"sent": False, "changes": 0}
    if notify and (new or resolved):
        url, secret = webhook.configured()
        try:
            delivery = webhook.send(payload(result), url, secret)
            result.notified = {"sent": True, "changes": len(new) + len(resolved), "status": delivery.status,
                               "attempts": delivery.attempts}
        except Exception as exc:
            result.notified = {"error": str(exc)}
            if record:
                _record(result, days)
            raise
    if record:
        _record(result, days)
    return result


def payload(result: Evaluation) -> dict[str, Any]:
    """The webhook body: a plain `text` line per change, and the structured alerts."""
    lines = [f"[{a.severity}] NEW {a.message}" for a in result.new]
    lines += [f"[{r['severity']}] RESOLVED {r['message']}" for r in result.resolved]
    head = f"GuardianFlow: {len(result.new)} new, {len(result.resolved)} resolved, {len(result.open)} open alert(s)"
    return {"text": "\n".join([head, *lines]), "new": [a.as_dict() for a in result.new],
            "resolved": result.resolved, "open": [a.as_dict() for a in result.open]}


def describe(result: Evaluation) -> str:
    """The run's description (Markdown, what the MLflow UI shows first): the open alerts as a table, and the changes."""
    if not result.open:
        text = "**No open alerts.**"
    else:
        text = (f"**{len(result.open)} open alert(s)**\n\n| severity | rule | site | model | version | alert |\n"
                "|---|---|---|---|---|---|\n")
        text += "\n".join(f"| {a.severity} | {a.rule} | {a.site} | {a.model or '-'} | {a.version or '-'} | "
                          f"{a.message.replace('|', '/')} |" for a in result.open)
    changes = [f"- new: {a.message}" for a in result.new] + [f"- resolved: {r['message']}" for r in result.resolved]
    return text + ("\n\nSince the last evaluation:\n" + "\n".join(changes) if changes else
                   "\n\nNothing changed since the last evaluation.")


def _previous_open(notified: bool) -> dict[str, dict[str, Any]]:
    """What was open at the last evaluation; for a notification, at the last one whose changes were sent (an
    evaluation without --notify, or whose sending failed, does not count: its changes are sent next time)."""
    import mlflow

    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return {}
    client = mlflow.MlflowClient()
    wanted = "attributes.status = 'FINISHED'" + (f" and tags.`{SENT_TAG}` = 'true'" if notified else "")
    runs = client.search_runs([exp.experiment_id], filter_string=wanted, order_by=["attributes.start_time DESC"],
                              max_results=1)
    if not runs:
        return {}
    return {a["key"]: a for a in mlflow.artifacts.load_dict(f"runs:/{runs[0].info.run_id}/{OPEN_FILE}")}


def open_alert_tags(open_alerts: list[rule_kinds.Alert]) -> dict[str, str]:
    """One tag per open alert, `alerts.open_alert.0001` ... in the order listed, each a JSON object of the columns
    (severity, rule, site, task, model, version, message): what the Grafana panel of open alerts reads from the
    database, where the artifacts are out of reach. A long message is cut to fit a tag."""
    out = {}
    for i, a in enumerate(open_alerts, 1):
        row = {"severity": a.severity, "rule": a.rule, "site": a.site, "task": a.task, "model": a.model,
               "version": a.version, "message": a.message}
        text = json.dumps(row, ensure_ascii=False)
        while len(text) > MAX_TAG_VALUE:
            row["message"] = row["message"][:len(row["message"]) - (len(text) - MAX_TAG_VALUE) - 1] + "\u2026"
            text = json.dumps(row, ensure_ascii=False)
        out[f"{OPEN_ALERT}{i:04d}"] = text
    return out


def _record(result: Evaluation, days: int) -> None:
    import mlflow

    exp_id = ensure_experiment(EXPERIMENT, DESCRIPTION)
    client = mlflow.MlflowClient()
    run = client.create_run(exp_id, run_name=f"alerts-{len(result.open)}-open",
                            tags={EXP_TYPE: RunKind.alerts.value, ALERTS_DAYS: str(days),
                                  NOTE_TAG: describe(result), **open_alert_tags(result.open)})
    rid = run.info.run_id
    try:
        import time

        from mlflow.entities import Metric

        open_rows = [a.as_dict() for a in result.open]
        client.log_dict(rid, open_rows, OPEN_FILE)
        if open_rows:
            columns = ("severity", "rule", "site", "model", "version", "message")
            client.log_table(rid, {c: [r[c] for r in open_rows] for c in columns}, "open_alerts_table.json")
        counts = {f"{ALERTS}open.{s}": sum(a.severity == s for a in result.open) for s in rule_kinds.SEVERITIES}
        counts.update({f"{ALERTS}open": len(result.open), f"{ALERTS}new": len(result.new),
                       f"{ALERTS}resolved": len(result.resolved)})
        now = int(time.time() * 1000)
        client.log_batch(rid, metrics=[Metric(k, float(v), now, 0) for k, v in counts.items()])
        if result.notified:
            client.set_tag(rid, ALERTS_NOTIFICATION, json.dumps(result.notified))
            client.set_tag(rid, SENT_TAG, str("error" not in result.notified).lower())
        client.set_terminated(rid, "FAILED" if "error" in result.notified else "FINISHED")
    except BaseException:
        client.set_terminated(rid, "FAILED")
        raise
    result.run_id = rid
