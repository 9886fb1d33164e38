"""Child steps as MLflow Project runs of this project, nested under the active parent run, with a cache.

A step is an entry point with its scenario, overrides and the run it builds on. Before it is launched,
its key is computed from what decides its result: the entry point, the resolved config (without the
orchestration sections), the upstream run id (a part of the key of its own), the dataset's content hash and
the code version. A finished run in the experiment with the same key is reused instead of launched again; a train step's run with
the same key that did not finish (FAILED, KILLED, or RUNNING with its process gone) is resumed from its last
checkpoint, into that run (gfcore.jobs.resume), instead of trained again from the start.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore.config import compose, to_typed
from gfcore.config.compose import to_container
from gfcore.core.codeversion import code_version
from gfcore.core.errors import ConfigError, StepError
from gfcore.core.vocabulary import CACHE_KEY, ERROR_TAG, PARENT_KINDS, PARENT_TAG
from gfcore.data.dataset import resolve_dataset
from gfcore.jobs import resume as resuming
from gfcore.orchestration.launcher import LaunchFailed, launch
from gfcore.orchestration.slurm_steps import SlurmJob

if TYPE_CHECKING:
    from gfcore.config.cluster import SlurmStepsConfig
    from gfcore.config.schema import Config

log = logging.getLogger(__name__)

UPSTREAM_PLACEHOLDER = "0" * 32  # stands for the upstream run id in a step's config while it is not known yet
# Orchestration settings do not change what a step computes, so they are not part of its key.
_NOT_IN_KEY = tuple(kind.config_section for kind in PARENT_KINDS)  # ("pipeline", "sweep", "compare")


@dataclass
class Step:
    name: str  # what the parent calls it: "train", "quant openvino_int8", "infer openvino_int8"
    entry: str  # MLproject entry point
    scenario: str
    overrides: list[str] = field(default_factory=list)
    source_run_id: str | None = None
    device: str = "cpu"  # what the step runs on (an infer step: its variant's backend), for a scheduler's request

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)

    def config_overrides(self) -> list[str]:
        """What the child's Hydra sees, in the MLproject command's order."""
        src = [f"{self.entry}.source_run_id={self.source_run_id or ''}"] if self.entry in ("quant", "infer") else []
        return [f"scenario={self.scenario}", *src, *self.overrides]


@dataclass
class StepResult:
    step: Step
    run_id: str
    reused: bool
    wall_s: float


def compose_step(step: Step) -> Config:
    """The typed config the step will run with; a bad option or value fails here, before anything starts."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return _composed(tuple(step.config_overrides()))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"step {step.name}: {str(exc).splitlines()[0]}") from None


@functools.lru_cache(maxsize=64)
def _composed(overrides: tuple[str, ...]) -> Config:
    """Composed once per process: the parent checks each step's config up front and keys it again later."""
    return to_typed(compose(list(overrides)))


def step_key(step: Step) -> str:
    # The upstream run id is a part of the key of its own, so the config is composed with the placeholder in its
    # place: the same composition as the up-front check, shared by every step of an entry point (the infer steps).
    cfg = compose_step(replace(step, source_run_id=UPSTREAM_PLACEHOLDER) if step.source_run_id else step)
    resolved = {k: v for k, v in to_container(cfg).items() if k not in _NOT_IN_KEY}
    blob = json.dumps({"entry": step.entry, "config": resolved, "upstream": step.source_run_id or "",
                       "data": _data_hash(cfg, resolved), "code": code_version()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


_data_hashes: dict[str, str] = {}  # every step of one pipeline shares its dataset: hashed once per process


def _data_hash(cfg: Config, resolved: dict[str, Any]) -> str:
    key = json.dumps([resolved["data"], resolved["task"]["classes"]], sort_keys=True)
    if key not in _data_hashes:
        _data_hashes[key] = resolve_dataset(cfg.data, cfg.task).hash
    return _data_hashes[key]


def find_cached(experiment_id: str, key: str) -> str | None:
    import mlflow

    found = mlflow.MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`{CACHE_KEY}` = '{key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1)
    return found[0].info.run_id if found else None


def find_resumable(experiment_id: str, key: str, step: Step) -> str | None:
    """The latest unfinished run of train step `step` (its key) that can resume from its checkpoint, or None."""
    import mlflow

    found = mlflow.MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`{CACHE_KEY}` = '{key}' and attributes.status != 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if not found:
        return None
    run_id = found[0].info.run_id
    cfg = compose_step(step)
    why = resuming.resumable(run_id, cfg, _data_hash(cfg, to_container(cfg)))
    if why:
        log.info("step %s: its unfinished run %s is not resumed, the step runs anew: %s", step.name, run_id, why)
        return None
    return run_id


def run_step(step: Step, experiment_id: str, env_manager: str, use_cache: bool, out_dir: Path,
             slurm: SlurmStepsConfig | None = None) -> StepResult:
    """Reuse a finished run with the step's key, or launch the step as a child `mlflow run` and wait
    (gfcore.orchestration.launcher, which also stops it and ends its run KILLED when the pipeline is stopped):
    here, or inside a SLURM job sized by `slurm` (pipeline.slurm) when given."""
    import mlflow

    start = time.perf_counter()
    key = step_key(step)
    if use_cache and (cached := find_cached(experiment_id, key)):
        log.info("step %s: reusing finished run %s (same config, upstream run, data and code)", step.name, cached)
        return StepResult(step, cached, True, time.perf_counter() - start)
    params = {"scenario": step.scenario,
              "overrides": " ".join([*step.overrides, f"hydra.run.dir={out_dir / step.slug}"])}
    if step.entry in ("quant", "infer"):
        params["source_run_id"] = step.source_run_id or ""
    tags = {CACHE_KEY: key}  # from the start: a rerun finds the run of a step that did not finish
    resumed = find_resumable(experiment_id, key, step) if use_cache and step.entry == "train" else None
    if resumed:
        params["resume_run_id"] = resumed
        if (parent := mlflow.active_run()) is not None:  # the run moves under the pipeline that finishes it
            tags[PARENT_TAG] = parent.info.run_id
        log.info("step %s: resuming its unfinished run %s from its last checkpoint", step.name, resumed)
    log.info("step %s: mlflow run -e %s %s", step.name, step.entry, params)
    job = None if slurm is None else SlurmJob(slurm, out_dir / "slurm" / step.slug, f"gf-{step.slug}",
                                              f"step {step.name}", step.device)
    try:
        run_id = launch(step.entry, params, experiment_id=experiment_id, env_manager=env_manager, slurm=job,
                        tags=tags, run_id=resumed).run_id
    except LaunchFailed as exc:
        raise StepError(_failure_message(step, exc.run_id)) from None
    return StepResult(step, run_id, False, time.perf_counter() - start)


def _failure_message(step: Step, run_id: str | None) -> str:
    import mlflow

    detail = ""
    if run_id:
        run = mlflow.MlflowClient().get_run(run_id)
        detail = f" (run {run_id}, {run.info.status}: {run.data.tags.get(ERROR_TAG, 'see its logs')})"
    return (f"step {step.name} failed{detail}. The steps before it finished and are kept: fix the cause and run the "
            "same command again to resume from this step.")
