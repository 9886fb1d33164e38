"""Fleet queries over MLflow: registered models, their aliases and version tags, and runs filtered on the server.

Every figure comes from what train, quant and infer recorded (docs/metrics.md): a version's headline figures are
its tags (`det.mAP50`, `sys.latency_p50_ms`, ... with `eval.split` / `eval.dataset_digest`), so the summary
reads one version per alias instead of runs and their histories.
"""

from __future__ import annotations

import functools
import gc
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import (
    CHALLENGE_CHAMPION_VERSION,
    CHALLENGE_VERDICT,
    DET_MAP50,
    DET_MAP50_95,
    EVAL_BASIS,
    EVAL_SPLIT,
    EXP_TYPE,
    MODEL_PATH,
    MOT_HOTA,
    MOT_IDF1,
    PARENT_KINDS,
    PROMOTED_AT,
    SITE_CUSTOMER,
    SITE_PLANT,
    SITE_REGION,
    SITE_ZONE,
    SOURCE_RUN_ID,
    SYS_LATENCY_P50_MS,
    SYS_LATENCY_P95_MS,
    TASK_CLASSES,
    TASK_TYPE,
    RunKind,
)
from gfcore.fleet.data_versions import champion_data, newer_data
from gfcore.fleet.figures import champion_figures
from gfcore.fleet.tagged import both, carries, tag_filter
from gfcore.tracking.server import check_tracking_store

DAY_MS = 86_400_000
SITE_TAGS = (SITE_CUSTOMER, SITE_REGION, SITE_PLANT, SITE_ZONE)
CHAMPION, CANDIDATE = "champion", "candidate"
_PAGE = 1000
PARENTS = PARENT_KINDS  # their best.* summarise children; they are not measurements


@dataclass
class SiteModel:
    """One row of `metrics summary`."""

    site: str  # customer/region-plant/zone, the experiment
    task: str | None
    model: str | None  # the registered model; None for a site with runs but nothing registered
    champion: str | None = None
    champion_days: float | None = None  # since it became champion (or was registered)
    det_mAP50: float | None = None
    det_mAP50_95: float | None = None
    eval_split: str | None = None
    deployed: str | None = None  # the variant that serves: `__openvino_int8`, or the model itself
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    hota: float | None = None
    idf1: float | None = None
    candidate: str | None = None
    candidate_same_basis: bool | None = None
    candidate_verdict: str | None = None  # its challenge against the current champion: better, tie, worse
    data: str | None = None  # what the champion was trained on: `yard@6cadb757b956`, `git 1a2b3c4d5e6f`, `hash ...`
    data_newer: str | None = None  # a newer pushed version of that dataset (`latest`), with what changed
    runs: int = 0
    failed_runs: int = 0
    # Not columns (alert rules read them): the champion run's det.op.* and det.ap50_95.{class}, its task's classes
    figures: dict[str, float] = field(default_factory=dict)
    classes: list[str] | None = None
    data_pin: tuple[str, str] | None = None  # (manifest URI, version) of the champion's pushed data version

    def as_dict(self) -> dict[str, Any]:
        """The columns: what `metrics summary --json` prints and the Grafana site-models panel's SQL gives."""
        return {k: v for k, v in asdict(self).items() if k not in ("figures", "classes", "data_pin")}


def bulk_read(fn: Any) -> Any:
    """Python's cyclic garbage collector off while a query reads runs. MLflow builds some 20 objects per run it
    returns, and each collection rescans every live one: with it on, reading 10,000 runs took 2.2-2.8x as long
    and grew faster than the runs (bench/fleet_scale.py). Nothing read here is cyclic garbage worth chasing
    mid-read; collection resumes when the query returns."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return wrapper


def _local_store() -> bool:
    import mlflow

    return not mlflow.get_tracking_uri().startswith(("http://", "https://", "databricks"))


def client() -> Any:
    import mlflow

    check_tracking_store()
    return mlflow.MlflowClient()


def site_experiments(mlflow_client: Any, customer: str | None = None) -> dict[str, str]:
    """Site experiments (`{customer}/{region}-{plant}/{zone}`): name -> id. GuardianFlow's own are not sites."""
    found: dict[str, str] = {}
    token = None
    while True:
        page = mlflow_client.search_experiments(filter_string="name LIKE '%/%/%'", max_results=_PAGE,
                                                page_token=token)
        for e in page:
            if e.name.startswith("guardianflow/") or (customer and e.name.split("/", 1)[0] != customer):
                continue
            found[e.name] = e.experiment_id
        token = page.token
        if not token:
            return found


