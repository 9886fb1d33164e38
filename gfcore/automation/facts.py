"""What alert rules and automation triggers look up beyond the fleet summary's rows, read from MLflow (and, for a
data change, from the data itself), each at most once per evaluation.

- a version's tags (a candidate's challenge verdict);
- the tracking figures of the previous champion (the `rollback` alias of the served model);
- runs started and FAILED per site in the last hours;
- whether the data of the champion's scenario changed since it was trained (a newer pushed version, or a different
  hash now), and what changed;
- each site's settings from `conf/site/*.yaml` (latency budget, target backend, gates, per-site rule settings),
  keyed by the site's experiment name.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from gfcore.automation.challenge import config_of
from gfcore.config.compose import CONF_DIR
from gfcore.config.schema import DataKind, SiteConfig
from gfcore.core.errors import GuardianFlowError
from gfcore.core.vocabulary import DATA_HASH, DATA_REV, DATA_URI, DATA_VERSION, MOT_HOTA
from gfcore.data.dataset import resolve_dataset
from gfcore.data.versions import diff as diffs
from gfcore.data.versions import store as versions
from gfcore.data.versions.store import Store
from gfcore.fleet.queries import run_counts, tracking_of
from gfcore.tracking.naming import experiment_name

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000


class Facts:
    def __init__(self, client: Any = None) -> None:
        import mlflow

        self.client = client or mlflow.MlflowClient()
        self._experiments: dict[str, str] | None = None
        self._models: list[str] | None = None

    def experiments(self) -> dict[str, str]:
        """Site experiment name -> id."""
        if self._experiments is None:
            from gfcore.fleet.queries import site_experiments

            self._experiments = site_experiments(self.client)
        return self._experiments

    def variants(self, model: str) -> list[str]:
        """The registered quantized variants of `model` (`model__openvino_int8`, ...)."""
        if self._models is None:
            from gfcore.fleet.queries import registered_models

            self._models = [m.name for m in registered_models(self.client)]
        return sorted(n for n in self._models if n.startswith(f"{model}__"))

    @functools.lru_cache(maxsize=None)
    def version_tags(self, model: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(model, version).tags or {})

    @functools.lru_cache(maxsize=None)
    def alias(self, model: str, alias: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(model, alias)
        except MlflowException:
            return None

    def previous_tracking(self, site: str, model: str, deployed: str | None,
                          metric: str = MOT_HOTA) -> tuple[str, float | None] | None:
        """(version, HOTA or IDF1) of the previous champion of the served model (its `rollback`), where one was
        measured."""
        served = model + (deployed if deployed and deployed.startswith("__") else "")
        previous = self.alias(served, "rollback")
        experiment = self.experiments().get(site)
        if previous is None or experiment is None or not previous.run_id:
            return None
        hota, idf1 = tracking_of(self.client, experiment, previous.run_id)
        return str(previous.version), hota if metric == MOT_HOTA else idf1

    @functools.lru_cache(maxsize=None)
    def run_counts(self, hours: float) -> dict[tuple[str, str | None], tuple[int, int]]:
        """(site, task) -> (runs, FAILED runs) started in the last `hours`."""
        return run_counts(self.client, self.experiments(), int(time.time() * 1000 - hours * HOUR_MS), None)

    @functools.lru_cache(maxsize=None)
    def data_change(self, model: str, version: str) -> DataChange | None:
        """How the data of the scenario that trained `version` differs now: for a pushed version, the dataset's
        `latest` against the version it was trained on (with what changed, from the two manifests); otherwise the
        data's hash now against then. None when unchanged, or when the data cannot be read here (logged, not
        guessed)."""
        run_id = self.client.get_model_version(model, version).run_id
        if not run_id:
            return None
        tags = self.client.get_run(run_id).data.tags
        then = tags.get(DATA_HASH)
        try:
            cfg = config_of(run_id)
            if cfg.data.kind == DataKind.versioned and tags.get(DATA_VERSION) and tags.get(DATA_URI):
                store, name = Store.of_manifest(tags[DATA_URI])
                return _version_change(name, tags[DATA_VERSION], store, then)
            now = resolve_dataset(cfg.data, cfg.task)
        except GuardianFlowError as exc:
            # Said on every read of the fleet otherwise; the entry points log INFO, the read-only commands do not.
            log.info("%s v%s: the data it was trained on cannot be checked here (%s)", model, version, exc)
            return None
        if not then or then == now.hash:
            return None
        if now.pin and now.pin.rev and tags.get(DATA_REV):  # a DVC dataset: name the commits
            where = cfg.data.path
            return DataChange(then, now.hash, f"{where}@{tags[DATA_REV][:12]}", f"{where}@{now.pin.rev[:12]}")
        return DataChange(then, now.hash)


@dataclass(frozen=True)
class DataChange:
    """The data a champion was trained on and the newer data; `then` / `now` name them (`yard@6cadb757b956`, a DVC
    path at a commit), `diff` says what changed between two pushed versions."""

    hash_then: str
    hash_now: str | None  # None for a pushed version not fetched here (its manifest says what changed)
    then: str | None = None
    now: str | None = None
    diff: str | None = None
    version_now: str | None = None

    def describe(self) -> str:
        """What the champion was trained on and what is newer, for a message: `yard@1a2b...; newer: yard@3c4d...
        (latest): images +0 -0, 1 changed; ...`, or the two hashes."""
        if self.then and self.now:
            return f"{self.then}; newer: {self.now}" + (f": {self.diff}" if self.diff else "")
        return f"data that changed since (hash {self.hash_then[:12]} then, {(self.hash_now or '?')[:12]} now)"

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"data_hash_then": self.hash_then, "data_hash_now": self.hash_now}
        if self.then:
            out.update(data_then=self.then, data_now=self.now)
        if self.version_now:
            out.update(data_version_now=self.version_now, data_diff=self.diff)
        return out


def _version_change(name: str, version: str, store: Store, hash_then: str | None) -> DataChange | None:
    newest = versions.resolve(name, versions.LATEST, store)
    if newest == version:
        return None
    (before, _), (after, _) = versions.read_manifest(name, version, store), versions.read_manifest(name, newest, store)
    return DataChange(hash_then or "", None, f"{name}@{version}", f"{name}@{newest} (latest)",
                      diffs.summary(diffs.diff(before, after)), version_now=newest)


@functools.lru_cache(maxsize=1)
def site_settings() -> dict[str, dict[str, Any]]:
    """Each site option of `conf/site/` on the schema, keyed by its experiment (`customer/region-plant/zone`)."""
    from omegaconf import OmegaConf

    out = {}
    for path in sorted((CONF_DIR / "site").glob("*.yaml")):
        site = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(SiteConfig), OmegaConf.load(path)))
        out[experiment_name(site)] = {"latency_budget_ms": site.latency_budget_ms, "alerts": site.alerts,
                                      "target_backend": site.target_backend, "gates": list(site.gates),
                                      "option": path.stem}
    return out
