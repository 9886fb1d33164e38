"""Child steps as MLflow Project runs of this project, nested under the active parent run, with a cache.

A step is an entry point with its scenario, overrides and the run it builds on. Before it is launched,
its key is computed from what decides its result: the entry point, the resolved config (without the
orchestration sections), the upstream run id (a part of the key of its own), the dataset's content hash and
the code version. A finished run in the experiment with the same key is reused instead of launched again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gfcore.core.codeversion import PROJECT, code_version
from gfcore.core.errors import ConfigError, StepError
from gfcore.orchestration.app import children_stopped_when_interrupted

log = logging.getLogger(__name__)

CACHE_TAG = "gf.cache_key"
UPSTREAM_PLACEHOLDER = "0" * 32  # stands for the upstream run id in a step's config while it is not known yet
# Orchestration settings do not change what a step computes, so they are not part of its key.
_NOT_IN_KEY = ("pipeline", "sweep", "compare")


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


def compose_step(step: Step) -> Any:
    """The typed config the step will run with; a bad option or value fails here, before anything starts."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return _composed(tuple(step.config_overrides()))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"step {step.name}: {str(exc).splitlines()[0]}") from None


@functools.lru_cache(maxsize=64)
def _composed(overrides: tuple[str, ...]) -> Any:
    """Composed once per process: the parent checks each step's config up front and keys it again later."""
    from gfcore.config import compose, to_typed

    return to_typed(compose(list(overrides)))


def step_key(step: Step) -> str:
    from dataclasses import replace

    from gfcore.config.compose import to_container

    # The upstream run id is a part of the key of its own, so the config is composed with the placeholder in its
    # place: the same composition as the up-front check, shared by every step of an entry point (the infer steps).
    cfg = compose_step(replace(step, source_run_id=UPSTREAM_PLACEHOLDER) if step.source_run_id else step)
    resolved = {k: v for k, v in to_container(cfg).items() if k not in _NOT_IN_KEY}
    blob = json.dumps({"entry": step.entry, "config": resolved, "upstream": step.source_run_id or "",
                       "data": _data_hash(cfg, resolved), "code": code_version()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


_data_hashes: dict[str, str] = {}  # every step of one pipeline shares its dataset: hashed once per process


def _data_hash(cfg: Any, resolved: dict[str, Any]) -> str:
    from gfcore.data.dataset import resolve_dataset

    key = json.dumps([resolved["data"], resolved["task"]["classes"]], sort_keys=True)
    if key not in _data_hashes:
        _data_hashes[key] = resolve_dataset(cfg.data, cfg.task).hash
    return _data_hashes[key]


def find_cached(experiment_id: str, key: str) -> str | None:
    import mlflow

    found = mlflow.MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`{CACHE_TAG}` = '{key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1)
    return found[0].info.run_id if found else None


def run_step(step: Step, experiment_id: str, env_manager: str, use_cache: bool, out_dir: Path,
             slurm: Any = None) -> StepResult:
    """Reuse a finished run with the step's key, or launch the step as a child `mlflow run` and wait: here, or
    inside a SLURM job sized by `slurm` (pipeline.slurm) when given."""
    import mlflow
    from mlflow.exceptions import ExecutionException

    start = time.perf_counter()
    key = step_key(step)
    if use_cache and (cached := find_cached(experiment_id, key)):
        log.info("step %s: reusing finished run %s (same config, upstream run, data and code)", step.name, cached)
        return StepResult(step, cached, True, time.perf_counter() - start)
    params = {"scenario": step.scenario,
              "overrides": " ".join([*step.overrides, f"hydra.run.dir={out_dir / step.slug}"])}
    if step.entry in ("quant", "infer"):
        params["source_run_id"] = step.source_run_id or ""
    log.info("step %s: mlflow run -e %s %s", step.name, step.entry, params)
    launched_ms = int(time.time() * 1000)
    try:
        # Stopped (SIGTERM, Ctrl-C), MLflow cancels the step: SIGTERM to the shell it started, then it marks the
        # run FAILED unless the step ended it KILLED itself. What MLflow cannot see is stopped here: a process
        # the shell left behind (an activated environment keeps the shell as the parent), and a run MLflow
        # created before its process started.
        if slurm is not None:
            from gfcore.orchestration.slurm_steps import run_in_job

            run_id = run_in_job(step, params, experiment_id, env_manager, slurm, out_dir / "slurm")
        else:
            with children_stopped_when_interrupted():
                run_id = mlflow.projects.run(str(PROJECT), entry_point=step.entry, parameters=params,
                                             experiment_id=experiment_id, env_manager=env_manager,
                                             synchronous=True).run_id
    except ExecutionException as exc:
        raise StepError(_failure_message(step, str(exc))) from None
    except KeyboardInterrupt as exc:
        _end_unfinished_step_runs(step, experiment_id, launched_ms, exc)
        raise
    mlflow.MlflowClient().set_tag(run_id, CACHE_TAG, key)
    return StepResult(step, run_id, False, time.perf_counter() - start)


def _end_unfinished_step_runs(step: Step, experiment_id: str, since_ms: int, exc: BaseException) -> None:
    """The step was stopped: its run, a child of the active run started since `since_ms`, ends KILLED if
    nothing ended it (its process is gone by now)."""
    import mlflow

    from gfcore.tracking.run import ERROR_TAG, PARENT_TAG, Terminated

    parent = mlflow.active_run()
    if parent is None:
        return
    try:
        client = mlflow.MlflowClient()
        unfinished = client.search_runs(
            [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}' and "
                                           f"attributes.status = 'RUNNING' and attributes.start_time >= {since_ms}")
        how = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        for run in unfinished:
            client.set_tag(run.info.run_id, ERROR_TAG, f"step {step.name} was stopped by {how} before it ended its run")
            client.set_terminated(run.info.run_id, "KILLED")
    except Exception as err:  # the store may be what is gone; the interruption goes on regardless
        log.warning("could not end the stopped step %s's run: %s", step.name, err)


def _failure_message(step: Step, text: str) -> str:
    import mlflow

    match = re.search(r"Run \(ID '([0-9a-f]+)'\)", text)
    detail = ""
    if match:
        run = mlflow.MlflowClient().get_run(match.group(1))
        detail = f" (run {match.group(1)}, {run.info.status}: {run.data.tags.get('gf.error', 'see its logs')})"
    return (f"step {step.name} failed{detail}. The steps before it finished and are kept: fix the cause and run the "
            "same command again to resume from this step.")
