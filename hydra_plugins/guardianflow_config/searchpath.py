"""Configs outside the package on Hydra's search path (gfcore.config.searchpath says what and why): the
GF_CONFIG_PATH folders in front of the package's conf/, and `scenario=/abs/file.yaml` answered by a config source
of its own. Hydra finds both here, in every GuardianFlow Hydra app and every `compose`, so the entry points, the
CLI and the child steps share one search path. It lives in `hydra_plugins` because Hydra loads plugins from there."""

# No `from __future__ import annotations`: Hydra loads plugin modules outside sys.modules.
import os
from typing import List, Optional

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

from gfcore.config import searchpath

SCHEME = "gf-scenario-file"


class GuardianFlowSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        mains = [e.path for e in search_path.get_path() if e.provider == "main" and e.path]
        if not mains:
            return
        roots = searchpath.roots_for(mains[0])
        if not roots and not _is_conf(mains[0]):
            return
        anchor = SearchPathQuery(provider="main")
        for root in roots:  # each in front of conf/, in GF_CONFIG_PATH's order
            search_path.prepend(provider="GF_CONFIG_PATH", path=f"file://{root}", anchor=anchor)
        if _is_conf(mains[0]):
            search_path.append(provider="scenario=PATH.yaml", path=f"{SCHEME}://")


def _is_conf(main: str) -> bool:
    return os.path.realpath(main.removeprefix("file://")) == os.path.realpath(searchpath.CONF_DIR)


class ScenarioFileSource(ConfigSource):
    """Answers `scenario//abs/path/name.yaml` (the option `scenario=/abs/path/name.yaml`) with that file."""

    @staticmethod
    def scheme() -> str:
        return SCHEME

    @staticmethod
    def _file(config_path: str) -> Optional[str]:
        group, _, name = config_path.partition("/")
        if group != searchpath.SCENARIO or not name.startswith("/") or not name.endswith(searchpath.SUFFIXES):
            return None
        return name

    def load_config(self, config_path: str) -> ConfigResult:
        file = self._file(config_path)
        if file is None or not os.path.isfile(file):
            raise ConfigLoadError(f"Config not found : {file or config_path}")
        with open(file, encoding="utf-8") as f:
            header = ConfigSource._get_header_dict(f.read(512))
            f.seek(0)
            cfg = OmegaConf.load(f)
        return ConfigResult(config=cfg, path=f"file://{os.path.dirname(file)}", provider=self.provider,
                            header=header)

    def available(self) -> bool:
        return True

    def is_group(self, config_path: str) -> bool:
        return config_path in ("", searchpath.SCENARIO)

    def is_config(self, config_path: str) -> bool:
        file = self._file(config_path)
        return file is not None and os.path.isfile(file)

    def list(self, config_path: str, results_filter: Optional[ObjectType]) -> List[str]:
        return []  # any file: nothing to list
