"""`experiments_registry.yaml`: each old experiment folder with its site, task and scripts, validated on load.

    experiments:
      donghwa-entec-ppe:
        path: examples/legacy_experiments/donghwa-entec-ppe    # relative to the registry file
        site: {customer: donghwa-entec, region: busan, plant: plant1, zone: welding}
        task: {type: ppe, classes: [helmet, vest]}
        entry_points:
          train: {default: train.py, patterns: ["train*.py"], args_template: "--epochs {epochs} --batch {batch}"}
          infer: {default: evaluate.py}
          quant: {default: export_onnx.py}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gfcore.config.schema import SiteConfig, TaskConfig
from gfcore.core.codeversion import PROJECT
from gfcore.core.errors import ConfigError

DEFAULT_REGISTRY = PROJECT / "experiments_registry.yaml"
ENTRY_TYPES = ("train", "infer", "quant")
TODO = "TODO"


@dataclass
class ScriptEntry:
    default: Optional[str] = None  # the script `wrap` runs unless --script says otherwise
    patterns: List[str] = field(default_factory=list)  # globs of this folder's scripts of this kind
    args_template: Optional[str] = None  # e.g. "--epochs {epochs} --batch {batch}"; fields come from -p


@dataclass
class EntryPoints:
    train: Optional[ScriptEntry] = None
    infer: Optional[ScriptEntry] = None
    quant: Optional[ScriptEntry] = None


@dataclass
class Experiment:
    path: str = MISSING
    site: SiteConfig = MISSING
    task: TaskConfig = MISSING
    entry_points: EntryPoints = field(default_factory=EntryPoints)
    notes: Optional[str] = None


@dataclass
class Registry:
    version: int = 1
    experiments: Dict[str, Experiment] = field(default_factory=dict)


@dataclass
class Entry:
    """One experiment, checked, with its folder resolved."""

    name: str
    folder: Path
    spec: Experiment

    def scripts(self, kind: str) -> ScriptEntry | None:
        return getattr(self.spec.entry_points, kind)

    def script(self, kind: str, override: str | None) -> Path:
        """The script to run: --script, else the entry point's default; it must be inside the folder."""
        scripts = self.scripts(kind)
        name = override or (scripts.default if scripts else None)
        if not name:
            raise ConfigError(f"experiment {self.name} has no {kind} script: give --script, or set "
                              f"entry_points.{kind}.default in the registry.")
        return inside(self.folder, name, f"experiment {self.name}: the {kind} script")


def inside(folder: Path, name: str, what: str) -> Path:
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents:
        raise ConfigError(f"{what} {name!r} is outside its folder {folder}: scripts run in their own folder only.")
    if not path.is_file():
        raise ConfigError(f"{what} {name!r} does not exist in {folder}.")
    return path


def load_registry(path: Path | None = None) -> dict[str, Entry]:
    """Every experiment of the registry file, validated: unknown keys, missing folders, TODOs are errors."""
    path = Path(path) if path else DEFAULT_REGISTRY
    if not path.is_file():
        raise ConfigError(f"the experiments registry {path} does not exist: create one with `guardianflow scan "
                          "BASE_DIR -o experiments_registry.yaml`, or pass --registry FILE.")
    try:
        raw = OmegaConf.load(path)
    except Exception as exc:  # yaml's and OmegaConf's parse errors
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    _refuse_todos(path, OmegaConf.to_container(raw))
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Registry), raw)
        registry: Registry = OmegaConf.to_object(merged)
    except (OmegaConfBaseException, ConfigError) as exc:
        raise ConfigError(f"{path} is not a valid experiments registry: {str(exc).splitlines()[0]}") from None
    entries = {}
    for name, spec in registry.experiments.items():
        where = f"{path}: experiment {name}"
        folder = (path.parent / Path(spec.path).expanduser()).resolve()
        if not folder.is_dir():
            raise ConfigError(f"{where}: path {spec.path} ({folder}) is not a folder.")
        entry = Entry(name=name, folder=folder, spec=spec)
        for kind in ENTRY_TYPES:
            scripts = entry.scripts(kind)
            if scripts and scripts.default:
                inside(folder, scripts.default, f"{where}: entry_points.{kind}.default")
        entries[name] = entry
    return entries


def _refuse_todos(path: Path, raw: dict) -> None:
    for name, spec in (raw.get("experiments") or {}).items():
        todo = [f"{section}.{key}" for section in ("site", "task") for key, value in (spec.get(section) or {}).items()
                if value == TODO or (isinstance(value, list) and TODO in value)]
        if todo:
            raise ConfigError(f"{path}: experiment {name}: {', '.join(todo)} still TODO; fill them in (a draft from "
                              "`guardianflow scan` marks what a person must decide).")


def get_entry(entries: dict[str, Entry], name: str) -> Entry:
    if name not in entries:
        raise ConfigError(f"no experiment {name!r} in the registry; known: {', '.join(sorted(entries)) or 'none'} "
                          "(`guardianflow list`).")
    return entries[name]
