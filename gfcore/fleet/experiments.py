"""The site experiments at a glance (`guardianflow experiments`): each site's experiment with its run count, failed
runs, newest run and the models registered for it. Built on the fleet queries (`site_experiments`, `run_counts`,
`registered_models`); the newest run is one ordered read per experiment."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from gfcore.core.vocabulary import MODEL_PATH
from gfcore.fleet import queries


@dataclass
class SiteExperiment:
    experiment: str  # customer/region-plant/zone
    experiment_id: str
    runs: int = 0
    failed_runs: int = 0
    newest_run: str | None = None  # its start, UTC, `YYYY-MM-DD HH:MM`
    registered_models: list[str] = field(default_factory=list)  # the site's models, variants included

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@queries.bulk_read
def site_experiments(customer: str | None = None) -> list[SiteExperiment]:
    """Every site experiment (of `customer`), by name; an unknown customer is a ConfigError naming those there are."""
    c = queries.client()
    experiments = queries.site_experiments(c, customer)
    models = queries.registered_models(c, customer)
    queries._check_known(c, customer, None, models, experiments)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (site, _task), (runs, failed) in queries.run_counts(c, experiments, 0, None).items():
        counts[site][0] += runs
        counts[site][1] += failed
    by_site: dict[str, list[str]] = defaultdict(list)
    for m in models:
        path = m.tags.get(MODEL_PATH)  # customer/region-plant/zone/task[/variant]
        by_site["/".join(path.split("/")[:3]) if path else queries._site_from_name(m.name)].append(m.name)
    rows = []
    for name, experiment_id in sorted(experiments.items()):
        newest = c.search_runs([experiment_id], max_results=1, order_by=["attributes.start_time DESC"])
        rows.append(SiteExperiment(
            experiment=name, experiment_id=experiment_id, runs=counts[name][0], failed_runs=counts[name][1],
            newest_run=_when(newest[0].info.start_time) if newest else None,
            registered_models=sorted(by_site.get(name, []))))
    return rows


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
