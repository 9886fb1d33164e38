"""The names of experiments, runs, registered models and metrics (DESIGN.md section 3)."""

from __future__ import annotations

import posixpath
import re
from pathlib import PurePath
from typing import TYPE_CHECKING

from gfcore.core.vocabulary import RunKind

if TYPE_CHECKING:
    from gfcore.config.schema import Config, SiteConfig

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
