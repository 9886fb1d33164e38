"""The `compare` entry point's work: variants side by side under one parent run, one design at a time.

- architectures: train each model option with otherwise identical settings, then benchmark it;
- backends: quantize one train run (compare.source_run_id) for each backend, then benchmark each variant;
- datasets: benchmark one model (compare.model_uri or compare.source_run_id) on each site's data;
- run_ids: existing runs side by side, no new work.

New work runs as child `mlflow run` steps (cached like full_pipeline's). The parent logs a summary (CSV and
JSON), a chart, and tags the best variant by compare.metric.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

from gfcore import backends
from gfcore.config.schema import CompareConfig, Config, ExpDesign
from gfcore.core.errors import ConfigError
from gfcore.core.paths import work_dir
from gfcore.core.vocabulary import (
    BACKEND_NAME,
    BEST,
    BEST_RUN_ID,
    BEST_VARIANT,
    COMPARE,
    COMPARE_DESIGN,
    COMPARE_VARIANTS,
    EXP_TYPE,
    REGISTERED_MODEL,
    SOURCE_RUN_ID,
    STEP_PREFIX,
    RunKind,
)
from gfcore.data.dataset import resolve_dataset
from gfcore.jobs.plots import metric_per_variant
from gfcore.orchestration.pipeline import child_arguments
from gfcore.orchestration.results import FIGURES, Report, log_accuracy_vs_latency, pick_best, variant_row
from gfcore.orchestration.steps import UPSTREAM_PLACEHOLDER as PLACEHOLDER
from gfcore.orchestration.steps import Step, compose_step, run_step
from gfcore.tracking.run import OwnedRun, owned_run
from gfcore.tracking.source import finished_run

log = logging.getLogger(__name__)

DESIGNS = ("architectures", "backends", "datasets", "run_ids")


@dataclasses.dataclass
class Variant:
    label: str
    steps: list[Step]  # the last one is the benchmark (infer); empty for run_ids


def compare(cfg: Config) -> float:
    """Returns the best variant's compare.metric (NaN when none has it)."""
    design, values = chosen_design(cfg.compare)
    scenario, overrides = child_arguments()
    overrides = [*overrides, "exp.design=comparison"]
    variants = [] if design == "run_ids" else _plan(design, values, cfg.compare, scenario, overrides)
    if design == "run_ids":
        _check_runs(values)
    dataset = resolve_dataset(cfg.data, cfg.task)
    cfg = dataclasses.replace(cfg, exp=dataclasses.replace(cfg.exp, design=ExpDesign.comparison))

    with owned_run(cfg, RunKind.compare, data_hash=dataset.hash, data_pin=dataset.pin,
                   extra_tags={COMPARE_DESIGN: design, COMPARE_VARIANTS: ",".join(values)}) as run, \
            work_dir("gf-compare-") as work:
        if design == "run_ids":
            rows = [_row(run_id, run_id) for run_id in values]
        else:
            rows = [_run_variant(run, v, cfg, work) for v in variants]
        best = _report(run, rows, cfg.compare, work)
        return best


def chosen_design(c: CompareConfig) -> tuple[str, list[str]]:
    chosen = [(d, list(getattr(c, d))) for d in DESIGNS if getattr(c, d)]
    if len(chosen) != 1:
        given = ", ".join(d for d, _ in chosen) or "none"
        raise ConfigError(f"compare needs exactly one design with a non-empty list of variants (given: {given}): set "
                          "one of compare.architectures=[yolov8n,yolo11n], compare.backends=[onnx_int8,openvino_int8], "
                          "compare.datasets=[demo,/data/site2/data.yaml] or compare.run_ids=[ID1,ID2].")
    return chosen[0]


def _plan(design: str, values: list[str], c: CompareConfig, scenario: str, overrides: list[str]) -> list[Variant]:
    """Every variant's steps, with every config composed (and every backend checked) before anything starts."""
    variants = []
    for value in values:
        if design == "architectures":
            train = Step(f"train {value}", "train", scenario, [*overrides, f"model={value}"])
            steps = [train, Step(f"infer {value}", "infer", scenario, train.overrides, PLACEHOLDER)]
        elif design == "backends":
            source = _need_source(c, "compare.backends")
            quant = Step(f"quant {value}", "quant", scenario, [*overrides, f"backend={value}"], source)
            steps = [quant, Step(f"infer {value}", "infer", scenario, overrides, PLACEHOLDER)]
        else:
            model = [f"infer.model_uri={c.model_uri}"] if c.model_uri else []
            source = None if c.model_uri else _need_source(c, "compare.datasets")
            steps = [Step(f"infer {_data_label(value)}", "infer", scenario,
                          [*overrides, *_data_overrides(value), *model], source)]
        for step in steps:
            typed = compose_step(step)
            if step.entry == "quant":
                backends.check(typed.backend)
        variants.append(Variant(_data_label(value) if design == "datasets" else value, steps))
    return variants


