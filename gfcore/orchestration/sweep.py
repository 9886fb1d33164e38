"""Sweeps: a Hydra multirun under one MLflow parent run that names the best child.

`SweepParent` is a Hydra callback (registered in conf/config.yaml, active only in multirun mode). When
the multirun starts it creates the parent run (or adopts `mlflow run`'s), and hands its id to every job
through GF_PARENT_RUN_ID, so each job's run, in this process (basic launcher) or another (joblib,
submitit), is a new nested child. When the multirun ends it picks the best child by `sweep.metric`, tags
`best.run_id` and `best.params`, logs `best.{metric}`, a results table and a chart, and ends the parent.
A job that fails is recorded FAILED and returns NaN to the sweeper, so the sweep goes on.

Each job registers its version without an alias (gfcore.registry.register); only the best job's version becomes
`candidate`, when the sweep ends, tagged `gf.sweep.best_of`. A sweep stopped or failed leaves `candidate` as it was.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from gfcore.config.compose import to_container, to_typed
from gfcore.config.schema import Config, ExpDesign
from gfcore.core.errors import ConfigError
from gfcore.core.paths import say_where_files_are
from gfcore.core.vocabulary import (
    BEST,
    BEST_PARAMS,
    BEST_RUN_ID,
    ERROR_TAG,
    EXP_DESIGN,
    EXP_TYPE,
    MAX_TAG_VALUE,
    PARENT_TAG,
    REGISTERED_MODEL,
    REGISTERED_VERSION,
    SWEEP,
    SWEEP_BEST_OF,
    SWEEP_JOB,
    SWEEP_METRIC,
    SWEEP_OVERRIDES,
    SWEEP_SPEC,
    SWEEP_TRIAL_OF,
    RunKind,
)
from gfcore.data.dataset import resolve_dataset
from gfcore.jobs.plots import metric_per_variant
from gfcore.orchestration.results import FIGURES, Report, variant_row
from gfcore.tracking.naming import experiment_name, free_run_name, run_name
from gfcore.tracking.params import config_params, run_tags
from gfcore.tracking.run import PARENT_ENV, end_run, ensure_experiment

log = logging.getLogger(__name__)

_open: dict[str, str] = {}  # the parent this process opened and has not ended yet: {"run_id": ...}
_ended: dict[str, str] = {}  # the parent this process summarised and ended: {"run_id": ...}


class SweepAborted(BaseException):
    """The sweep cannot go on: SweepParent could not open or end the parent run, or a launcher's jobs can never
    run (a SLURM request no node meets). Hydra turns an Exception raised in a callback into a warning and goes
    on (jobs without a parent, or a parent left RUNNING), so this is a BaseException: the sweep entry point ends
    the parent FAILED and exits non-zero. The original error is `__cause__`."""


class SweepParent(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _ended.pop("run_id", None)
        try:
            cfg = to_typed(_without_hydra(config))
            run_id = open_parent(cfg, _sweep_overrides(config))
        except Exception as exc:
            raise SweepAborted(f"the sweep's parent run could not be created: {exc}") from exc
        os.environ[PARENT_ENV] = run_id
        say_where_files_are(Path(str(config.hydra.sweep.dir)))
        # Jobs must start runs of their own: under `mlflow run`, MLFLOW_RUN_ID names the parent.
        os.environ.pop("MLFLOW_RUN_ID", None)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        run_id = os.environ.pop(PARENT_ENV, None)
        if run_id:
            try:
                cfg = to_typed(_without_hydra(config))
                summarise(run_id, cfg.sweep.metric, cfg.sweep.direction.value,
                          Path(config.hydra.sweep.dir), _base_overrides(config))
            except Exception as exc:
                raise SweepAborted(f"the sweep's results could not be summarised in run {run_id}: {exc}") from exc
            _ended["run_id"] = run_id


def check_overrides(args: list[str]) -> None:
    """Refuse, before anything starts, an override Hydra cannot parse as a value or a sweep."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-"):
            continue
        try:
            parser.parse_overrides([arg])
        except OverrideParseException as exc:
            said = exc.message.strip().splitlines()[0]
            raise ConfigError(f"the override {arg!r} is not a valid Hydra override or sweep ({said}). "
                              "Sweep a list with commas (train.lr0=0.001,0.01), a range with range(1,5), or "
                              "choice(...) / interval(a,b) with sweep=optuna.") from None


