"""What each trigger of `guardianflow optimize` does once it fired (gfcore.automation.optimize decides): launch this
project's entry points from the champion's scenario, or promote. Each action launches through `on_filed`, which
adds every launched run to the decision's `runs` the moment it is filed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gfcore.automation import launcher
from gfcore.automation.facts import site_settings
from gfcore.automation.promotion import promote
from gfcore.config.automation import AutomationConfig
from gfcore.core.errors import GuardianFlowError
from gfcore.core.vocabulary import AUTOMATION_PROMOTE_REFUSED_AT


@dataclass
class Decision:
    trigger: str
    site: str
    model: str
    version: str | None
    reason: str  # why it fired, in words
    action: str  # what it runs, in words
    evidence: dict[str, Any] = field(default_factory=dict)
    launches: str = ""  # the entry points it launches (`mlflow run -e ...`), or what it does instead
    status: str = "planned"  # would run | launched | promoted | refused | failed | stopped: ... | skipped: ...
    runs: list[str] = field(default_factory=list)  # from the moment each is filed
    detail: str = ""



def _sweep(d: Decision, cfg: AutomationConfig, tags: dict[str, str], on_filed: launcher.Filed) -> None:
    trials = cfg.triggers.low_accuracy.trials
    run_id = launcher.champion_run(d.model, d.version)
    launcher.run_entry("sweep", run_id, ["sweep=optuna", f"hydra.sweeper.n_trials={trials}"], tags,
                       cfg.env_manager.value, on_filed=on_filed)
    d.status = "launched"


def _quant_infer(d: Decision, cfg: AutomationConfig, tags: dict[str, str], on_filed: launcher.Filed) -> None:
    run_id = launcher.champion_run(d.model, d.version)
    target = d.evidence["target_backend"]
    quant = launcher.run_entry("quant", run_id, [f"backend={target}", f"quant.source_run_id={run_id}"], tags,
                               cfg.env_manager.value, drop=("backend.", "quant."), on_filed=on_filed)
    launcher.run_entry("infer", run_id, [f"infer.source_run_id={quant}"], tags, cfg.env_manager.value,
                       drop=("backend.", "infer.model_uri", "infer.source_run_id"), on_filed=on_filed)
    d.status = "launched"


def _bigger_batch(d: Decision, cfg: AutomationConfig, tags: dict[str, str], on_filed: launcher.Filed) -> None:
    run_id = launcher.champion_run(d.model, d.version)
    sizes = ",".join(str(b) for b in d.evidence["batch_sizes"])
    launcher.run_entry("infer", run_id, [f"infer.source_run_id={run_id}", f"infer.batch_sizes=[{sizes}]"], tags,
                       cfg.env_manager.value, drop=("infer.",), on_filed=on_filed)
    d.status = "launched"


def _retrain(d: Decision, cfg: AutomationConfig, tags: dict[str, str], on_filed: launcher.Filed) -> None:
    newer = d.evidence.get("data_version_now")  # even when the champion's scenario pinned its own version
    overrides = [f"data.version={newer}"] if newer else []
    launcher.run_entry("train", launcher.champion_run(d.model, d.version), overrides, tags, cfg.env_manager.value,
                       drop=("data.version",) if newer else (), on_filed=on_filed)
    d.status = "launched"


def _challenge(d: Decision, cfg: AutomationConfig, tags: dict[str, str], on_filed: launcher.Filed) -> None:
    launcher.run_challenge(d.model, d.version, tags, cfg.env_manager.value, on_filed=on_filed)
    d.status = "launched"


def _promote(d: Decision, cfg: AutomationConfig, tags: dict[str, str], on_filed: launcher.Filed) -> None:
    gates = site_settings().get(d.site, {}).get("gates") or list(cfg.gates)
    d.evidence["gates"] = gates
    try:
        result = promote(d.model, version=d.version, requires=gates)
    except GuardianFlowError:
        import mlflow

        mlflow.MlflowClient().set_model_version_tag(d.model, d.version, AUTOMATION_PROMOTE_REFUSED_AT, str(time.time()))
        raise
    d.status, d.detail = "promoted", "; ".join(result.get("gates") or []) or "no gate"


ACTIONS = {"low_accuracy": _sweep, "high_latency": _quant_infer, "low_gpu_utilization": _bigger_batch,
            "data_changed": _retrain, "new_candidate": _challenge, "challenger_passes": _promote}
