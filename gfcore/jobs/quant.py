"""The `quant` entry point's work: export a train run's model for a backend, measure source and result on the
same data with the same settings, record the comparison, and register the result as the site's variant."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gfcore import backends
from gfcore.backends.openvino_accuracy import VALIDATION_SPLIT
from gfcore.core.errors import ConfigError
from gfcore.core.paths import work_dir
from gfcore.core.vocabulary import (
    BACKEND_NAME,
    BACKEND_PRECISION,
    COMPARISON,
    DATA_HASH,
    DET_MAP50,
    DET_MAP50_95,
    EXP_VERSION,
    LATENCY_PROTOCOL,
    ORIGINAL,
    QUANT_CALIBRATION,
    QUANT_METHOD,
    QUANT_RECIPE,
    SOURCE_RUN_ID,
    SYS_LATENCY_P50_MS,
    SYS_MODEL_SIZE_MB,
    TASK_CLASSES,
    VERSION_ARCHITECTURE,
    VERSION_BACKEND,
    VERSION_IMGSZ,
    VERSION_PRECISION,
    VERSION_RUN_ID,
    VERSION_TASK,
    RunKind,
)
from gfcore.data.dataset import DatasetInfo, resolve_dataset, split_images
from gfcore.jobs import measure
from gfcore.jobs.plots import source_vs_variant
from gfcore.registry.register import log_and_register, model_path
from gfcore.tracking.lineage import eval_tags
from gfcore.tracking.naming import arch_name, registered_model_name, variant_model_name
from gfcore.tracking.run import OwnedRun, owned_run
from gfcore.tracking.server import check_tracking_store
from gfcore.tracking.source import SourceRun, check_source_run, download_weights
from gfcore.yolo import env as yolo_env

if TYPE_CHECKING:
    from gfcore.config.schema import Config

log = logging.getLogger(__name__)

def quant(cfg: Config) -> float:
    """Export and (for int8) quantize the source run's best.pt; returns the variant's det.mAP50_95."""
    yolo_env.configure()
    # Everything that can be wrong is found before any export or measurement.
    backends.check(cfg.backend)
    check_tracking_store()
    source = check_source_run(cfg.quant.source_run_id, "quant")
    _check_same_classes(source, cfg)
    dataset = resolve_dataset(cfg.data, cfg.task)
    split = cfg.registry.eval_split
    eval_images = split_images(dataset, split, "registry.eval_split")
    calibration = []
    if backends.needs_calibration(cfg.backend):
        calibration = split_images(dataset, cfg.backend.calibration_split, "backend.calibration_split")
        calibration = calibration[: cfg.backend.calibration_size]
    if cfg.backend.max_accuracy_drop is not None:  # NNCF measures the drop on the val split
        split_images(dataset, VALIDATION_SPLIT, "the split backend.max_accuracy_drop is measured on")

    with owned_run(cfg, RunKind.quant, data_hash=dataset.hash, data_pin=dataset.pin, source_run_id=source.run_id,
                   extra_tags={BACKEND_NAME: cfg.backend.name.value,
                               BACKEND_PRECISION: cfg.backend.precision.value}) as run:
        with work_dir("gf-quant-") as work:
            weights = download_weights(source, work / "source")
            exported = backends.get(cfg.backend)(backends.ExportRequest(
                weights=weights, imgsz=cfg.model.imgsz, out_dir=work / "export", data_yaml=dataset.data_yaml,
                calibration_images=calibration, backend=cfg.backend))
            run.set_tags({**_quant_tags(exported), **eval_tags(dataset, split),
                          LATENCY_PROTOCOL: measure.latency_protocol(cfg, dataset)})
            _log_quantization(run, exported)
            original = _measure(weights, cfg, dataset, eval_images, "source")
            quantized = _measure(exported.path, cfg, dataset, eval_images, cfg.backend.variant)
            comparison = compare(original, quantized)
            # The variant's own figures go under the names train and infer runs use (det.mAP50, ...), so the
            # runs table lines up; the source's are kept as original.* for the comparison.
            run.log_metrics({**{f"{ORIGINAL}{k}": v for k, v in original.items()}, **comparison})
            _log_chart(run, original, quantized, cfg.backend.variant, work)
            if cfg.registry.register:
                _register(cfg, run, source, dataset, exported, quantized, comparison)
            else:
                run.log_metrics(quantized)
        log.info("%s on the %s split: det.mAP50 %.3f -> %.3f, p50 %.1f -> %.1f ms, %.1f -> %.1f MB (run %s)",
                 cfg.backend.variant, split, original.get(DET_MAP50, 0), quantized.get(DET_MAP50, 0),
                 original[SYS_LATENCY_P50_MS], quantized[SYS_LATENCY_P50_MS], original[SYS_MODEL_SIZE_MB],
                 quantized[SYS_MODEL_SIZE_MB], run.label)
        return quantized.get(DET_MAP50_95, 0.0)


def compare(original: dict[str, float], quantized: dict[str, float]) -> dict[str, float]:
    """Accuracy lost, speed gained (p50 ratio) and size saved, source over variant."""
    out = {
        f"{COMPARISON}speedup_ratio": original[SYS_LATENCY_P50_MS] / quantized[SYS_LATENCY_P50_MS],
        f"{COMPARISON}compression_ratio": original[SYS_MODEL_SIZE_MB] / quantized[SYS_MODEL_SIZE_MB],
    }
    for key, name in ((DET_MAP50, f"{COMPARISON}accuracy_drop_mAP50"),
                      (DET_MAP50_95, f"{COMPARISON}accuracy_drop_mAP50_95")):
        if key in original and key in quantized:
            out[name] = original[key] - quantized[key]
    return out


def _quant_tags(exported: backends.Exported) -> dict[str, str]:
    """What ran, as the exporter called the runtime: static / dynamic, the calibration method, the recipe in words."""
    tags = {QUANT_METHOD: exported.quant_method, QUANT_RECIPE: exported.method, **exported.tags}
    if exported.calibration:
        tags[QUANT_CALIBRATION] = exported.calibration
    return tags


def _log_quantization(run: OwnedRun, exported: backends.Exported) -> None:
    """What the quantization itself measured (an accuracy-aware int8: the drop it reached, the layers it kept in
    float) and its reports, as artifacts under quant/."""
    import mlflow

    if exported.metrics:
        run.log_metrics(exported.metrics)
    for path in exported.files:
        mlflow.log_artifact(str(path), "quant")


def _measure(path: Path, cfg: Config, dataset: DatasetInfo, images: list[Path], label: str) -> dict[str, float]:
    return measure.evaluate(path, dataset.data_yaml, cfg.registry.eval_split, images, cfg.model.imgsz,
                            cfg.backend.device, dataset.names, cfg.latency.warmup, cfg.latency.runs, label,
                            op_conf=cfg.site.conf_threshold)


def _check_same_classes(source: SourceRun, cfg: Config) -> None:
    theirs = source.tags.get(TASK_CLASSES)
    ours = ",".join(cfg.task.classes)
    if theirs is not None and theirs != ours:
        raise ConfigError(f"source run {source.run_id} was trained for classes {theirs}, but this scenario's "
                          f"task.classes is {ours}: use the scenario the model was trained with.")


def _log_chart(run: OwnedRun, original: dict[str, float], quantized: dict[str, float], label: str,
               work: Path) -> None:
    import mlflow

    chart = source_vs_variant(original, quantized, label, work / "plots" / "source_vs_quantized.png")
    mlflow.log_artifact(str(chart), "plots")


def _register(cfg: Config, run: OwnedRun, source: SourceRun, dataset: DatasetInfo, exported: backends.Exported,
              figures: dict[str, float], comparison: dict[str, float]) -> None:
    backend, precision = cfg.backend.name.value, cfg.backend.precision.value
    name = variant_model_name(registered_model_name(cfg), backend, precision)
    tags = {**cfg.exp.tags, SOURCE_RUN_ID: source.run_id, VERSION_RUN_ID: run.run_id, VERSION_BACKEND: backend,
            VERSION_PRECISION: precision, **_quant_tags(exported),
            **{k: f"{v:.6g}" for k, v in exported.metrics.items()},
            VERSION_ARCHITECTURE: arch_name(cfg.model.architecture), VERSION_IMGSZ: cfg.model.imgsz,
            VERSION_TASK: cfg.task.type.value, EXP_VERSION: cfg.exp.version, DATA_HASH: dataset.hash,
            **{k: f"{v:.6g}" for k, v in comparison.items()}}
    device = "cpu" if not backends.is_cuda_device(cfg.backend.device) else cfg.backend.device
    reg = log_and_register(exported.path, cfg.model.imgsz, dataset.example_image(), device, name, cfg, run, tags,
                           figures=figures, dataset=dataset, path=f"{model_path(cfg)}/{backend}_{precision}")
    if reg is not None:
        log.info("registered %s version %s (%s)", reg.name, reg.version, reg.said())