def registered_models(mlflow_client: Any, customer: str | None = None, task: str | None = None) -> list[Any]:
    filters = [f"tags.`{SITE_CUSTOMER}` = '{customer}'" if customer else "",
               f"tags.`{TASK_TYPE}` = '{task}'" if task else ""]
    out, token = [], None
    while True:
        page = mlflow_client.search_registered_models(filter_string=" AND ".join(f for f in filters if f) or None,
                                                      max_results=_PAGE, page_token=token)
        out += list(page)
        token = page.token
        if not token:
            return out


@bulk_read
def summary(customer: str | None = None, task: str | None = None, days: int = 30,
            tags: dict[str, str] | None = None) -> list[SiteModel]:
    """One row per site model, plus sites with runs but no registered model. With `tags` (`--tag K=V`): only the
    site models whose champion carries them (`carries`), and the runs counted are the runs carrying them."""
    c = client()
    models = registered_models(c, customer, task)
    experiments = site_experiments(c, customer)
    _check_known(c, customer, task, models, experiments)
    bases = [m for m in models if "__" not in m.name]
    variants: dict[str, list[Any]] = defaultdict(list)
    for m in models:
        if "__" in m.name:
            variants[m.name.split("__", 1)[0]].append(m)
    since = int(time.time() * 1000) - days * DAY_MS
    counts = run_counts(c, experiments, since, task, tags)
    bases.sort(key=lambda m: m.name)
    rows = [SiteModel(site=m.tags.get(MODEL_PATH, "").rsplit("/", 1)[0] or _site_from_name(m.name),
                      task=m.tags.get(TASK_TYPE), model=m.name) for m in bases]

    def fill(i: int) -> None:
        _fill_champion(c, rows[i], bases[i], variants.get(bases[i].name, []), experiments.get(rows[i].site))

    # A few reads per model (its aliases' versions, the tracking run): in parallel against a server, where each is
    # a round trip; one at a time on a local file, where threads only contend.
    with ThreadPoolExecutor(1 if _local_store() else 8) as pool:
        list(pool.map(fill, range(len(rows))))
    seen_sites = {(row.site, row.task) for row in rows}  # a site model not tagged so is left out, not run-only
    if tags:
        rows = [row for row, m in zip(rows, bases)
                if row.champion is not None and carries(c, c.get_model_version(m.name, row.champion), tags)]
    newer = newer_data({r.data_pin for r in rows if r.data_pin})
    for row in rows:
        row.data_newer = newer.get(row.data_pin) if row.data_pin else None
        row.runs, row.failed_runs = counts.get((row.site, row.task), (0, 0))
    for (site, run_task), (runs, failed) in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        if (site, run_task) not in seen_sites:
            rows.append(SiteModel(site=site, task=run_task, model=None, runs=runs, failed_runs=failed))
    return rows


def _fill_champion(c: Any, row: SiteModel, model: Any, variants: list[Any], experiment_id: str | None) -> None:
    aliases = model.aliases or {}
    champ = _version(c, model.name, aliases.get(CHAMPION))
    cand = _version(c, model.name, aliases.get(CANDIDATE))
    if champ is not None:
        row.champion = str(champ.version)
        row.figures, row.classes = champion_figures(c, champ.run_id, model.tags.get(TASK_CLASSES))
        row.champion_days = _age_days(champ)
        row.det_mAP50, row.det_mAP50_95 = _num(champ.tags, DET_MAP50), _num(champ.tags, DET_MAP50_95)
        row.eval_split = champ.tags.get(EVAL_SPLIT)
        row.data, row.data_pin = champion_data(champ.tags)
        deployed, name = champ, model.name
        for v in sorted(variants, key=lambda v: v.name):  # a champion variant is what the site serves
            vv = _version(c, v.name, (v.aliases or {}).get(CHAMPION))
            if vv is not None:
                deployed, name = vv, v.name
                break
        row.deployed = name[len(model.name):] or "(itself)"
        row.latency_p50_ms = _num(deployed.tags, SYS_LATENCY_P50_MS)
        row.latency_p95_ms = _num(deployed.tags, SYS_LATENCY_P95_MS)
        if experiment_id and deployed.run_id:
            row.hota, row.idf1 = tracking_of(c, experiment_id, deployed.run_id)
    if cand is not None and (champ is None or cand.version != champ.version):
        row.candidate = str(cand.version)
        if champ is not None:
            row.candidate_same_basis = all(cand.tags.get(k) == champ.tags.get(k) and champ.tags.get(k)
                                           for k in EVAL_BASIS)
            if cand.tags.get(CHALLENGE_CHAMPION_VERSION) == row.champion:  # a verdict against another is stale
                row.candidate_verdict = cand.tags.get(CHALLENGE_VERDICT)


