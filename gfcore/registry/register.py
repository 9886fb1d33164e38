"""Registering a run's logged model under the site's name, with alias `candidate`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gfcore.config.schema import Config
from gfcore.errors import RegistryError
from gfcore.naming import arch_name

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
                   path: str | None = None) -> Registration:
    """A new version of `name` from `model_uri`, tagged, with alias `candidate`; the run is tagged with it."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    model_tags = {"gf.path": path or model_path(cfg), "site.customer": cfg.site.customer,
                  "site.region": cfg.site.region, "site.plant": cfg.site.plant, "site.zone": cfg.site.zone,
                  "task.type": cfg.task.type.value, "task.classes": ",".join(cfg.task.classes)}
    try:
        mv = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in version_tags.items()})
        for key, value in model_tags.items():
            client.set_registered_model_tag(name, key, value)
        client.set_registered_model_alias(name, CANDIDATE, mv.version)
        client.set_tag(run_id, "gf.registered_model", name)
        client.set_tag(run_id, "gf.registered_version", str(mv.version))
    except MlflowException as exc:
        raise RegistryError(f"could not register {model_uri} as {name}: {exc.message}") from exc
    return Registration(name=name, version=str(mv.version))


def log_and_register(weights: Path, imgsz: int, example_image: Path | None, device: str, name: str, cfg: Config,
                     run_id: str, version_tags: dict[str, Any], path: str | None = None) -> Registration:
    """Log `weights` as the run's pyfunc model and register it under `name` with alias `candidate`."""
    from gfcore.registry.pyfunc import log_detector

    info = log_detector(weights, imgsz, example_image=example_image, device=device)
    return register_model(info.model_uri, name, cfg, run_id, version_tags, path=path)


def train_version_tags(cfg: Config, run_id: str, data_hash: str, metrics: dict[str, float]) -> dict[str, Any]:
    tags: dict[str, Any] = {
        "architecture": arch_name(cfg.model.architecture),
        "imgsz": cfg.model.imgsz,
        "task": cfg.task.type.value,
        "exp.version": cfg.exp.version,
        "data.hash": data_hash,
        "run_id": run_id,
        "backend": cfg.backend.name.value,
        "precision": cfg.backend.precision.value,
    }
    for key in ("det.mAP50", "det.mAP50_95"):
        if key in metrics:
            tags[key] = f"{metrics[key]:.6f}"
    return tags
