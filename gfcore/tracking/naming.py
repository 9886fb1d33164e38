"""The names of experiments, runs, registered models and metrics (DESIGN.md section 3).

Run names are distinct within their experiment. The scheme's name (`run_name`, e.g. `ppe-yolov8n-train-v1`) is the
stem: the first run gets it as it is; a run whose stem is taken gets `-N`, one more than the highest N taken, the
bare stem counting as 1 (`ppe-yolov8n-train-v1-2`, then `-3`; a deleted run's name is free again). A sweep trial's
stem carries its Hydra job number, `-t{N}` (`ppe-yolov8n-train-v1-t3`), the `#N` of its sweep's results table. A
run that already has a name of its stem (resumed, requeued, reused) keeps it. Two runs of one stem started in the
same instant may still get the same name: the check is one search, not a lock.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterable
from pathlib import PurePath
from typing import TYPE_CHECKING

from gfcore.core.vocabulary import RunKind

if TYPE_CHECKING:
    from gfcore.config.schema import Config, SiteConfig

log = logging.getLogger(__name__)

_METRIC_BAD_CHARS = re.compile(r"[^\w\-. /]")  # \w: Unicode letters and digits, as MLflow checks


def experiment_name(site: SiteConfig) -> str:
    """`{customer}/{region}-{plant}/{zone}`, e.g. `donghwa-entec/busan-plant1/welding`."""
    return f"{site.customer}/{site.region}-{site.plant}/{site.zone}"


def arch_name(architecture: str) -> str:
    """`yolov8n.yaml` -> `yolov8n`, `/models/yolo11l.pt` -> `yolo11l`."""
    return PurePath(architecture).stem


# Runs whose siblings differ by backend and precision: their names say which variant they are.
_VARIANT_RUNS = ("quant", "infer", "challenge")


def run_name(cfg: Config, exp_type: str) -> str:
    """`{task}-{arch}-{type}-{version}`, e.g. `ppe-yolo11l-train-v2`; quant and infer runs name their variant
    before the version: `ppe-yolov8n-infer-openvino_int8-v1`."""
    variant = f"-{cfg.backend.variant}" if exp_type in _VARIANT_RUNS else ""
    return f"{cfg.task.type.value}-{arch_name(cfg.model.architecture)}-{exp_type}{variant}-{cfg.exp.version}"


def trial_stem(stem: str, trial: int | str) -> str:
    """A sweep trial's stem: `ppe-yolov8n-train-v1-t3` for Hydra job 3."""
    return f"{stem}-t{trial}"


def _of_stem(stem: str, name: str | None) -> re.Match[str] | None:
    """`stem` or `stem-N`; the match's group 1 is N."""
    return re.fullmatch(rf"{re.escape(stem)}(?:-(\d+))?", name or "")


def free_name(stem: str, taken: Iterable[str]) -> str:
    """`stem` if no name in `taken` is the stem or `stem-N`, else `stem-{highest N + 1}` (the stem counts as 1)."""
    numbers = [int(m.group(1) or 1) for name in taken if (m := _of_stem(stem, name))]
    return f"{stem}-{max(numbers) + 1}" if numbers else stem


def free_run_name(experiment_id: str, stem: str, run_id: str | None = None) -> str:
    """The name a new run of `stem` gets in the experiment (see the module): one search, run_name LIKE 'stem%'.
    `run_id`: the run being named, which keeps a name of the stem it has already. A store that cannot answer
    leaves the stem: the run's start, not its name, is where that failure is reported."""
    import mlflow

    try:
        found = mlflow.MlflowClient().search_runs(
            [experiment_id], filter_string=f"attributes.run_name LIKE '{stem.replace(chr(39), '_')}%'",
            order_by=["attributes.start_time DESC"], max_results=1000)
    except Exception as err:  # the store's own error surfaces when the run starts
        log.debug("run names of %s not searched: %s", stem, err)
        return stem
    own = next((r.info.run_name for r in found if r.info.run_id == run_id), None)
    if _of_stem(stem, own):
        return own
    return free_name(stem, (r.info.run_name for r in found if r.info.run_id != run_id))


def labelled(name: str | None, run_id: str) -> str:
    """How the terminal names a run: `ppe-yolov8n-train-v1-2 (3f2a...)`, its name and its id (the id alone
    without a name)."""
    return f"{name} ({run_id})" if name else run_id


def run_label(run_id: str) -> str:
    """`labelled` for a run known by its id only: its name read from the store."""
    import mlflow

    try:
        name = mlflow.MlflowClient().get_run(run_id).info.run_name
    except Exception:  # the id alone still names it
        return run_id
    return labelled(name, run_id)


def wrap_run_name(task: str, name: str, version: str) -> str:
    """A wrapped old script's run, in the same scheme: `{task}-{name}-wrap-{version}`, the name part the script's
    (`ppe-train-wrap-v1`) unless the user gives one (`wrap --name`, `--version`)."""
    return f"{task}-{name}-{RunKind.wrap}-{version}"


def logged_model_name(cfg: Config) -> str:
    """A logged model's name says what it is: `{task}-{arch}-{backend}_{precision}` (`ppe-yolov8n-openvino_int8`)."""
    return f"{cfg.task.type.value}-{arch_name(cfg.model.architecture)}-{cfg.backend.variant}"


def registered_model_name(cfg: Config) -> str:
    """`{customer}.{region}-{plant}.{zone}.{task}`: MLflow rejects `/` and `:` in model names, hence dots."""
    s = cfg.site
    return f"{s.customer}.{s.region}-{s.plant}.{s.zone}.{cfg.task.type.value}"


def variant_model_name(base: str, backend: str, precision: str) -> str:
    """`{base}__{backend}_{precision}`, e.g. `...welding.ppe__openvino_int8`."""
    return f"{base}__{backend}_{precision}"


def sanitize_metric_name(name: str) -> str:
    """MLflow accepts letters, digits and `_ - . / space` in metric names; anything else becomes `_`.

    It also refuses names that are not normalised paths (`a//b`, `/a`, `a/`), so those lose their slashes.
    """
    clean = _METRIC_BAD_CHARS.sub("_", name)
    if posixpath.normpath(clean) != clean or clean.startswith(("/", "..")) or clean == ".":
        clean = clean.replace("/", "_")
    return clean