@bulk_read
def champions(customer: str | None = None, task: str | None = None) -> list[dict[str, Any]]:
    """Every champion, the trained model's and each variant's (`__openvino_int8`, ...), with its figures: what the
    sites could serve, for accuracy against latency."""
    c = client()
    out = []
    for m in sorted(registered_models(c, customer, task), key=lambda m: m.name):
        champ = _version(c, m.name, (m.aliases or {}).get(CHAMPION))
        if champ is None:
            continue
        base, _, variant = m.name.partition("__")
        out.append({"site": _site_from_name(base), "task": m.tags.get(TASK_TYPE) or base.rsplit(".", 1)[-1],
                    "model": base, "variant": variant or "pytorch_fp32", "version": str(champ.version),
                    "det_mAP50": _num(champ.tags, DET_MAP50), "det_mAP50_95": _num(champ.tags, DET_MAP50_95),
                    "latency_p50_ms": _num(champ.tags, SYS_LATENCY_P50_MS),
                    "latency_p95_ms": _num(champ.tags, SYS_LATENCY_P95_MS),
                    "eval_split": champ.tags.get(EVAL_SPLIT)})
    return out


def tracking_of(c: Any, experiment_id: str, source_run_id: str) -> tuple[float | None, float | None]:
    """HOTA and IDF1 of the newest finished infer run that measured the model of `source_run_id`."""
    runs = c.search_runs([experiment_id], max_results=1, order_by=["attributes.end_time DESC"],
                         filter_string=f"tags.`{SOURCE_RUN_ID}` = '{source_run_id}' and tags.`{EXP_TYPE}` = "
                                       f"'{RunKind.infer.value}' and attributes.status = 'FINISHED' and "
                                       f"metrics.`{MOT_HOTA}` >= 0")
    if not runs:
        return None, None
    m = runs[0].data.metrics
    return m.get(MOT_HOTA), m.get(MOT_IDF1)


def run_counts(c: Any, experiments: dict[str, str], since_ms: int, task: str | None,
               tags: dict[str, str] | None = None) -> dict[tuple, tuple]:
    """(site, task) -> (runs, failed runs) started since `since_ms` (carrying `tags`, when given); paged, attributes
    and tags only."""
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    by_id = {v: k for k, v in experiments.items()}
    if not by_id:
        return {}
    task_filter = f" and tags.`{TASK_TYPE}` = '{task}'" if task else ""
    token = None
    while True:
        page = c.search_runs(list(by_id), filter_string=both(f"attributes.start_time >= {since_ms}{task_filter}",
                                                             tag_filter(tags)),
                             max_results=_PAGE, page_token=token)
        for run in page:
            key = (by_id[run.info.experiment_id], run.data.tags.get(TASK_TYPE))
            counts[key][0] += 1
            counts[key][1] += run.info.status == "FAILED"
        token = page.token
        if not token:
            return {k: (v[0], v[1]) for k, v in counts.items()}


def iter_runs(c: Any, experiment_ids: list[str], filter_string: str) -> Any:
    if not experiment_ids:
        return
    token = None
    while True:
        page = c.search_runs(experiment_ids, filter_string=filter_string, max_results=_PAGE, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _check_known(c: Any, customer: str | None, task: str | None, models: list[Any],
                 experiments: dict[str, str]) -> None:
    if customer and not models and not experiments:
        customers = sorted({n.split("/", 1)[0] for n in site_experiments(c)})
        raise ConfigError(f"no site of customer {customer!r}: the store has {', '.join(customers) or 'no sites yet'}.")
    if task and not models:
        from gfcore.config.schema import TaskType

        if task not in TaskType.__members__:
            raise ConfigError(f"--task {task}: not a task type; use one of {', '.join(TaskType.__members__)}.")


def _version(c: Any, name: str, version: Any) -> Any:
    return c.get_model_version(name, str(version)) if version is not None else None


def _age_days(mv: Any) -> float:
    promoted = mv.tags.get(PROMOTED_AT)
    start = mv.creation_timestamp / 1000
    if promoted:
        try:
            start = datetime.fromisoformat(promoted.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return (time.time() - start) / 86400


def _num(tags: dict[str, str], key: str) -> float | None:
    try:
        return float(tags[key])
    except (KeyError, ValueError):
        return None


def _site_from_name(name: str) -> str:
    customer, region_plant, zone = name.split(".")[:3]
    return f"{customer}/{region_plant}/{zone}"
