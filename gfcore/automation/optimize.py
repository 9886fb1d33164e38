"""`guardianflow optimize check|run`: triggers over the fleet's records, each launching this project's own entry
point (`mlflow run`) from the scenario that produced the model, with cooldowns kept in MLflow.

Triggers (low_accuracy -> a sweep, high_latency -> quant + infer, low_gpu_utilization -> infer, data_changed ->
retrain, new_candidate -> challenge, challenger_passes -> promote) are conf/automation/default.yaml's, each described
in docs/automation.md; a site's config gives its latency budget, target backend and gates.

Every launched run carries `automation.trigger`, `automation.model` and `automation.optimize_run_id`; a (trigger,
model) pair launches nothing while such a run is RUNNING or started within `cooldown_hours`. That state is the runs
themselves, so two machines running `optimize run` from cron agree. Each check or run is a run of experiment
`guardianflow/automation` listing what fired, the evidence, and what was launched or why not.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from gfcore.automation import launcher
from gfcore.automation.actions import ACTIONS, Decision
from gfcore.automation.facts import DataChange, Facts, site_settings
from gfcore.config.automation import AutomationConfig, TriggersConfig
from gfcore.config.compose import compose_root, to_container
from gfcore.core import interrupts
from gfcore.core.errors import GuardianFlowError
from gfcore.core.vocabulary import (
    AUTOMATION,
    AUTOMATION_CONFIG,
    AUTOMATION_LAUNCHED,
    AUTOMATION_MODE,
    AUTOMATION_MODEL,
    AUTOMATION_OPTIMIZE_RUN_ID,
    AUTOMATION_TRIGGER,
    CHALLENGE_CHAMPION_VERSION,
    CHALLENGE_RUN_ID,
    CHALLENGE_VERDICT,
    DATA_HASH,
    DATA_VERSION,
    DET_MAP50,
    DET_MAP50_95,
    EXP_TYPE,
    MAX_TAG_VALUE,
    NOTE_TAG,
    SOURCE_RUN_ID,
    SYS_GPU_UTILIZATION_PCT,
    RunKind,
)
from gfcore.fleet import queries
from gfcore.tracking.experiments import ensure_experiment
from gfcore.tracking.run import end_if_running

if TYPE_CHECKING:
    from gfcore.orchestration.launcher import Launched

log = logging.getLogger(__name__)

EXPERIMENT = "guardianflow/automation"
TRIGGERS = tuple(f.name for f in fields(TriggersConfig))  # low_accuracy, high_latency, ... challenger_passes
DESCRIPTION = ("**GuardianFlow's automatic actions** (`guardianflow optimize check|run`): one run per check or run, "
               "with the triggers that fired, their evidence, and the runs launched (tagged `automation.trigger`, "
               "`automation.optimize_run_id`) or why nothing was.")


@dataclass
class Outcome:
    decisions: list[Decision]
    run_id: str | None = None

    def launched(self) -> list[Decision]:
        return [d for d in self.decisions if d.runs]


def load_config(overrides: list[str] | None = None) -> AutomationConfig:
    """The automation config (conf/automation/default.yaml on its schema) with Hydra overrides; an unknown trigger or
    setting, or a value of the wrong type, is refused at composition."""
    return compose_root("automation", AutomationConfig, overrides or [])


# What each trigger's action launches, for the plan a person confirms before `optimize run` acts.
LAUNCHES = {"low_accuracy": "mlflow run -e sweep", "high_latency": "mlflow run -e quant, then -e infer",
            "low_gpu_utilization": "mlflow run -e infer", "data_changed": "mlflow run -e train",
            "new_candidate": "mlflow run -e challenge", "challenger_passes": "none (promote in the registry)"}


def optimize(cfg: AutomationConfig, launch: bool, model: str | None = None, record: bool = True,
             planned: list[Decision] | None = None) -> Outcome:
    """What fires now and, with `launch`, run it; `model` limits it to one registered model (and its variants), an
    unknown one is refused. `planned`: act on these decisions (a plan a person confirmed) instead of looking again;
    cooldowns and running launches are still checked as each one starts."""
    if planned is not None:
        decisions = [dataclasses.replace(d, status="planned", runs=[], detail="") for d in planned]
    else:
        decisions = fired(cfg, model)
    outcome = Outcome(decisions)
    run_id = _start_record(cfg, launch) if record else None
    outcome.run_id = run_id
    launched: list[str] = []  # "entry:run_id" of every run launched, in order

    def filed(d: Decision, run: Launched) -> None:
        """The record names each launched run while it runs, not only once it ended."""
        d.runs.append(run.run_id)
        launched.append(f"{run.entry}:{run.run_id}")
        if run_id:
            _name_launched(run_id, launched)

    try:
        # SIGTERM unwinds like Ctrl-C; whatever this started (each launch's `mlflow run` and what it started) is
        # stopped, also what a launch did not yet wait on; the launched runs and this record end KILLED.
        with interrupts.children_stopped_when_interrupted():
            for d in decisions:
                _carry_out(d, cfg, launch, run_id, lambda run, d=d: filed(d, run))
    except BaseException as exc:
        with interrupts.signals_held():
            stopped = isinstance(exc, KeyboardInterrupt)
            for d in decisions:
                if d.runs and d.status == "planned":
                    d.status = f"stopped: {interrupts.stop_reason(exc)}" if stopped else "failed"
                for rid in d.runs:
                    end_if_running(rid, "KILLED" if stopped else "FAILED", f"optimize run {run_id} was "
                                   + (interrupts.stop_reason(exc) if stopped else f"stopped: {type(exc).__name__}"))
            if run_id:
                _end_record(outcome, cfg, launch, "KILLED" if stopped else "FAILED")
        raise
    if run_id:
        _end_record(outcome, cfg, launch, "FAILED" if any(d.status == "failed" for d in decisions) else "FINISHED")
    return outcome


# -- what fires ----------------------------------------------------------------------------------------------


def fired(cfg: AutomationConfig, model: str | None = None) -> list[Decision]:
    """The triggers that fire now, over every registered model or only `model` (and its variants)."""
    if model is not None:
        check_model(model)
    facts, sites = Facts(), site_settings()
    rows = [r for r in queries.summary() if r.model and (model is None or r.model == model.split("__")[0])]
    decisions = []
    for row in rows:
        decisions += _fired(row, cfg, facts, sites.get(row.site, {}), model)
    return decisions


def check_model(name: str) -> None:
    """A `--model` that names no registered model is a mistake, not "nothing fired" (exit 2, with a did-you-mean)."""
    from gfcore.registry import client as registry

    registry.require_model(registry.mlflow_client(), name)


def _fired(row: Any, cfg: AutomationConfig, facts: Any, site: dict[str, Any], only: str | None) -> list[Decision]:
    triggers = {name for name in TRIGGERS if getattr(cfg.triggers, name).enabled is not False}
    out: list[Decision] = []

    def add(trigger: str, model: str, version: str | None, reason: str, action: str, **evidence: Any) -> None:
        if only is None or model == only or model.startswith(f"{only}__"):  # a model and its variants
            out.append(Decision(trigger, row.site, model, version, reason, action, evidence, LAUNCHES[trigger]))

    champion = row.champion
    if champion and "low_accuracy" in triggers:
        t = cfg.triggers.low_accuracy
        metric, threshold = t.metric, float(t.threshold)
        value = {DET_MAP50: row.det_mAP50, DET_MAP50_95: row.det_mAP50_95}.get(metric)
        if value is not None and value < threshold:
            add("low_accuracy", row.model, champion, f"champion v{champion} {metric} {value:.3f} < {threshold:g}",
                f"sweep (Optuna, {t.trials} trials) of the champion's scenario", metric=metric,
                value=value, threshold=threshold)
    budget = cfg.budgets_ms.get(row.site, site.get("latency_budget_ms"))
    if champion and "high_latency" in triggers and budget is not None and row.latency_p95_ms is not None \
            and row.latency_p95_ms > float(budget):
        target = cfg.target_backend or site.get("target_backend") or "openvino_int8"
        if row.deployed == f"__{target}":
            log.info("%s: over budget, but already served as %s: nothing to quantize", row.model, target)
        else:
            add("high_latency", row.model, champion, f"served as {row.deployed}: sys.latency_p95_ms "
                f"{row.latency_p95_ms:.2f} > the site's budget {float(budget):g} ms",
                f"quant to {target} + infer of champion v{champion}", value=row.latency_p95_ms, budget_ms=float(budget),
                target_backend=target)
    if champion and "low_gpu_utilization" in triggers:
        found = _gpu_utilization(facts, row)
        pct = float(cfg.triggers.low_gpu_utilization.pct)
        if found is not None and found[1] < pct:
            sizes = sorted({2 * b for b in found[2]}) or [2]
            add("low_gpu_utilization", row.model, champion, f"infer run {found[0]} kept the GPU {found[1]:.0f}% busy "
                f"(< {pct:g}%)", f"infer of champion v{champion} with batch sizes {sizes}", infer_run_id=found[0],
                gpu_utilization_pct=found[1], batch_sizes=sizes)
    if champion and "data_changed" in triggers:
        change = facts.data_change(row.model, champion)
        if change is not None and not _candidate_on(facts, row, change):
            add("data_changed", row.model, champion, f"champion v{champion} was trained on {change.describe()}",
                "retrain with the champion's scenario on the new data"
                + (f" ({change.now})" if change.version_now else ""), **change.evidence())
    for name in [row.model, *facts.variants(row.model)]:
        _candidate_triggers(name, triggers, facts, add, row.site)
    return out


def _candidate_triggers(model: str, triggers: set[str], facts: Any, add: Any, site: str) -> None:
    candidate, champion = facts.alias(model, "candidate"), facts.alias(model, "champion")
    if candidate is None or (champion is not None and candidate.version == champion.version):
        return
    version, against = str(candidate.version), str(champion.version) if champion else "none"
    tags = facts.version_tags(model, version)
    challenged = tags.get(CHALLENGE_CHAMPION_VERSION) == against and tags.get(CHALLENGE_RUN_ID)
    if not challenged and "new_candidate" in triggers:
        add("new_candidate", model, version, f"candidate v{version} has no challenge against "
            + (f"champion v{against}" if champion else "an empty field (no champion)"),
            f"challenge v{version}" + (f" against v{against}" if champion else ""), champion=against)
    elif challenged and tags.get(CHALLENGE_VERDICT) != "worse" and "challenger_passes" in triggers:
        add("challenger_passes", model, version, f"candidate v{version}'s challenge (run {tags[CHALLENGE_RUN_ID]}): "
            f"{tags.get(CHALLENGE_VERDICT)}", f"promote v{version} behind the gates", challenge_run_id=tags[CHALLENGE_RUN_ID],
            verdict=tags.get(CHALLENGE_VERDICT), champion=against)


def _gpu_utilization(facts: Any, row: Any) -> tuple[str, float, list[int]] | None:
    """The newest finished infer run of the champion that measured GPU utilisation, its figure and batch sizes."""
    mv = facts.alias(row.model, "champion")
    experiment = facts.experiments().get(row.site)
    if mv is None or experiment is None or not mv.run_id:
        return None
    runs = facts.client.search_runs([experiment], max_results=1, order_by=["attributes.end_time DESC"],
                                    filter_string=f"tags.`{SOURCE_RUN_ID}` = '{mv.run_id}' and tags.`{EXP_TYPE}` = "
                                                  f"'{RunKind.infer.value}' and attributes.status = 'FINISHED' and "
                                                  f"metrics.`{SYS_GPU_UTILIZATION_PCT}` >= 0")
    if not runs:
        return None
    run = runs[0]
    try:
        sizes = [int(b) for b in json.loads(run.data.params.get("infer.batch_sizes", "[1]"))]
    except (ValueError, TypeError):
        sizes = [1]
    return run.info.run_id, run.data.metrics[SYS_GPU_UTILIZATION_PCT], sizes


def _candidate_on(facts: Any, row: Any, change: DataChange) -> bool:
    """A candidate trained on the data as it is now already exists: retraining again would only repeat it."""
    mv = facts.alias(row.model, "candidate")
    if not (mv and mv.run_id):
        return False
    tags = facts.client.get_run(mv.run_id).data.tags
    if change.version_now:
        return tags.get(DATA_VERSION) == change.version_now
    return tags.get(DATA_HASH) == change.hash_now


# -- carrying it out --------------------------------------------------------------------------------------------


def _carry_out(d: Decision, cfg: AutomationConfig, launch: bool, run_id: str | None,
               on_filed: launcher.Filed) -> None:
    hours = float(cfg.cooldown_hours)
    blocked = launcher.blocked(d.trigger, d.model, hours) or (
        launcher.refused_recently(d.model, d.version, hours) if d.trigger == "challenger_passes" else None)
    if blocked:
        d.status = f"skipped: {blocked}"
        return
    if d.trigger == "challenger_passes" and not cfg.auto_promote:
        d.status = "skipped: automation.auto_promote is false (promote by hand, or set auto_promote=true)"
        return
    if not launch:
        d.status = "would run"
        return
    tags = {AUTOMATION_TRIGGER: d.trigger, AUTOMATION_MODEL: d.model, AUTOMATION_OPTIMIZE_RUN_ID: run_id or "none"}
    try:
        ACTIONS[d.trigger](d, cfg, tags, on_filed)
    except GuardianFlowError as exc:
        d.status, d.detail = ("refused" if d.trigger == "challenger_passes" else "failed"), str(exc)
        log.warning("optimize: %s for %s %s: %s", d.trigger, d.model, d.status, exc)


# -- the record ------------------------------------------------------------------------------------------------


def _start_record(cfg: AutomationConfig, launch: bool) -> str:
    import mlflow

    exp_id = ensure_experiment(EXPERIMENT, DESCRIPTION)
    run = mlflow.MlflowClient().create_run(exp_id, run_name=f"optimize-{'run' if launch else 'check'}",
                                           tags={EXP_TYPE: RunKind.optimize.value,
                                                 AUTOMATION_MODE: "run" if launch else "check",
                                                 AUTOMATION_CONFIG: json.dumps(to_container(cfg))[:MAX_TAG_VALUE]})
    return run.info.run_id


def _name_launched(rid: str, launched: list[str]) -> None:
    """While it runs, the record's name and tag say what it launched: optimize-run-launched-sweep-1f1ec1b8."""
    import mlflow

    client = mlflow.MlflowClient()
    client.set_tag(rid, AUTOMATION_LAUNCHED, ", ".join(launched)[:MAX_TAG_VALUE])
    names = "-".join(f"{entry}-{run[:8]}" for entry, _, run in (x.partition(":") for x in launched))
    client.update_run(rid, name=f"optimize-run-launched-{names}"[:250])


