"""The `full_pipeline` entry point's work: train, quantize for each backend, benchmark the trained model and
every variant, as child `mlflow run` steps nested under one parent run, each handed the run id of the step it
builds on. Finished steps with the same inputs are reused, so a rerun after a failure resumes where it
stopped."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore import backends
from gfcore.core.errors import ConfigError
from gfcore.core.paths import work_dir
from gfcore.core.vocabulary import (
    BEST_RUN_ID,
    BEST_VARIANT,
    DET_MAP50,
    DET_MAP50_95,
    PARENT_KINDS,
    PIPELINE,
    PIPELINE_REUSED,
    STEP_PREFIX,
    SYS_LATENCY_P50_MS,
    RunKind,
)
from gfcore.data.dataset import resolve_dataset
from gfcore.orchestration.results import Report, log_accuracy_vs_latency, pick_best, value, variant_row
from gfcore.orchestration.steps import UPSTREAM_PLACEHOLDER, Step, StepResult, compose_step, run_step
from gfcore.tracking.run import OwnedRun, owned_run

if TYPE_CHECKING:
    from gfcore.config.schema import Config

log = logging.getLogger(__name__)

# Overrides of the parents' own config sections, Hydra's and the scenario (given apart): ("pipeline.", "sweep.",
# "compare.", "hydra.", "scenario=").
ORCHESTRATION = (*(f"{kind.config_section}." for kind in PARENT_KINDS), "hydra.", "scenario=")


def full_pipeline(cfg: Config) -> float:
    """Returns the trained model's det.mAP50_95 as measured by its infer step."""
    scenario, overrides = child_arguments()
    dataset = resolve_dataset(cfg.data, cfg.task)
    if dataset.pin:  # an alias (`latest`) or a branch is resolved once: every step reads the same data
        key, value = ("data.version", dataset.pin.version) if dataset.pin.version else ("data.rev", dataset.pin.rev)
        overrides = [*(o for o in overrides if not o.lstrip("+~").startswith(f"{key}=")), f"{key}={value}"]
    if not cfg.pipeline.quant_backends:
        log.info("pipeline.quant_backends is empty: train and benchmark only")
    # Every step's config is composed (and each backend checked) before anything starts.
    train_step = Step("train", "train", scenario, overrides)
    train_step.device = str(compose_step(train_step).backend.device)
    devices = {"pytorch_fp32": train_step.device}  # the device each variant runs on, for a scheduler's request
    for backend in cfg.pipeline.quant_backends:
        quant = compose_step(Step(f"quant {backend}", "quant", scenario, [*overrides, f"backend={backend}"],
                                  UPSTREAM_PLACEHOLDER)).backend
        backends.check(quant)
        devices[backend] = str(quant.device)
    slurm = cfg.pipeline.slurm if cfg.pipeline.launcher.value == "slurm" else None

    with (owned_run(cfg, RunKind.pipeline, data_hash=dataset.hash, data_pin=dataset.pin) as run,
          work_dir("gf-pipeline-") as work):
        results: list[StepResult] = []

        def step(s: Step) -> StepResult:
            result = run_step(s, run.experiment_id, cfg.pipeline.env_manager.value, cfg.pipeline.use_cache,
                              work / "steps", slurm)
            results.append(result)
            run.set_tags({f"{STEP_PREFIX}{s.slug}": result.run_id})
            run.log_metrics({f"{PIPELINE}step_s.{s.slug}": round(result.wall_s, 2)})
            return result

        try:
            trained = step(train_step)
            variants = [("pytorch_fp32", trained.run_id)]
            for backend in cfg.pipeline.quant_backends:
                q = step(Step(f"quant {backend}", "quant", scenario, [*overrides, f"backend={backend}"],
                              trained.run_id, devices[backend]))
                variants.append((backend, q.run_id))
            benchmarks = [(variant, source, step(Step(f"infer {variant}", "infer", scenario, overrides, source,
                                                      devices[variant])))
                          for variant, source in variants]
        finally:
            reused = [r.step.name for r in results if r.reused]
            run.set_tags({PIPELINE_REUSED: ", ".join(reused) or "none"})
            run.log_metrics({f"{PIPELINE}steps": len(results), f"{PIPELINE}steps_reused": len(reused)})
        rows = _summary(run, benchmarks, work)
        log.info("pipeline: %d steps (%d reused: %s) in run %s", len(results), len(reused),
                 ", ".join(reused) or "none", run.run_id)
        return rows[0].get(DET_MAP50_95) or 0.0


def child_arguments() -> tuple[str, list[str]]:
    """The scenario and the user's overrides, as each child step gets them (orchestration keys left out)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        raise ConfigError("full_pipeline runs as a Hydra app: python -m guardianflow.full_pipeline [scenario=NAME] ...")
    hc = HydraConfig.get()
    scenario = hc.runtime.choices.get("scenario", "demo")
    return scenario, [o for o in hc.overrides.task if not o.startswith(ORCHESTRATION)]


def _summary(run: OwnedRun, benchmarks: list[tuple[str, str, StepResult]], work: Path) -> list[dict[str, Any]]:
    """One row per variant (its infer run's figures, the registered model it is), published on the parent."""
    import mlflow

    client = mlflow.MlflowClient()
    rows = []
    for variant, source_id, bench in benchmarks:
        row = variant_row(variant, client.get_run(bench.run_id), registered_by=client.get_run(source_id))
        infer_run_id = row.pop("run_id")
        rows.append({**row, "source_run_id": source_id, "infer_run_id": infer_run_id})
    best = pick_best(rows, DET_MAP50_95)
    Report("Pipeline results", rows, best, _sentence(rows, best), "pipeline_summary").publish(client, run.run_id,
                                                                                              work)
    if best is not None:
        run.set_tags({BEST_VARIANT: best["variant"], BEST_RUN_ID: best["infer_run_id"]})
    log_accuracy_vs_latency(client, run.run_id, rows, work / "plots" / "map_vs_latency.png")
    return rows


def _sentence(rows: list[dict[str, Any]], best: dict[str, Any] | None) -> str:
    """The most accurate variant, and the fastest one with what it costs in accuracy."""
    if best is None:
        return "No variant has detection figures."
    text = (f"Most accurate: **{best['variant']}** ({DET_MAP50_95} {best[DET_MAP50_95]:.3f}, {DET_MAP50} "
            f"{best[DET_MAP50]:.3f}).")
    fastest = pick_best(rows, SYS_LATENCY_P50_MS, maximize=False)
    if fastest is not None and fastest is not best and value(best, SYS_LATENCY_P50_MS):
        text += (f" Fastest: **{fastest['variant']}** at {fastest[SYS_LATENCY_P50_MS]:.2f} ms batch-1 p50, "
                 f"{best[SYS_LATENCY_P50_MS] / fastest[SYS_LATENCY_P50_MS]:.1f}x faster than {best['variant']}")
        delta = value(fastest, DET_MAP50_95)
        text += f", {DET_MAP50_95} {delta - best[DET_MAP50_95]:+.3f}." if delta is not None else "."
    elif fastest is best:
        text += " It is also the fastest."
    return text