def open_parent(cfg: Config, sweep_spec: str) -> str:
    """Create the sweep's parent run in the site experiment, or adopt the one `mlflow run` created."""
    import mlflow

    client = mlflow.MlflowClient()
    dataset = resolve_dataset(cfg.data, cfg.task)
    tags = {**run_tags(cfg, RunKind.sweep, data_hash=dataset.hash, data_pin=dataset.pin), EXP_DESIGN: ExpDesign.sweep.value,
            SWEEP_SPEC: sweep_spec[:MAX_TAG_VALUE], SWEEP_METRIC: cfg.sweep.metric}
    env_run = os.environ.get("MLFLOW_RUN_ID")
    if env_run:
        run_id = env_run
        run = client.get_run(run_id)
        name = free_run_name(run.info.experiment_id, run_name(cfg, RunKind.sweep), run_id)
        if name != run.info.run_name:
            client.update_run(run_id, name=name)
    else:
        experiment = ensure_experiment(experiment_name(cfg.site))
        name = free_run_name(experiment, run_name(cfg, RunKind.sweep))
        run_id = client.create_run(experiment, run_name=name).info.run_id
    _open["run_id"] = run_id  # from here on, a sweep that is stopped or fails ends this run (end_open_parent)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    params = config_params(cfg)
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
    client.log_dict(run_id, to_container(cfg), "config/resolved.yaml")
    log.info("sweep parent run %s (%s, %s)", name, run_id, sweep_spec)
    return run_id


