"""How automation launches work: this project's entry points as `mlflow run`, from the scenario a model's run
logged, filed in that run's experiment and tagged with what launched them; and the cooldown that those tags make.

A run's scenario is handed on as `scenario=<its preset>` plus one `++key=value` override per value of its logged
`config/resolved.yaml` that differs from that preset today, so the launched run's params show exactly what was
carried over.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore.config import compose, searchpath
from gfcore.config.compose import to_container
from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import (
    AUTOMATION_MODEL,
    AUTOMATION_PROMOTE_REFUSED_AT,
    AUTOMATION_TRIGGER,
)
from gfcore.orchestration.launcher import launch

if TYPE_CHECKING:
    from gfcore.orchestration.launcher import Launched

HOUR_MS = 3_600_000
_BARE = re.compile(r"^[A-Za-z_/][\w./\-@:]*$")


def blocked(trigger: str, model: str, cooldown_hours: float) -> str | None:
    """Why (trigger, model) may not launch now: a run it launched is still RUNNING, or started inside the cooldown."""
    import mlflow

    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.`{AUTOMATION_TRIGGER}` = '{trigger}' and tags.`{AUTOMATION_MODEL}` = '{model}'",
                              order_by=["attributes.start_time DESC"], max_results=50) if experiments else []
    running = [r for r in runs if r.info.status == "RUNNING"]
    if running:
        return f"run {running[0].info.run_id} that it launched is still RUNNING"
    if runs:
        age_h = (time.time() * 1000 - runs[0].info.start_time) / HOUR_MS
        if age_h < cooldown_hours:
            return (f"cooldown: run {runs[0].info.run_id} started {age_h:.1f} h ago (cooldown_hours "
                    f"{cooldown_hours:g})")
    return None


def refused_recently(model: str, version: str | None, cooldown_hours: float) -> str | None:
    """A promotion that automation tried and the gates refused is not tried again inside the cooldown."""
    import mlflow

    stamp = (mlflow.MlflowClient().get_model_version(model, str(version)).tags or {}).get(AUTOMATION_PROMOTE_REFUSED_AT)
    if stamp and (time.time() - float(stamp)) / 3600 < cooldown_hours:
        return f"cooldown: the gates refused v{version} {(time.time() - float(stamp)) / 3600:.1f} h ago"
    return None


def champion_run(model: str, version: str | None) -> str:
    import mlflow

    run_id = mlflow.MlflowClient().get_model_version(model, str(version)).run_id
    if not run_id:
        raise ConfigError(f"{model} v{version} names no run, so there is no scenario to start from.")
    return run_id


def scenario_overrides(run_id: str, drop: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """(preset, overrides) that compose to the config `run_id` logged, less the keys starting with `drop`."""
    import mlflow
    import yaml

    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="config/resolved.yaml")
    logged = _leaves(yaml.safe_load(Path(path).read_text()))
    preset = logged.get("exp.scenario")
    if not preset or searchpath.source_of(f"scenario/{preset}") is None:  # conf/ or a GF_CONFIG_PATH folder
        preset = "demo"  # a scenario without a preset: every value comes from the overrides
    today = _leaves(to_container(compose([f"scenario={preset}"])))
    keep = ("exp.design",)  # the launched entry point sets its own design
    changed = [f"++{k}={hydra_value(v)}" for k, v in sorted(logged.items())
               if today.get(k, object()) != v and not k.startswith(drop) and k not in keep]
    return preset, changed


Filed = Callable[["Launched"], None]  # told of each launch once its run is filed, before it starts


def run_entry(entry: str, source_run_id: str, overrides: list[str], tags: dict[str, str], env_manager: str,
              drop: tuple[str, ...] = (), on_filed: Filed | None = None) -> str:
    """`mlflow run -e ENTRY` with the scenario of `source_run_id` and `overrides`, in its experiment; returns the
    run id once it finished."""
    import mlflow

    preset, carried = scenario_overrides(source_run_id, drop)
    experiment = mlflow.MlflowClient().get_run(source_run_id).info.experiment_id
    return _run(entry, {"scenario": preset, "overrides": " ".join([*carried, *overrides])}, experiment, tags,
                env_manager, on_filed)


def run_challenge(model: str, version: str | None, tags: dict[str, str], env_manager: str,
                  on_filed: Filed | None = None) -> str:
    import mlflow

    base, _, variant = model.partition("__")
    experiment = mlflow.MlflowClient().get_run(champion_run(model, version)).info.experiment_id
    return _run("challenge", {"name": base, "candidate": str(version), "variant": variant}, experiment, tags,
                env_manager, on_filed)


def _run(entry: str, params: dict[str, str], experiment_id: str, tags: dict[str, str], env_manager: str,
         on_filed: Filed | None) -> str:
    """The launch itself (gfcore.orchestration.launcher): tagged at once, so a second `optimize run` sees it RUNNING
    from its first second; Ctrl-C, or SIGTERM to `optimize run`, stops it (its run ends KILLED), never orphans it."""
    return launch(entry, params, experiment_id=experiment_id, env_manager=env_manager, tags=tags,
                  synchronous=False, on_filed=on_filed).wait().run_id


def hydra_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _BARE.match(text) and text.lower() not in ("null", "true", "false", "nan", "inf"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
