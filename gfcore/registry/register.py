"""Registering a run's logged model under the site's name, with alias `candidate`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from gfcore.config.schema import Config
    from gfcore.data.dataset import DatasetInfo
    from gfcore.tracking.run import OwnedRun

CANDIDATE, CHAMPION, ROLLBACK = "candidate", "champion", "rollback"


@dataclass
class Registration:
    name: str
    version: str


def model_path(cfg: Config) -> str:
    """The slash form of the name, kept as the registered model's tag `gf.path`."""
    s = cfg.site
    return f"{s.customer}/{s.region}-{s.plant}/{s.zone}/{cfg.task.type.value}"


def register_model(model_uri: str, name: str, cfg: Config, run_id: str, version_tags: dict[str, Any],
                   path: str | None = None, description: str | None = None) -> Registration:
    """A new version of `name` from `model_uri`, tagged, with alias `candidate`; the run is tagged with it. The
    registered model gets a description (what it is, what its aliases mean) unless someone wrote one."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    model_tags = {MODEL_PATH: path or model_path(cfg), SITE_CUSTOMER: cfg.site.customer,
                  SITE_REGION: cfg.site.region, SITE_PLANT: cfg.site.plant, SITE_ZONE: cfg.site.zone,
                  TASK_TYPE: cfg.task.type.value, TASK_CLASSES: ",".join(cfg.task.classes)}
    try:
        mv = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in version_tags.items()})
        for key, value in model_tags.items():
            client.set_registered_model_tag(name, key, value)
        if not client.get_registered_model(name).description:
            client.update_registered_model(name, description=model_description(name, cfg))
        if description:
            client.update_model_version(name, mv.version, description=description)
        client.set_registered_model_alias(name, CANDIDATE, mv.version)
        client.set_tag(run_id, REGISTERED_MODEL, name)
        client.set_tag(run_id, REGISTERED_VERSION, str(mv.version))
    except MlflowException as exc:
        raise RegistryError(f"could not register {model_uri} as {name}: {exc.message}") from exc
    return Registration(name=name, version=str(mv.version))


def log_and_register(weights: Path, imgsz: int, example_image: Path | None, device: str, name: str, cfg: Config,
                     run: OwnedRun, version_tags: dict[str, Any], *, figures: dict[str, float], dataset: DatasetInfo,
                     path: str | None = None) -> Registration:
    """Log `weights` as the run's pyfunc model (named after what it is), record its headline `figures` on the
    run and on the logged model (with the split they were measured on), and register it under `name` with
    alias `candidate`; the version carries the figures and the evaluation basis as tags."""
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
                           path=path, description=version_description(figures, basis, source))


def model_description(name: str, cfg: Config) -> str:
    s = cfg.site
    base, _, variant = name.partition("__")
    what = f"The {variant.replace('_', ' ')} export of `{base}`" if variant else f"The {cfg.task.type.value} detector"
    return (f"{what} for site {s.customer}/{s.region}-{s.plant}/{s.zone} (classes: {', '.join(cfg.task.classes)}). "
            "Aliases: `champion` is what the site serves, `candidate` the newest version waiting for promotion, "
            "`rollback` the previous champion. Each version's tags hold its figures on the split named by "
            "`eval.split`: compare versions whose `eval.split` and `eval.dataset_digest` match.")


def version_description(figures: dict[str, float], basis: dict[str, str], source: str) -> str:
    """One sentence a person reads on the version page: where it comes from and its headline figures."""
    parts = [f"{k} {figures[k]:.3f}" for k in (DET_MAP50, DET_MAP50_95) if figures.get(k) is not None]
    text = f"{source}: {', '.join(parts) or 'no detection figures'} on {basis[EVAL_DATASET]} (digest " \
           f"{basis[EVAL_DATASET_DIGEST]})"
    if figures.get(SYS_LATENCY_P50_MS) is not None:
        text += f"; batch-1 latency p50 {figures[SYS_LATENCY_P50_MS]:.2f} ms"
        if figures.get(SYS_LATENCY_P95_MS) is not None:
            text += f", p95 {figures[SYS_LATENCY_P95_MS]:.2f} ms"
    if figures.get(SYS_MODEL_SIZE_MB) is not None:
        text += f"; {figures[SYS_MODEL_SIZE_MB]:.1f} MB"
    return text + "."


HEADLINE = (DET_MAP50, DET_MAP50_95, SYS_LATENCY_P50_MS, SYS_LATENCY_P95_MS, SYS_MODEL_SIZE_MB)


def headline_tags(figures: dict[str, float]) -> dict[str, str]:
    """The figures a person compares versions by, as version tags (the registry page shows tags)."""
    return {k: f"{figures[k]:.6g}" for k in HEADLINE if figures.get(k) is not None}


def train_version_tags(cfg: Config, run_id: str, data_hash: str) -> dict[str, Any]:
    tags: dict[str, Any] = {
        VERSION_ARCHITECTURE: arch_name(cfg.model.architecture),
        VERSION_IMGSZ: cfg.model.imgsz,
        VERSION_TASK: cfg.task.type.value,
        EXP_VERSION: cfg.exp.version,
        DATA_HASH: data_hash,
        VERSION_RUN_ID: run_id,
        VERSION_BACKEND: cfg.backend.name.value,
        VERSION_PRECISION: cfg.backend.precision.value,
    }
    return tags