def _end_record(outcome: Outcome, cfg: AutomationConfig, launch: bool, status: str) -> None:
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    rid = outcome.run_id
    rows = [asdict(d) for d in outcome.decisions]
    launched = sum(len(d.runs) for d in outcome.decisions)
    client.log_dict(rid, rows, "decisions.json")
    if rows:
        columns = ("trigger", "site", "model", "version", "reason", "action", "status")
        client.log_table(rid, {c: [str(r[c]) for r in rows] for c in columns}, "decisions_table.json")
    now = int(time.time() * 1000)
    counts = {f"{AUTOMATION}fired": len(rows), f"{AUTOMATION}launched": launched,
              f"{AUTOMATION}skipped": sum(d.status.startswith("skipped") for d in outcome.decisions),
              f"{AUTOMATION}failed": sum(d.status in ("failed", "refused") for d in outcome.decisions)}
    client.log_batch(rid, metrics=[Metric(k, float(v), now, 0) for k, v in counts.items()])
    client.set_tag(rid, NOTE_TAG, describe(outcome, launch))
    client.update_run(rid, name=f"optimize-{'run' if launch else 'check'}-{len(rows)}-fired-{launched}-launched")
    client.set_terminated(rid, status)


def describe(outcome: Outcome, launch: bool) -> str:
    """The run's description: what fired, why, and what became of it."""
    if not outcome.decisions:
        return "**Nothing fired.**"
    lines = [f"**{len(outcome.decisions)} trigger(s) fired** ({'run' if launch else 'check: nothing launched'})", "",
             "| trigger | model | version | why | action | status | runs |", "|---|---|---|---|---|---|---|"]
    for d in outcome.decisions:
        status = d.status + (f": {d.detail}" if d.detail else "")
        lines.append(f"| {d.trigger} | {d.model} | {d.version or '-'} | {d.reason} | {d.action} | "
                     f"{status.replace('|', '/')} | {', '.join(d.runs) or '-'} |")
    return "\n".join(lines)
