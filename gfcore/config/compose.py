"""Turning Hydra's composed config into typed objects, and composing outside of an entry point."""

from __future__ import annotations

import sys
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from gfcore.config import automation  # noqa: F401  registers the schemas of the roots compose_root composes
from gfcore.config.schema import Config
from gfcore.core.codeversion import PROJECT
from gfcore.core.errors import ConfigError

CONF_DIR = PROJECT / "conf"
T = TypeVar("T")


def to_typed(cfg: DictConfig) -> Config:
    """The composed config as `Config` dataclasses; missing or invalid values raise ConfigError."""
    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"the composed config is incomplete or invalid: {exc}".strip()) from exc
    if not isinstance(obj, Config):
        raise ConfigError("the config was not composed on GuardianFlow's schema: its defaults list must start "
                          "with gf_schema (see conf/config.yaml).")
    return obj


def to_container(cfg: Config | DictConfig) -> dict[str, Any]:
    """A plain, resolved dict of the config (enums as their values), for logging."""
    node = OmegaConf.structured(cfg) if not isinstance(cfg, DictConfig) else cfg
    return OmegaConf.to_container(node, resolve=True, enum_to_str=True)


def compose(overrides: list[str] | tuple[str, ...] = (), config_name: str = "config") -> DictConfig:
    """Compose the project's config as an entry point would (for the CLI, benchmarks and tests)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # inside a running entry point: it already knows conf/
        return hydra_compose(config_name=config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def compose_root(folder: str, schema: type[T], overrides: list[str] | tuple[str, ...] = ()) -> T:
    """`conf/<folder>/default.yaml`, a config root of its own whose defaults list starts with `schema`'s entry in
    the ConfigStore (`conf/alerts`, `conf/automation`: gfcore.config.automation), with Hydra overrides, as `schema`'s
    dataclasses. A typo or a wrong type fails in Hydra's composition; a key added with `+` (which Hydra adds even to a
    structured node) or a value `__post_init__` refuses fails here, as a ConfigError."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR / folder), version_base="1.3"):
        cfg = hydra_compose(config_name="default", overrides=list(overrides))
    try:  # merged afresh onto the schema as plain values, so that a key the schema lacks is refused
        obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema),
                                                  OmegaConf.to_container(cfg, resolve=True)))
    except ConfigKeyError as exc:
        known = [f.name for f in fields(exc.object_type)] if is_dataclass(exc.object_type) else []
        raise ConfigError(f"conf/{folder}: {exc.full_key} is unknown"
                          + (f": the keys there are {', '.join(known)}." if known else ".")) from exc
    except OmegaConfBaseException as exc:
        raise ConfigError(f"conf/{folder} with the overrides given: {exc}") from exc
    return obj


def split_overrides(args: list[str]) -> list[str]:
    """Split arguments that hold several space-separated Hydra overrides; drop empty ones.

    `mlflow run` shell-quotes every parameter, so `-P overrides="a=1 b=2"` reaches the entry point as one
    argument `a=1 b=2` (and an empty parameter as ''). Spaces inside quotes or brackets stay, so
    `site.zone='north gate'` and `train.extra.x=[1, 2]` keep their meaning.
    """
    out: list[str] = []
    for arg in args:
        out.extend(_split_one(arg))
    return out


def _split_one(arg: str) -> list[str]:
    parts, current, quote, depth = [], [], "", 0
    for ch in arg:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth = max(0, depth - 1)
        elif ch.isspace() and depth == 0:
            if current:
                parts.append("".join(current))
                current = []
            continue
        current.append(ch)
    if current:
        parts.append("".join(current))
    return parts


def normalise_argv() -> None:
    """Apply `split_overrides` to this process's command line, before Hydra reads it."""
    sys.argv[1:] = split_overrides(sys.argv[1:])