def _need_source(c: CompareConfig, design: str) -> str:
    if not c.source_run_id:
        raise ConfigError(f"{design} needs the model to start from: set compare.source_run_id=RUN_ID (a train run)"
                          + (" or compare.model_uri=models:/NAME@alias" if design == "compare.datasets" else "") + ".")

    finished_run(c.source_run_id)
    return c.source_run_id


def _data_overrides(value: str) -> list[str]:
    """A data option (e.g. demo) or the path of a YOLO data yaml."""
    if value.endswith((".yaml", ".yml")):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"compare.datasets: {value} is not a file; give data options (e.g. demo) or paths of "
                              "YOLO data yamls.")
        return ["data=yolo", f"data.path={path.resolve()}", f"data.name={_data_label(value)}"]
    return [f"data={value}"]


def _data_label(value: str) -> str:
    return Path(value).parent.name if value.endswith((".yaml", ".yml")) else value


def _check_runs(run_ids: list[str]) -> None:
    for run_id in run_ids:
        finished_run(run_id)


def _run_variant(parent: OwnedRun, variant: Variant, cfg: Config, work: Path) -> dict[str, Any]:
    upstream = None
    for step in variant.steps:
        if step.source_run_id == PLACEHOLDER:
            step = dataclasses.replace(step, source_run_id=upstream)
        result = run_step(step, parent.experiment_id, cfg.pipeline.env_manager.value, cfg.pipeline.use_cache,
                          work / "steps")
        parent.set_tags({f"{STEP_PREFIX}{step.slug}": result.run_id})
        upstream = result.run_id
    return _row(variant.label, upstream)


def _row(label: str, run_id: str) -> dict[str, Any]:
    """A variant's figures from its benchmark run (or, for run_ids, whatever run was named)."""
    import mlflow

    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    source = run.data.tags.get(SOURCE_RUN_ID)
    registered_by = None
    if not run.data.tags.get(REGISTERED_MODEL) and source:
        registered_by = _run_or_none(client, source)
    row = variant_row(label, run, registered_by)
    return {"variant": label, "backend": run.data.tags.get(BACKEND_NAME), EXP_TYPE: run.data.tags.get(EXP_TYPE),
            **row, "source_run_id": source}


def _run_or_none(client: Any, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        return None


def _report(run: OwnedRun, rows: list[dict[str, Any]], c: CompareConfig, work: Path) -> float:
    import mlflow

    client = mlflow.MlflowClient()
    metric = c.metric
    for r in rows:  # a metric the table has no column for comes from the runs themselves
        if metric not in r:
            r[metric] = client.get_run(r["run_id"]).data.metrics.get(metric)
    best = pick_best(rows, metric, c.direction.value == "maximize")
    scored = [r for r in rows if r[metric] is not None and math.isfinite(r[metric])]
    sentence = (f"Best by {metric} ({c.direction.value}): **{best['variant']}** with {best[metric]:.4g} "
                f"(run {best['run_id']}), of {len(rows)} variants." if best else
                f"No variant has {metric}: no best named.")
    Report(f"Comparison of {len(rows)} variants", rows, best, sentence, "compare_summary").publish(
        client, run.run_id, work)
    if scored:
        chart = metric_per_variant([(r["variant"], r[metric]) for r in scored], metric,
                                   best["variant"] if best else None, work / "plots" / "compare_metric.png")
        client.log_artifact(run.run_id, str(chart), "plots")
    log_accuracy_vs_latency(client, run.run_id, rows, work / "plots" / "map_vs_latency.png")
    if best is None:
        log.warning("compare: no variant has %s; no best named", metric)
        return math.nan
    run.set_tags({BEST_RUN_ID: best["run_id"], BEST_VARIANT: best["variant"]})
    run.log_metrics({f"{COMPARE}variants": len(rows),
                     **({} if metric in FIGURES else {f"{BEST}{metric}": best[metric]})})
    log.info("compare: best %s = %.4f: %s (run %s)", metric, best[metric], best["variant"], best["run_id"])
    return best[metric]
