"""What alert rules and automation triggers look up beyond the fleet summary's rows, read from MLflow (and, for a
data change, from the data itself), each at most once per evaluation.

- a version's tags (a candidate's challenge verdict);
- the tracking figures of the previous champion (the `rollback` alias of the served model);
- runs started and FAILED per site in the last hours;
- whether the data of the champion's scenario hashes differently now than when it was trained;
- each site's settings from `conf/site/*.yaml` (latency budget, target backend, gates, per-site rule settings),
  keyed by the site's experiment name.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from gfcore.automation.challenge import config_of
from gfcore.config.compose import CONF_DIR
from gfcore.config.schema import SiteConfig
from gfcore.core.errors import GuardianFlowError
from gfcore.core.vocabulary import DATA_HASH, MOT_HOTA
from gfcore.data.dataset import resolve_dataset
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
    def data_change(self, model: str, version: str) -> tuple[str, str] | None:
        """(hash then, hash now) when the data of the scenario that trained `version` hashes differently now; None
        when unchanged, or when the data cannot be read here (logged, not guessed)."""
        run_id = self.client.get_model_version(model, version).run_id
        if not run_id:
            return None
        then = self.client.get_run(run_id).data.tags.get(DATA_HASH)
        try:
            cfg = config_of(run_id)
            now = resolve_dataset(cfg.data, cfg.task).hash
        except GuardianFlowError as exc:
            log.warning("%s v%s: the data it was trained on cannot be checked here (%s)", model, version, exc)
            return None
        return (then, now) if then and then != now else None


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
