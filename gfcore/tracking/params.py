"""The resolved config as MLflow params and the standard run tags."""

from __future__ import annotations

import json
from typing import Any

from gfcore.config.compose import to_container
from gfcore.config.schema import Config
from gfcore.core.codeversion import code_version
from gfcore.core.naming import arch_name

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
    "train": (*_COMMON, "backend", "train", "registry", "latency", "tracking"),
    "quant": (*_COMMON, "backend", "quant", "registry", "latency", "tracking"),
    "infer": (*_COMMON, "backend", "infer", "registry", "latency", "tracking"),
    "sweep": (*_COMMON, "backend", "train", "registry", "latency", "sweep"),
    "pipeline": (*_COMMON, "train", "registry", "latency", "infer", "pipeline"),
    "compare": (*_COMMON, "registry", "latency", "compare"),
    "challenge": (*_COMMON, "backend", "infer", "registry", "latency", "challenge"),
}


def config_params(cfg: Config, exp_type: str | None = None) -> dict[str, str]:
    """The resolved config as dotted params, limited to the sections `exp_type` uses (all when unknown)."""
    tree = to_container(cfg)
    keep = SECTIONS.get(exp_type or "")
    if keep:
        tree = {k: v for k, v in tree.items() if k in keep}
    return flatten(tree)


def run_tags(cfg: Config, exp_type: str, data_hash: str, source_run_id: str | None = None) -> dict[str, str]:
    """The tags every GuardianFlow run carries (DESIGN.md section 3)."""
    tags = {
        "exp.type": exp_type,
        "exp.version": cfg.exp.version,
        "exp.design": cfg.exp.design.value,
        "gf.scenario": cfg.exp.scenario,
        "site.customer": cfg.site.customer,
        "site.region": cfg.site.region,
        "site.plant": cfg.site.plant,
        "site.zone": cfg.site.zone,
        "task.type": cfg.task.type.value,
        "task.classes": ",".join(cfg.task.classes),
        "model.architecture": arch_name(cfg.model.architecture),
        "data.version": cfg.data.version,
        "data.hash": data_hash,
        "gf.code_version": code_version(),
    }
    if source_run_id:
        tags["source.run_id"] = source_run_id
    return tags
