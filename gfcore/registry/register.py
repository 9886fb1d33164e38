"""Registering a run's logged model under the site's name, with alias `candidate`; a sweep's job registers without
an alias (its sweep makes only its best job's version the candidate: gfcore.registry.lifecycle.choose_candidate)."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore.core import interrupts
from gfcore.core.errors import RegistryError
from gfcore.core.vocabulary import (
    DATA_HASH,
    DET_MAP50,
    DET_MAP50_95,
    EVAL_DATASET,
    EVAL_DATASET_DIGEST,
    EXP_VERSION,
    MODEL_PATH,
    REGISTERED_MODEL,
    REGISTERED_VERSION,
    SITE_CUSTOMER,
    SITE_PLANT,
    SITE_REGION,
    SITE_ZONE,
    SWEEP_BEST_OF,
    SWEEP_TRIAL_OF,
    SYS_LATENCY_P50_MS,
    SYS_LATENCY_P95_MS,
    SYS_MODEL_SIZE_MB,
    TASK_CLASSES,
    TASK_TYPE,
    VERSION_ARCHITECTURE,
    VERSION_BACKEND,
    VERSION_IMGSZ,
    VERSION_PRECISION,
    VERSION_RUN_ID,
    VERSION_TASK,
)
from gfcore.tracking.lineage import eval_tags, split_dataset
from gfcore.tracking.naming import arch_name, logged_model_name
from gfcore.tracking.run import PARENT_ENV

if TYPE_CHECKING:
    from gfcore.config.schema import Config
    from gfcore.data.dataset import DatasetInfo
    from gfcore.tracking.run import OwnedRun

log = logging.getLogger(__name__)

CANDIDATE, CHAMPION, ROLLBACK = "candidate", "champion", "rollback"


@dataclass
class Registration:
    name: str
    version: str
    alias: str | None = CANDIDATE  # None: a sweep's job, registered without one

    def said(self) -> str:
        return f"alias {self.alias}" if self.alias else "no alias: a sweep's job; its sweep chooses the candidate"


def model_path(cfg: Config) -> str:
    """The slash form of the name, kept as the registered model's tag `gf.path`."""
    s = cfg.site
    return f"{s.customer}/{s.region}-{s.plant}/{s.zone}/{cfg.task.type.value}"


def sweep_parent() -> str | None:
    """The sweep run this process's job belongs to (gfcore.orchestration.sweep hands it to its jobs), or None."""
    return os.environ.get(PARENT_ENV) or None


