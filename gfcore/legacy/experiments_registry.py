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

import re
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
# A script name that looks like a copy: `train_backup.py`, `train_old.py`, `train (1).py`, `train_v2.py`, `train_20240101`.
BACKUP = re.compile(r"(backup|bak|old|copy|복사|백업|\(\d+\)|_v?\d+$|[-_ ]\d{6,8}$)", re.IGNORECASE)
SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints"}


def script_rank(folder: Path, path: Path) -> tuple:
    """The canonical script first: a script before a notebook, then not a backup, shallowest, shortest name. `scan`
    picks a kind's default so, and `wrap` a pattern's match where the registry names no default."""
    return (path.suffix != ".py", bool(BACKUP.search(path.stem)), len(path.relative_to(folder).parts),
            len(path.name), str(path))


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
class Chosen:
    """The script `wrap` runs, and how it was chosen when the registry names no default."""

    path: Path
    pattern: str | None = None  # the registry's pattern that matched it
    said: str = ""  # the choice in words, for the console


@dataclass
class Entry:
    """One experiment, checked, with its folder resolved."""

    name: str
    folder: Path
    spec: Experiment

    def scripts(self, kind: str) -> ScriptEntry | None:
        return getattr(self.spec.entry_points, kind)

    def script(self, kind: str, override: str | None) -> Path:
        return self.choose(kind, override).path

    def choose(self, kind: str, override: str | None) -> Chosen:
        """The script to run: --script, else the entry point's default, else the best match of its `patterns` (the
        first pattern that matches a script, its canonical match: `script_rank`); it must be inside the folder."""
        scripts = self.scripts(kind)
        name = override or (scripts.default if scripts else None)
        if name:
            return Chosen(inside(self.folder, name, f"experiment {self.name}: the {kind} script"))
        patterns = list(scripts.patterns) if scripts else []
        if not patterns:
            raise ConfigError(f"experiment {self.name} has no {kind} script: give --script, or set "
                              f"entry_points.{kind}.default (or patterns) in the registry.")
        for pattern in patterns:
            found = sorted(self.matches(pattern), key=lambda p: script_rank(self.folder, p))
            if found:
                rel = [p.relative_to(self.folder).as_posix() for p in found]
                said = (f"experiment {self.name}: no {kind} default; pattern {pattern!r} matched {', '.join(rel)}: "
                        f"running {rel[0]}")
                if len(rel) > 1:
                    said += " (a script before a notebook, not a backup, shallowest, shortest name)"
                return Chosen(found[0], pattern, said + f". Set entry_points.{kind}.default or pass --script to "
                                                        "choose.")
        raise ConfigError(f"experiment {self.name} has no {kind} default, and its patterns {patterns} match no "
                          f"script in {self.folder}: set entry_points.{kind}.default or pass --script.")

    def matches(self, pattern: str) -> list[Path]:
        """The folder's scripts and notebooks that `pattern` (a glob relative to the folder) matches."""
        root = self.folder.resolve()
        try:
            found = [p.resolve() for p in self.folder.glob(pattern)]
        except (ValueError, NotImplementedError) as exc:  # an absolute or otherwise unusable pattern
            raise ConfigError(f"experiment {self.name}: pattern {pattern!r} is not a glob inside its folder: "
                              f"{exc}") from None
        return [p for p in found if p.is_file() and p.suffix in (".py", ".ipynb") and root in p.parents
                and not SKIP_DIRS & set(p.relative_to(root).parts)]


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
