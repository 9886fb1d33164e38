"""Configs outside the package: the folders on GF_CONFIG_PATH, and scenario files given by path.

A fleet keeps its sites, tasks, models and scenarios in folders of its own (a config repository,
`/etc/guardianflow`): `GF_CONFIG_PATH=/etc/guardianflow:/srv/fleet-conf` (folders separated by `:`, the first one
first). Each folder is laid out like the package's conf/ (`site/`, `task/`, `model/`, `scenario/` ...), and its
configs come before the package's: a name there shadows the package's, a new name adds an option, and a scenario
there may build on the package's (`defaults: [smoke, override /site: acme_north_gate]`). A folder's `alerts/` and
`automation/` hold the roots `guardianflow alerts|optimize` compose. Hydra's own command-line
`hydra.searchpath=[/a,file:///b]` joins the same path (its folders go onto GF_CONFIG_PATH, ahead of the
package's conf/ and inherited by child steps); `pkg://` entries keep Hydra's own place, after conf/.

`scenario=PATH.yaml` (a value ending in .yaml) runs a scenario file: an absolute path as it is, a relative one
from the current folder; it is made absolute before anything composes, so child steps (which run in the project
folder) get the same file. Its `defaults` resolve like any scenario's: `smoke` is the scenario `smoke` on the
search path, `override /site: NAME` a site on it. When the file lies in a `scenario/` folder, the folder above
(its config folder) joins the search path too, so the sites beside it are found.

The search path itself is Hydra's: hydra_plugins/guardianflow_config adds these folders in front of conf/ for
every Hydra app of this project and every `compose` (the CLI, child-step checks), and answers `scenario/<file>`.
The environment carries it to child steps (local `mlflow run`, SLURM jobs, Ray workers' runtime_env).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gfcore.core.codeversion import PROJECT
from gfcore.core.errors import ConfigError

ENV = "GF_CONFIG_PATH"  # folders of configs outside the package, separated by ':'
CONF_DIR = PROJECT / "conf"
SCENARIO = "scenario"
SUFFIXES = (".yaml", ".yml")


def folders(value: str | None = None) -> list[Path]:
    """The folders on GF_CONFIG_PATH (or `value`), absolute, in order; a folder that does not exist (or is not a
    folder) is a ConfigError naming it."""
    raw = os.environ.get(ENV, "") if value is None else value
    out: list[Path] = []
    for entry in (e.strip() for e in raw.split(os.pathsep)):
        if not entry:
            continue
        path = Path(entry).expanduser().absolute()
        if not path.is_dir():
            why = "is not a folder" if path.exists() else "does not exist"
            raise ConfigError(f"{ENV}: the config folder {path} {why}. Create it (`guardianflow site add ... "
                              f"--config-dir {path}` writes a first site there) or take it off {ENV}.")
        if path not in out:
            out.append(path)
    return out


def use_folders(paths: list[Path]) -> None:
    """GF_CONFIG_PATH set to `paths` (absolute) in this process, so that every composition here and every child
    process sees the same search path."""
    if paths:
        os.environ[ENV] = os.pathsep.join(str(p) for p in paths)
    else:
        os.environ.pop(ENV, None)


def export_lines() -> list[str]:
    """Shell lines that set this process's GF_CONFIG_PATH in a job's script (a SLURM job started with
    `--export=NONE`, or on a node whose profile sets another), none when it is not set."""
    value = os.environ.get(ENV, "")
    return [f"export {ENV}={shlex.quote(value)}"] if value else []


def is_scenario_file(value: str) -> bool:
    return value.endswith(SUFFIXES)


def scenario_file(value: str) -> Path:
    """The scenario file `value` names (relative to the current folder), absolute; a ConfigError when it is not
    a file."""
    path = Path(value).expanduser().absolute()
    if not path.is_file():
        raise ConfigError(f"scenario={value}: the scenario file {path} does not exist. A value ending in .yaml is "
                          "a path (absolute, or from the current folder); a preset is named without .yaml.")
    return path


def prepare(overrides: list[str]) -> list[str]:
    """Make the overrides and the environment ready for composition, here and in child steps: a scenario file
    made absolute (its config folder, when it lies in `scenario/`, put on the search path), the folders of a
    command-line `hydra.searchpath` put on GF_CONFIG_PATH, every GF_CONFIG_PATH folder checked and made absolute.
    A ConfigError names the folder or file that is wrong."""
    path = folders()
    out = []
    for arg in overrides:
        key, eq, value = arg.partition("=")
        if eq and key.lstrip("+~") == SCENARIO and any(is_scenario_file(v.strip("'\" ")) for v in value.split(",")):
            names = []
            for v in (v.strip("'\" ") for v in value.split(",")):  # a sweep over scenarios: each file
                if not is_scenario_file(v):
                    names.append(v)
                    continue
                file = scenario_file(v)
                if file.parent.name == SCENARIO and file.parent.parent not in path:
                    path.append(file.parent.parent)
                names.append(str(file))
            arg = f"{key}={','.join(names)}"
        elif eq and key == "hydra.searchpath":
            path += [p for p in folders(os.pathsep.join(_searchpath_folders(value))) if p not in path]
        out.append(arg)
    use_folders(path)
    return out


@contextmanager
def scoped() -> Iterator[None]:
    """GF_CONFIG_PATH as it was once the block ends: `prepare` for one composition inside a longer-lived process
    (a CLI command reading config, a test) must not change what later compositions and child processes see."""
    before = os.environ.get(ENV)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def _searchpath_folders(value: str) -> list[str]:
    """The file folders of a `hydra.searchpath=[...]` override (pkg:// entries stay Hydra's alone)."""
    items = [i.strip().strip("'\"") for i in value.strip().strip("[]").split(",")]
    return [i.removeprefix("file://") for i in items if i and ("://" not in i or i.startswith("file://"))]


def roots_for(main: str) -> list[Path]:
    """The outside folders that come before the Hydra search path's main folder `main`: for the package's conf/,
    the GF_CONFIG_PATH folders; for a config root inside it (conf/alerts), the same subfolder of each, where there
    is one; for any other app, none."""
    main_dir = Path(main.removeprefix("file://")).resolve()
    try:
        sub = main_dir.relative_to(CONF_DIR.resolve())
    except ValueError:
        return []
    return [f / sub for f in folders() if (f / sub).is_dir()]


def source_of(config_path: str) -> Path | None:
    """The file that provides Hydra's `config_path` (`site/acme`, `scenario//abs/file.yaml`) on the search path:
    the first GF_CONFIG_PATH folder that has it, else the package's conf/ (None when none has it)."""
    group, _, name = config_path.partition("/")
    if group == SCENARIO and name.startswith("/"):
        return Path(name)
    name = config_path if config_path.endswith(SUFFIXES) else f"{config_path}.yaml"
    for root in [*folders(), CONF_DIR]:
        if (root / name).is_file():
            return root / name
    return None


def is_outside(file: Path) -> bool:
    """Whether `file` is a config outside the package's conf/."""
    return not file.resolve().is_relative_to(CONF_DIR.resolve())


def in_use(overrides: list[str]) -> bool:
    """Whether configs outside the package take part: a GF_CONFIG_PATH folder or a scenario file."""
    return bool(os.environ.get(ENV, "").strip(os.pathsep + " ")) or any(
        a.partition("=")[0].lstrip("+~") == SCENARIO and is_scenario_file(a.partition("=")[2].strip("'\""))
        for a in overrides)


def explain(message: str) -> tuple[str, Path | None]:
    """Hydra's composition error `message` with the file it is about named (Hydra names the config path only),
    and that file (None when not found)."""
    found = re.search(r"In '([^']+)'", message) or re.search(r"(?:merging|loading) '([^']+)'", message)
    file = source_of(found.group(1)) if found else None
    lines = message.strip().splitlines() or [message]
    if file is not None and found is not None:
        named = f"In {file}" if str(file) in found.group(1) else f"In '{found.group(1)}' (file {file})"
        lines[0] = lines[0].replace(found.group(0), named, 1)
    return "\n".join(lines), file
