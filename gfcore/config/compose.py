"""Turning Hydra's composed config into typed objects, and composing outside of an entry point."""

from __future__ import annotations

import sys
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from gfcore.config import (
    automation,  # noqa: F401  registers the schemas of the roots compose_root composes
    explain,
    searchpath,
)
from gfcore.config.schema import Config
from gfcore.core import quiet
from gfcore.core.errors import ConfigError

CONF_DIR = searchpath.CONF_DIR  # the package's conf/
T = TypeVar("T")


def to_typed(cfg: DictConfig, choices: dict[str, str] | None = None) -> Config:
    """The composed config as `Config` dataclasses; missing or invalid values raise ConfigError, naming the config
    files behind the values refused (from `choices`, Hydra's group choices, or the running app's)."""
    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"the composed config is incomplete or invalid: {exc}".strip()) from exc
    except ConfigError as exc:
        raise ConfigError(f"{exc}{_files_behind(str(exc), choices)}") from None
    if not isinstance(obj, Config):
        raise ConfigError("the config was not composed on GuardianFlow's schema: its defaults list must start "
                          "with gf_schema (see conf/config.yaml).")
    return obj


def to_container(cfg: Config | DictConfig) -> dict[str, Any]:
    """A plain, resolved dict of the config (enums as their values), for logging."""
    node = OmegaConf.structured(cfg) if not isinstance(cfg, DictConfig) else cfg
    return OmegaConf.to_container(node, resolve=True, enum_to_str=True)


def _files_behind(message: str, choices: dict[str, str] | None) -> str:
    """` (config files: site NAME: FILE; ...)`: the config files of the groups a ConfigError's message is about
    (and the scenario's, when it is outside the package)."""
    if choices is None:
        from hydra.core.hydra_config import HydraConfig

        choices = dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}
    named = []
    for group, choice in choices.items():
        if choice and "/" not in group and (f"{group}." in message or group == searchpath.SCENARIO):
            file = searchpath.source_of(f"{group}/{choice}")
            if file is not None and (group != searchpath.SCENARIO or searchpath.is_outside(file)):
                named.append(f"{group} {choice}: {file}")
    return f" (config files: {'; '.join(named)})" if named else ""


def compose(overrides: list[str] | tuple[str, ...] = (), config_name: str = "config") -> DictConfig:
    """Compose the project's config as an entry point would (for the CLI, benchmarks and tests), with the configs
    outside the package (GF_CONFIG_PATH, `scenario=PATH.yaml`: gfcore.config.searchpath) in front of conf/. An
    error in a config outside the package is a ConfigError naming its file. GF_CONFIG_PATH is as it was afterwards
    (entry points and launches keep what `searchpath.prepare` sets, for their child processes)."""
    with searchpath.scoped():
        return _compose(overrides, config_name)[0]


def compose_typed(overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """`compose` then `to_typed`, an error naming the config files behind the values refused."""
    with searchpath.scoped():
        cfg, choices = _compose(overrides, "config")
        return to_typed(cfg, choices)


def _compose(overrides: list[str] | tuple[str, ...], config_name: str) -> tuple[DictConfig, dict[str, str]]:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import open_dict

    overrides = searchpath.prepare(list(overrides))
    try:
        if GlobalHydra.instance().is_initialized():  # inside a running entry point: it already knows conf/
            cfg = hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
        else:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                cfg = hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        _raise_if_outside(exc)
        raise
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def _raise_if_outside(exc: Exception) -> None:
    """A composition error about a config outside the package, as a ConfigError that names the file."""
    message, file = searchpath.explain(str(exc))
    if file is not None and searchpath.is_outside(file):
        raise ConfigError(message) from None


def compose_root(folder: str, schema: type[T], overrides: list[str] | tuple[str, ...] = ()) -> T:
    """`conf/<folder>/default.yaml`, a config root of its own whose defaults list starts with `schema`'s entry in
    the ConfigStore (`conf/alerts`, `conf/automation`: gfcore.config.automation), with Hydra overrides, as `schema`'s
    dataclasses. A typo or a wrong type fails in Hydra's composition; a key added with `+` (which Hydra adds even to a
    structured node) or a value `__post_init__` refuses fails here, as a ConfigError."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    searchpath.folders()  # a GF_CONFIG_PATH folder that does not exist: named, before composing

    def composed(given: list[str]) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR / folder), version_base="1.3"):
            return hydra_compose(config_name="default", overrides=given)

    def keys_at(path: str) -> list[str]:  # for the "did you mean" of a typo: the defaults on the schema
        root = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.to_container(composed([]), resolve=True))
        node = OmegaConf.select(root, path) if path else root
        return list(node.keys()) if isinstance(node, DictConfig) else []

    try:
        cfg = composed(list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        _raise_if_outside(exc)
        _raise_one_line(exc, overrides, keys_at)
        raise
    try:  # merged afresh onto the schema as plain values, so that a key the schema lacks is refused
        obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema),
                                                  OmegaConf.to_container(cfg, resolve=True)))
    except ConfigKeyError as exc:
        _raise_one_line(exc, overrides, keys_at)
        known = [f.name for f in fields(exc.object_type)] if is_dataclass(exc.object_type) else []
        raise ConfigError(f"conf/{folder}: {exc.full_key} is unknown"
                          + (f": the keys there are {', '.join(known)}." if known else ".")) from exc
    except OmegaConfBaseException as exc:
        _raise_one_line(exc, overrides, keys_at)
        raise ConfigError(f"conf/{folder} with the overrides given: {exc}") from exc
    return obj


def _raise_one_line(exc: Exception, overrides: list[str] | tuple[str, ...], keys_at: explain.KeysAt) -> None:
    """A composition error that gfcore.config.explain can say in one line, as a ConfigError saying so."""
    message = explain.one_line(exc, overrides, keys_at)
    if message:
        raise ConfigError(message) from None


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
    """Make this process's command line ready for Hydra, before Hydra reads it: `split_overrides`, then the configs
    outside the package (gfcore.config.searchpath.prepare: a scenario file made absolute, GF_CONFIG_PATH checked
    and made absolute for the child steps). When such configs are in use, the config is composed and typed here
    once, so that an error in one of them names its file and exits 2 before anything starts. It also sets the quiet
    defaults (gfcore.core.quiet) before anything imports MLflow or torch."""
    quiet.defaults()
    args = split_overrides(sys.argv[1:])
    try:
        args = searchpath.prepare(args)
        if searchpath.in_use(args) and not any(a.split("=")[0] in _OWN_ROOT for a in args):
            compose_typed(_plain(args))
    except ConfigError as exc:
        print(f"guardianflow: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.argv[1:] = args


_OWN_ROOT = ("--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp")  # not conf/config.yaml: no check


def _plain(args: list[str]) -> list[str]:
    """The overrides of a command line that compose one config: no flags, no `hydra.` keys, no sweeps (the sweep's
    jobs compose those)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser, out = OverridesParser.create(), []
    for arg in args:
        if arg.startswith("-") or arg.lstrip("+~").startswith("hydra.") or arg.startswith("hydra/"):
            continue
        try:
            [override] = parser.parse_overrides([arg])
        except Exception:  # Hydra says what is wrong with it when it parses the command line itself
            continue
        if override.is_sweep_override():
            continue
        out.append(arg)
    return out
