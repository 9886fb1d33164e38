"""The resolved config as MLflow params and the standard run tags."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gfcore.config.compose import to_container
from gfcore.core.codeversion import code_version
from gfcore.core.vocabulary import (
    CODE_VERSION,
    DATA_HASH,
    DATA_VERSION,
    EXP_DESIGN,
    EXP_TYPE,
    EXP_VERSION,
    MODEL_ARCHITECTURE,
    SCENARIO,
    SITE_CUSTOMER,
    SITE_PLANT,
    SITE_REGION,
    SITE_ZONE,
    SOURCE_RUN_ID,
    TASK_CLASSES,
    TASK_TYPE,
    RunKind,
)
from gfcore.tracking.naming import arch_name

if TYPE_CHECKING:
    from gfcore.config.schema import Config
    from gfcore.data.dataset import DataPin

# MLflow's limit on one param value; longer values are cut with a marker rather than failing the run.
MAX_PARAM_VALUE = 6000


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"train": {"lr0": 0.01}}` -> `{"train.lr0": "0.01"}`; lists stay one value (JSON), empty dicts are kept."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[dotted] = text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 3] + "..."
    return flat


# The config sections each kind of run uses: its params show only those (a train run has no sweep.* and a
# pipeline parent, which covers every backend, claims none). config/resolved.yaml keeps the whole config.
_COMMON = ("site", "task", "model", "data", "exp")
SECTIONS = {
    RunKind.train: (*_COMMON, "backend", "train", "registry", "latency", "tracking"),
    RunKind.quant: (*_COMMON, "backend", "quant", "registry", "latency", "tracking"),
    RunKind.infer: (*_COMMON, "backend", "infer", "registry", "latency", "tracking"),
    RunKind.sweep: (*_COMMON, "backend", "train", "registry", "latency", "sweep"),
    RunKind.pipeline: (*_COMMON, "train", "registry", "latency", "infer", "pipeline"),
    RunKind.compare: (*_COMMON, "registry", "latency", "compare"),
    RunKind.challenge: (*_COMMON, "backend", "infer", "registry", "latency", "challenge"),
}


# Keys that say what to do with a run rather than what it is: never params (a resumed run names itself).
NOT_PARAMS = ("train.resume_run_id",)


def config_params(cfg: Config, exp_type: str | None = None) -> dict[str, str]:
    """The resolved config as dotted params, limited to the sections `exp_type` uses (all when unknown)."""
    tree = to_container(cfg)
    keep = SECTIONS.get(exp_type or "")
    if keep:
        tree = {k: v for k, v in tree.items() if k in keep}
    return {k: v for k, v in flatten(tree).items() if k not in NOT_PARAMS}


def run_tags(cfg: Config, exp_type: str, data_hash: str, source_run_id: str | None = None,
             data_pin: DataPin | None = None) -> dict[str, str]:
    """The tags every GuardianFlow run carries (DESIGN.md section 3), where its data can be fetched again, and the
    scenario's own tags (`exp.tags`, names the schema keeps apart from these)."""
    tags = {
        **cfg.exp.tags,
        EXP_TYPE: str(exp_type),
        EXP_VERSION: cfg.exp.version,
        EXP_DESIGN: cfg.exp.design.value,
        SCENARIO: cfg.exp.scenario,
        SITE_CUSTOMER: cfg.site.customer,
        SITE_REGION: cfg.site.region,
        SITE_PLANT: cfg.site.plant,
        SITE_ZONE: cfg.site.zone,
        TASK_TYPE: cfg.task.type.value,
        TASK_CLASSES: ",".join(cfg.task.classes),
        MODEL_ARCHITECTURE: arch_name(cfg.model.architecture),
        DATA_VERSION: cfg.data.version,
        DATA_HASH: data_hash,
        CODE_VERSION: code_version(),
    }
    if data_pin:
        tags.update(data_pin.tags())
    if source_run_id:
        tags[SOURCE_RUN_ID] = source_run_id
    return tags