def summarise(parent: str, metric: str, direction: str, out_dir: Path, base_keys: set[str]) -> dict[str, Any]:
    """Name the best finished child, log the results table and chart, and end the parent."""
    import mlflow

    client = mlflow.MlflowClient()
    parent_run = client.get_run(parent)
    children = client.search_runs([parent_run.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'",
                                  order_by=["attributes.start_time ASC"], max_results=10000)
    rows = []
    for child in children:
        overrides = " ".join(_varied(child.data.tags.get(SWEEP_OVERRIDES, ""), base_keys))
        job = child.data.tags.get(SWEEP_JOB, "")
        value = child.data.metrics.get(metric)
        rows.append({**variant_row(f"#{job} {overrides}".strip(), child), "job": job, "params": overrides,
                     "status": child.info.status,
                     metric: value if value is not None and math.isfinite(value) else None})
    candidates = [r for r in rows if r["status"] == "FINISHED" and r[metric] is not None]
    best = (max if direction == "maximize" else min)(candidates, key=lambda r: r[metric]) if candidates else None
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = sum(r["status"] != "FINISHED" for r in rows)
    sentence = (f"Best of {len(rows)} jobs by {metric} ({direction}): **{best['variant']}** with {best[metric]:.4g} "
                f"(run {best['run_id']})" if best else f"No job finished with a value for {metric}")
    sentence += f"; {failed} failed." if failed else "."
    if best is not None:
        sentence += _choose_candidate(client, parent, best["run_id"])
    Report(f"Sweep over {parent_run.data.tags.get(SWEEP_SPEC, 'the config')}", rows, best, sentence,
           "sweep_results", "sweep").publish(client, parent, out_dir)
    if rows and candidates:
        chart = metric_per_variant([(r["variant"], r[metric]) for r in candidates], metric, best["variant"],
                                   out_dir / "sweep_chart.png")
        client.log_artifact(parent, str(chart), "plots")
    client.log_metric(parent, f"{SWEEP}children", len(rows))
    client.log_metric(parent, f"{SWEEP}failed", sum(r["status"] != "FINISHED" for r in rows))
    if best is not None:
        client.set_tag(parent, BEST_RUN_ID, best["run_id"])
        client.set_tag(parent, BEST_PARAMS, best["params"] or "(base config)")
        if metric not in FIGURES:  # the table's figures are logged as best.* already
            client.log_metric(parent, f"{BEST}{metric}", best[metric])
        log.info("sweep: best %s = %.4f in run %s (%s)", metric, best[metric], best["run_id"], best["params"])
        client.set_terminated(parent, "FINISHED")
    else:
        client.set_tag(parent, ERROR_TAG, f"no child finished with a value for {metric}")
        client.set_terminated(parent, "FAILED")
    _open.pop("run_id", None)
    return {"rows": rows, "best": best}


def _choose_candidate(client: Any, parent: str, best_run: str) -> str:
    """The best job's version (registered without an alias) becomes `candidate`; a sentence saying so. The job's
    run is tagged first: a version its journal registers later (after an outage) sees the tag and becomes the
    candidate then (gfcore.registry.register.replay_log_and_register), so neither order loses the choice."""
    from gfcore.registry.lifecycle import choose_candidate

    client.set_tag(best_run, SWEEP_BEST_OF, parent)
    tags = client.get_run(best_run).data.tags
    found = {(v.name, str(v.version)): v for v in client.search_model_versions(f"run_id = '{best_run}'")}
    if tags.get(REGISTERED_MODEL) and tags.get(REGISTERED_VERSION):  # a version whose source names no run
        found[(tags[REGISTERED_MODEL], tags[REGISTERED_VERSION])] = client.get_model_version(
            tags[REGISTERED_MODEL], tags[REGISTERED_VERSION])
    versions = [v for v in found.values() if (v.tags or {}).get(SWEEP_TRIAL_OF) == parent]
    for v in versions:
        before = choose_candidate(v.name, str(v.version), {SWEEP_BEST_OF: parent})
        log.info("sweep: %s version %s is now candidate (was %s)", v.name, v.version, before or "none")
    return "".join(f" {v.name} version {v.version} is now `candidate`." for v in versions)


def end_open_parent(status: str, reason: str) -> None:
    """End a parent this process opened but could not summarise (the multirun failed or was stopped), with
    every child of it still RUNNING: a job whose process was stopped before it could end its own run (a joblib
    worker is killed, not asked), or one this process was running when it was interrupted. Call it once the
    jobs' processes are gone, so that none of them ends its run after this."""
    run_id = _open.pop("run_id", None)
    if not run_id:
        return
    import mlflow

    while mlflow.active_run() is not None:  # a job of this process (basic launcher) interrupted mid-start
        end_run(status)
    client = mlflow.MlflowClient()
    parent = client.get_run(run_id)
    unfinished = client.search_runs([parent.info.experiment_id],
                                    filter_string=f"tags.`{PARENT_TAG}` = '{run_id}' and attributes.status = 'RUNNING'",
                                    max_results=10000)
    for child in unfinished:
        client.set_tag(child.info.run_id, ERROR_TAG,
                       f"this job did not end before its sweep stopped ({reason})"[:MAX_TAG_VALUE])
        client.set_terminated(child.info.run_id, status)
    if unfinished:
        log.info("sweep: %d unfinished job run(s) marked %s", len(unfinished), status)
    client.set_tag(run_id, ERROR_TAG, reason[:MAX_TAG_VALUE])
    client.set_terminated(run_id, status)


def ended_parent() -> Any:
    """The parent run (an mlflow Run) this process summarised and ended, or None: a sweep whose parent ended
    FAILED (no child finished with a value) exits non-zero."""
    run_id = _ended.get("run_id")
    if not run_id:
        return None
    import mlflow

    return mlflow.MlflowClient().get_run(run_id)


def record_failed_job(exc: BaseException, exp_type: str) -> None:
    """A job that failed before it had a run still shows in the sweep, as a FAILED child."""
    from hydra.core.hydra_config import HydraConfig

    parent = os.environ.get(PARENT_ENV)
    if parent:
        hc = HydraConfig.get()
        close_job(parent, hc.job.num, hc.overrides.task, "FAILED", f"{type(exc).__name__}: {exc}", exp_type)


def close_job(parent: str, num: int, overrides: list[str], status: str, reason: str,
              exp_type: str = RunKind.train.value, tags: dict[str, str] | None = None) -> None:
    """End job `num` of the sweep `parent` as `status` with `reason`: its run if it is still RUNNING (a job the
    scheduler cancelled or killed cannot end it itself), a child of its own if the job never made one. `tags` go
    on its runs either way (e.g. how the scheduler ended the job)."""
    import mlflow

    client = mlflow.MlflowClient()
    experiment = client.get_run(parent).info.experiment_id
    runs = client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent}' and tags.`{SWEEP_JOB}` = '{num}'")
    for run in runs:
        for key, value in (tags or {}).items():
            client.set_tag(run.info.run_id, key, value)
        if run.info.status in ("KILLED", "FAILED"):  # ended by its own signal handler: say who sent the signal
            said = run.data.tags.get(ERROR_TAG)
            client.set_tag(run.info.run_id, ERROR_TAG, (f"{said}: {reason}" if said else reason)[:MAX_TAG_VALUE])
        if run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, ERROR_TAG, reason[:MAX_TAG_VALUE])
            client.set_terminated(run.info.run_id, status)
    if runs:
        return
    run = client.create_run(experiment, run_name=f"sweep-job-{num}-{status.lower()}",
                            tags={PARENT_TAG: parent, EXP_TYPE: exp_type, SWEEP_JOB: str(num),
                                  SWEEP_OVERRIDES: " ".join(overrides)[:MAX_TAG_VALUE],
                                  ERROR_TAG: reason[:MAX_TAG_VALUE], **(tags or {})})
    client.set_terminated(run.info.run_id, status)


def job_objective(run_id: str | None, metric: str) -> float:
    """The value a sweeper optimises: the child's `sweep.metric` as logged (NaN if it has none)."""
    import mlflow

    if not run_id:
        return math.nan
    return float(mlflow.MlflowClient().get_run(run_id).data.metrics.get(metric, math.nan))


def _without_hydra(config: DictConfig) -> DictConfig:
    cfg = copy.deepcopy(config)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def _base_overrides(config: DictConfig) -> set[str]:
    """The keys every job shares a value for (not swept), left out of each child's `best.params`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    return {o.key_or_group for o in parsed if not o.is_sweep_override()}


def _varied(job_overrides: str, base_keys: set[str]) -> list[str]:
    """A job's overrides without the shared ones: the settings this child tried."""
    return [o for o in job_overrides.split() if o.split("=", 1)[0].lstrip("+~") not in base_keys]


def _sweep_overrides(config: DictConfig) -> str:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    spec = [o.input_line for o in parsed if o.is_sweep_override()]
    params = config.hydra.sweeper.get("params") or {}
    spec += [f"{k}={v}" for k, v in params.items()]
    return " ".join(spec)

