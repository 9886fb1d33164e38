"""`guardianflow site add`: a new site and a scenario to start from, in a config folder outside the package (a
folder on GF_CONFIG_PATH: gfcore.config.searchpath)."""

from __future__ import annotations

import argparse
from pathlib import Path

SITE_YAML = """\
# {customer} / {region} / {plant} / {zone}: experiment {customer}/{region}-{plant}/{zone}.
# Written by `guardianflow site add`; add the site's own settings below (latency_budget_ms, conf_threshold ...).
customer: {customer}
region: {region}
plant: {plant}
zone: {zone}
"""

SCENARIO_YAML = """\
# @package _global_
# {customer} / {region} / {plant} / {zone}, task {task}: a scenario to start from (written by `guardianflow site add`).
# It builds on the package's `{base}` scenario, so it runs as is on the synthetic demo set. For the site's own data:
#   - override /data: yolo            (in the defaults below)
#   data: {{name: {name}, path: /path/to/data.yaml}}
# and set task.classes to the dataset's class names.
defaults:
  - {base}
  - override /site: {name}
  - override /task: {task}

exp:
  scenario: {name}
  version: v1
"""


def add(customer: str, region: str, plant: str, zone: str, task: str, config_dir: str | None = None,
        name: str | None = None, base: str = "demo") -> tuple[Path, Path, str]:
    """Write `site/<name>.yaml` and `scenario/<name>.yaml` into `config_dir` (default: the first GF_CONFIG_PATH
    folder), check that the scenario composes with them there, and return both paths and what to do before it
    runs ('' when it runs as is). Refuses to overwrite; a scenario that does not compose leaves no file behind (a
    ConfigError names the file)."""
    from gfcore.config import searchpath
    from gfcore.config.compose import compose_typed
    from gfcore.config.schema import DataKind, check_name_part
    from gfcore.core.errors import ConfigError
    from gfcore.data.synthetic import CLASS_NAMES

    for where, value in (("customer", customer), ("region", region), ("plant", plant), ("zone", zone)):
        check_name_part(f"site.{where}", value)
    name = name or f"{customer}_{region}_{plant}_{zone}"
    if not name or "/" in name or name.endswith(searchpath.SUFFIXES):
        raise ConfigError(f"--name {name!r}: a config name has no '/' and no .yaml ending.")
    on_path = searchpath.folders()
    if config_dir is None:
        if not on_path:
            raise ConfigError(f"no config folder: pass --config-dir DIR (a folder outside the package, e.g. a config "
                              f"repository), or set {searchpath.ENV} (its first folder is the default).")
        folder = on_path[0]
    else:
        folder = Path(config_dir).expanduser().absolute()
    if folder.resolve().is_relative_to(searchpath.CONF_DIR.resolve()):
        raise ConfigError(f"--config-dir {folder} is the package's conf/: a fleet's sites live outside it.")
    site, scenario = folder / "site" / f"{name}.yaml", folder / "scenario" / f"{name}.yaml"
    for file in (site, scenario):
        if file.exists():
            raise ConfigError(f"{file} exists and is not overwritten: edit it, remove it, or pick another --name.")
    values = dict(customer=customer, region=region, plant=plant, zone=zone, task=task, name=name, base=base)
    written = []
    try:
        for file, text in ((site, SITE_YAML), (scenario, SCENARIO_YAML)):
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text.format(**values))
            written.append(file)
        searchpath.use_folders([folder, *(f for f in on_path if f != folder)])
        try:
            cfg = compose_typed([f"scenario={name}"])
        finally:
            searchpath.use_folders(on_path)
    except BaseException:
        for file in written:
            file.unlink(missing_ok=True)
        raise
    note = ""
    if cfg.data.kind == DataKind.demo and list(cfg.task.classes) != list(CLASS_NAMES):
        note = (f"the demo set draws {', '.join(CLASS_NAMES)}, task {task} detects {', '.join(cfg.task.classes)}: "
                f"point the scenario at the site's dataset (see the comment in {scenario}) before it runs.")
    return site, scenario, note


def cmd_add(args: argparse.Namespace) -> None:
    site, scenario, note = add(args.customer, args.region, args.plant, args.zone, args.task, args.config_dir,
                               args.name, args.base)
    name = scenario.stem
    root = scenario.parent.parent
    print(f"wrote {site}\nwrote {scenario}\n"
          f"run it: GF_CONFIG_PATH={root} guardianflow run train scenario={name}\n"
          f"   or:  guardianflow run train scenario={scenario}" + (f"\nnote: {note}" if note else ""))


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("site", help="sites in a config folder outside the package (GF_CONFIG_PATH)")
    site_sub = p.add_subparsers(dest="site_command", required=True)
    a = site_sub.add_parser("add", help="write a new site and a scenario to start from, checked by composing them",
                            description="Writes a new site and a scenario to start from into a config folder "
                                        "outside the package, checked by composing them.\n\nexample:\n"
                                        "  guardianflow site add donghwa-entec busan plant1 welding --task ppe")
    a.add_argument("customer", help="the customer, e.g. donghwa-entec")
    a.add_argument("region", help="the customer's region, e.g. busan")
    a.add_argument("plant", help="the plant in the region, e.g. plant1")
    a.add_argument("zone", help="the zone the cameras watch, e.g. welding")
    a.add_argument("--task", required=True, help="a task preset: ppe, fall, fire ... (conf/task or the search path)")
    a.add_argument("--config-dir", default=None,
                   help="the config folder to write into (default: the first GF_CONFIG_PATH folder)")
    a.add_argument("--name", default=None, help="the site's and scenario's name (default: CUSTOMER_REGION_PLANT_ZONE)")
    a.add_argument("--base", default="demo", help="the scenario it builds on; smoke for a quick run")
    a.set_defaults(func=cmd_add)