def register_model(model_uri: str, name: str, cfg: Config, run_id: str, version_tags: dict[str, Any],
                   path: str | None = None, description: str | None = None,
                   alias: str | None = CANDIDATE) -> Registration:
    """A new version of `name` from `model_uri`, tagged, with `alias` (`candidate`; None: no alias); the run is
    tagged with it. The registered model gets a description (what it is, what its aliases mean) unless someone
    wrote one."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    model_tags = {MODEL_PATH: path or model_path(cfg), SITE_CUSTOMER: cfg.site.customer,
                  SITE_REGION: cfg.site.region, SITE_PLANT: cfg.site.plant, SITE_ZONE: cfg.site.zone,
                  TASK_TYPE: cfg.task.type.value, TASK_CLASSES: ",".join(cfg.task.classes)}
    interrupts.raise_if_stopped()  # a process told to stop registers nothing, even if a library swallowed it
    try:
        mv = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in version_tags.items()})
        for key, value in model_tags.items():
            client.set_registered_model_tag(name, key, value)
        if not client.get_registered_model(name).description:
            client.update_registered_model(name, description=model_description(name, cfg))
        if description:
            client.update_model_version(name, mv.version, description=description)
        if alias:
            client.set_registered_model_alias(name, alias, mv.version)
        client.set_tag(run_id, REGISTERED_MODEL, name)
        client.set_tag(run_id, REGISTERED_VERSION, str(mv.version))
    except MlflowException as exc:
        raise RegistryError(f"could not register {model_uri} as {name}: {exc.message}") from exc
    return Registration(name=name, version=str(mv.version), alias=alias)


def log_and_register(weights: Path, imgsz: int, example_image: Path | None, device: str, name: str, cfg: Config,
                     run: OwnedRun, version_tags: dict[str, Any], *, figures: dict[str, float], dataset: DatasetInfo,
                     path: str | None = None) -> Registration | None:
    """Log `weights` as the run's pyfunc model (named after what it is), record its headline `figures` on the
    run and on the logged model (with the split they were measured on), and register it under `name` with
    alias `candidate`; the version carries the figures and the evaluation basis as tags. A sweep's job registers
    without an alias, its version tagged `gf.sweep.trial_of` = the sweep's run: every trial moving `candidate` would
    leave it on the last trial, not the best; the sweep moves it once it knows the best (sweep.summarise).

    A journaled run (gfcore.tracking.journal) does it in the journal's order, once the server has the run's
    records (at once while it answers; after an outage, or at `guardianflow sync`): None is returned then."""
    from gfcore.config.compose import to_container
    from gfcore.tracking import journal

    parent = sweep_parent()
    alias = None if parent else CANDIDATE
    version_tags = {**version_tags, **({SWEEP_TRIAL_OF: parent} if parent else {})}
    kwargs = {"imgsz": imgsz, "device": device, "name": name, "cfg": to_container(cfg),
              "version_tags": {k: str(v) for k, v in version_tags.items()}, "figures": figures,
              "dataset": dataset_record(dataset), "path": path, "alias": alias}
    files = {"weights": weights, **({"example_image": example_image} if example_image else {})}
    if journal.call(run.run_id, "gfcore.registry.register:replay_log_and_register", kwargs, files):
        log.info("%s: the model's logging and registration wait in the run's journal (sent in order)", name)
        return None
    return _log_and_register(weights, imgsz, example_image, device, name, cfg, run, version_tags, figures, dataset,
                             path, alias)


def _log_and_register(weights: Path, imgsz: int, example_image: Path | None, device: str, name: str, cfg: Config,
                      run: OwnedRun, version_tags: dict[str, Any], figures: dict[str, float], dataset: DatasetInfo,
                      path: str | None, alias: str | None) -> Registration:
    import mlflow

    from gfcore.registry.pyfunc import log_detector

    split = cfg.registry.eval_split
    basis = eval_tags(dataset, split)
    info = log_detector(weights, imgsz, example_image=example_image, device=device, name=logged_model_name(cfg))
    run.log_metrics(figures, model_id=info.model_id, dataset=split_dataset(dataset, split))
    mlflow.set_logged_model_tags(info.model_id, {**basis, VERSION_BACKEND: cfg.backend.name.value,
                                                 VERSION_PRECISION: cfg.backend.precision.value})
    source = f"{cfg.backend.variant} model of run {run.run_id}"
    return register_model(info.model_uri, name, cfg, run.run_id, {**version_tags, **basis, **headline_tags(figures)},
                           path=path, description=version_description(figures, basis, source, dataset), alias=alias)


def dataset_record(dataset: DatasetInfo) -> dict[str, Any]:
    return {"name": dataset.name, "data_yaml": str(dataset.data_yaml), "root": str(dataset.root),
            "names": list(dataset.names), "hash": dataset.hash, "counts": dict(dataset.counts), "source": dataset.source,
            "splits": {k: [str(p) for p in v] for k, v in dataset.splits.items()},
            "pin": dataclasses.asdict(dataset.pin) if dataset.pin else None}


def replay_log_and_register(run_id: str, weights: str, imgsz: int, device: str, name: str, cfg: dict[str, Any],
                            version_tags: dict[str, str], figures: dict[str, float], dataset: dict[str, Any],
                            path: str | None = None, example_image: str | None = None,
                            alias: str | None = CANDIDATE) -> Registration | None:
    """A journaled `log_and_register`, sent: done once (a version of `name` made by this run means it was). A
    sweep's job (`alias` None) whose sweep already named it best (its run's tag `gf.sweep.best_of`, set before
    the sweep looked for its version) becomes `candidate` here: sent after its sweep ended, it is still chosen."""
    import mlflow
    from omegaconf import OmegaConf

    from gfcore.config.compose import to_typed
    from gfcore.config.schema import Config
    from gfcore.data.dataset import DataPin, DatasetInfo
    from gfcore.tracking.run import OwnedRun

    client = mlflow.MlflowClient()
    done = [v for v in client.search_model_versions(f"name='{name}'") if v.run_id == run_id]
    if done:
        log.info("%s version %s of run %s was registered before; not again", name, done[0].version, run_id)
        return None
    typed = to_typed(OmegaConf.merge(OmegaConf.structured(Config), cfg))
    info = DatasetInfo(**{**dataset, "data_yaml": Path(dataset["data_yaml"]), "root": Path(dataset["root"]),
                          "splits": {k: [Path(p) for p in v] for k, v in dataset["splits"].items()},
                          "pin": DataPin(**dataset["pin"]) if dataset.get("pin") else None})
    run = OwnedRun(run_id=run_id, experiment_id=client.get_run(run_id).info.experiment_id)
    reg = _log_and_register(Path(weights), imgsz, Path(example_image) if example_image else None, device, name,
                            typed, run, version_tags, figures, info, path, alias)
    best_of = client.get_run(run_id).data.tags.get(SWEEP_BEST_OF) if alias is None else None
    if best_of:
        client.set_registered_model_alias(name, CANDIDATE, reg.version)
        client.set_model_version_tag(name, reg.version, SWEEP_BEST_OF, best_of)
    log.info("registered %s version %s (%s) from run %s's journal", reg.name, reg.version,
             "alias candidate" if alias or best_of else "no alias: a sweep's job", run_id)
    return reg


def model_description(name: str, cfg: Config) -> str:
    s = cfg.site
    base, _, variant = name.partition("__")
    what = f"The {variant.replace('_', ' ')} export of `{base}`" if variant else f"The {cfg.task.type.value} detector"
    return (f"{what} for site {s.customer}/{s.region}-{s.plant}/{s.zone} (classes: {', '.join(cfg.task.classes)}). "
            "Aliases: `champion` is what the site serves, `candidate` the newest version waiting for promotion (of a "
            "sweep, its best job's only: the others have no alias), "
            "`rollback` the previous champion. Each version's tags hold its figures on the split named by "
            "`eval.split`: compare versions whose `eval.split` and `eval.dataset_digest` match.")


def version_description(figures: dict[str, float], basis: dict[str, str], source: str,
                        data: DatasetInfo | None = None) -> str:
    """One sentence a person reads on the version page: where it comes from, its headline figures and, for data
    that can be fetched again, which version it was trained on."""
    parts = [f"{k} {figures[k]:.3f}" for k in (DET_MAP50, DET_MAP50_95) if figures.get(k) is not None]
    text = f"{source}: {', '.join(parts) or 'no detection figures'} on {basis[EVAL_DATASET]} (digest " \
           f"{basis[EVAL_DATASET_DIGEST]})"
    if figures.get(SYS_LATENCY_P50_MS) is not None:
        text += f"; batch-1 latency p50 {figures[SYS_LATENCY_P50_MS]:.2f} ms"
        if figures.get(SYS_LATENCY_P95_MS) is not None:
            text += f", p95 {figures[SYS_LATENCY_P95_MS]:.2f} ms"
    if figures.get(SYS_MODEL_SIZE_MB) is not None:
        text += f"; {figures[SYS_MODEL_SIZE_MB]:.1f} MB"
    if data is not None and data.pin is not None:
        what = f"{data.name}@{data.pin.version}" if data.pin.version else f"{data.name} at git {data.pin.rev[:12]}"
        text += f". Data: {what}, fetchable from {data.pin.uri}"
    return text + "."


HEADLINE = (DET_MAP50, DET_MAP50_95, SYS_LATENCY_P50_MS, SYS_LATENCY_P95_MS, SYS_MODEL_SIZE_MB)


def headline_tags(figures: dict[str, float]) -> dict[str, str]:
    """The figures a person compares versions by, as version tags (the registry page shows tags)."""
    return {k: f"{figures[k]:.6g}" for k in HEADLINE if figures.get(k) is not None}


def train_version_tags(cfg: Config, run_id: str, dataset: DatasetInfo) -> dict[str, Any]:
    tags: dict[str, Any] = {
        **cfg.exp.tags,  # the scenario's own tags (purpose, ticket, ...), as on its runs
        VERSION_ARCHITECTURE: arch_name(cfg.model.architecture),
        VERSION_IMGSZ: cfg.model.imgsz,
        VERSION_TASK: cfg.task.type.value,
        EXP_VERSION: cfg.exp.version,
        DATA_HASH: dataset.hash,
        **(dataset.pin.tags() if dataset.pin else {}),
        VERSION_RUN_ID: run_id,
        VERSION_BACKEND: cfg.backend.name.value,
        VERSION_PRECISION: cfg.backend.precision.value,
    }
    return tags
