"""The `infer` entry point's work: benchmark one model the way a site will use it.

Detection metrics on the scenario's split, latency and throughput per batch size after warm-up with a
system snapshot (and from them the best batch size within the site's latency budget, with a per-batch table),
and, where the data has video sequences, tracking scored with TrackEval. The model
(a registry or run URI, a path, or a run's model) is fetched and loaded before the run exists, so a
model that does not resolve or cannot run here never leaves a run behind.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from pathlib import Path
from typing import Any

from gfcore.backends import is_cuda_device, require_cuda
from gfcore.config.schema import BackendName, Config, Precision
from gfcore.core.errors import ConfigError, ModelError
from gfcore.core.paths import work_dir
from gfcore.core.vocabulary import (
    BACKEND_NAME,
    BACKEND_PRECISION,
    BEST_BATCH_RULE,
    DET_MAP50,
    DET_MAP50_95,
    INFER_IMGSZ,
    LATENCY_PROTOCOL,
    MODEL_URI,
    MOT,
    SOURCE_RUN_ID,
    SYS_BEST_BATCH_SIZE,
    SYS_BEST_THROUGHPUT_IPS,
    SYS_LATENCY_P50_MS,
    SYS_MODEL_GFLOPS,
    SYS_MODEL_PARAMS_M,
    SYS_MODEL_SIZE_MB,
    TRACKING_TRACKER,
    RunKind,
)
from gfcore.data.dataset import resolve_dataset, sequences_folder, split_images
from gfcore.jobs import measure
from gfcore.jobs.plots import latency_vs_batch, mot_per_sequence
from gfcore.jobs.system import SystemSampler
from gfcore.mot import COMBINED, FALSE_ALARMS_PER_1K_FRAMES, METRICS
from gfcore.mot.evaluate import evaluate_mot
from gfcore.mot.files import SeqInfo, check_frames, check_gt, discover_sequences
from gfcore.registry.resolve import ResolvedModel, resolve_model
from gfcore.tracking.lineage import eval_tags
from gfcore.tracking.run import OwnedRun, owned_run
from gfcore.tracking.server import check_tracking_store
from gfcore.yolo import env as yolo_env
from gfcore.yolo.track import track_sequence

log = logging.getLogger(__name__)

OBJECTIVE = DET_MAP50_95


def infer(cfg: Config) -> float:
    """Measure the model; returns its det.mAP50_95."""
    yolo_env.configure()
    check_tracking_store()
    dataset = resolve_dataset(cfg.data, cfg.task)
    split = cfg.infer.split or cfg.registry.eval_split
    images = split_images(dataset, split, "infer.split")
    sequences = sequences_of(cfg) if cfg.infer.tracking.enabled else []

    with work_dir("gf-infer-") as work:
        ref = resolve_model(cfg.infer.model_uri, cfg.infer.source_run_id, work / "model")
        device = cfg.backend.device
        check_runtime(ref, device)
        imgsz = ref.imgsz or cfg.model.imgsz
        model = load_checked(ref, images[0], imgsz, device, dataset.names)
        # The recorded config describes what was measured: the backend follows the model file.
        measured = as_measured(cfg, ref)
        tags = {BACKEND_NAME: ref.backend, MODEL_URI: ref.uri, INFER_IMGSZ: imgsz, **eval_tags(dataset, split),
                LATENCY_PROTOCOL: measure.latency_protocol(cfg, dataset, sorted(set(cfg.infer.batch_sizes)),
                                                           split, imgsz)}
        if ref.precision:
            tags[BACKEND_PRECISION] = ref.precision
        if sequences:
            tags[TRACKING_TRACKER] = cfg.infer.tracking.tracker.value

        with owned_run(measured, RunKind.infer, data_hash=dataset.hash, data_pin=dataset.pin, source_run_id=ref.source_run_id,
                       extra_tags=tags) as run:
            from gfcore.tracking.lineage import log_dataset_inputs

            log_dataset_inputs(dataset, contexts={split: "evaluation"})
            det = measure.detection(model, dataset.data_yaml, split, imgsz, device, dataset.names,
                                    conf=cfg.infer.conf, iou=cfg.infer.iou, op_conf=cfg.site.conf_threshold)
            run.log_metrics(det)
            speed = _latency(run, model, cfg, images, imgsz, device, ref, work)
            run.log_metrics(_model_stats(ref, imgsz))
            mot = _tracking(run, model, cfg, sequences, imgsz, device, work) if sequences else {}
        log.info("infer %s (%s): det.mAP50 %.3f, batch-1 p50 %.1f ms%s (run %s)", ref.uri, ref.backend,
                 det.get(DET_MAP50, 0.0), speed.get(SYS_LATENCY_P50_MS, float("nan")),
                 f", mot.hota {mot['hota']:.3f}, mot.idf1 {mot['idf1']:.3f}" if mot else "", run.label)
        return det.get(OBJECTIVE, 0.0)


def sequences_of(cfg: Config) -> list[SeqInfo]:
    folder = sequences_folder(cfg.data)
    if folder is None:
        raise ConfigError("infer.tracking.enabled=true, but the dataset has no video sequences: set "
                          "data.sequences_dir=DIR (MOTChallenge layout: <seq>/gt/gt.txt, seqinfo.ini, img1/), or "
                          "infer.tracking.enabled=false.")
    infos = discover_sequences(folder)
    for info in infos:  # bad ground truth or missing frames fail now, not after the detection benchmark
        check_gt(info.gt_file, info, cfg.infer.tracking.benchmark)
        check_frames(info)
    return infos


def check_runtime(ref: ResolvedModel, device: str) -> None:
    if ref.backend == "tensorrt":
        from gfcore.backends.tensorrt import check_available

        check_available(device)
    elif is_cuda_device(device):
        require_cuda(f"backend.device={device}", "set backend.device=cpu")


def load_checked(ref: ResolvedModel, image: Path, imgsz: int, device: str, names: list[str]) -> Any:
    """Load the model and predict one real image, so a file that cannot run here fails before the run."""
    try:
        model = measure.load(ref.path)
        model.predict(str(image), imgsz=imgsz, device=device, verbose=False)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"the model {ref.path} (from {ref.uri}, {ref.backend}) cannot run here at imgsz {imgsz} on "
                         f"device {device}: {first}. Check that the file is complete and was exported for this "
                         "runtime, or measure another model.") from exc
    theirs = [model.names[i] for i in sorted(model.names)]
    if theirs != list(names):
        raise ConfigError(f"the model {ref.uri} detects {theirs}, but the scenario's data has classes {list(names)}: "
                          "use the scenario the model was trained with.")
    return model


def as_measured(cfg: Config, ref: ResolvedModel) -> Config:
    backend = dataclasses.replace(cfg.backend, name=BackendName(ref.backend))
    if ref.precision in Precision.__members__:
        backend = dataclasses.replace(backend, precision=Precision(ref.precision))
    infer = dataclasses.replace(cfg.infer, model_uri=ref.uri)
    return dataclasses.replace(cfg, backend=backend, infer=infer)


def _latency(run: OwnedRun, model: Any, cfg: Config, images: list[Path], imgsz: int, device: str,
             ref: ResolvedModel, work: Path) -> dict[str, float]:
    """Batch 1 under the plain sys.latency_* names, other sizes as sys.bs{N}.*, the system snapshot, the chart."""
    from tqdm import tqdm

    sizes = sorted(set(cfg.infer.batch_sizes))
    frames = measure.read_frames(images)
    per_batch: dict[int, dict[str, float]] = {}
    metrics: dict[str, float] = {}
    warmup, runs = cfg.latency.warmup, cfg.latency.runs
    total = len(sizes) * (warmup + runs)
    with SystemSampler(device) as sampler, tqdm(total=total, desc="latency", unit="call") as bar:
        for size in sizes:
            bar.set_postfix(batch=size)
            samples = measure.time_batches(model, frames, imgsz, device, size, warmup, runs, bar.update)
            per_batch[size] = samples.metrics()
            metrics.update(measure.batch_metrics(samples))
    metrics.update(sampler.metrics())
    run.log_metrics(metrics)
    _best_batch(run, per_batch, cfg.site.latency_budget_ms)
    if cfg.tracking.log_plots:
        import mlflow

        chart = latency_vs_batch(per_batch, f"{ref.backend} {ref.precision or ''} @ {imgsz}px on {device}".strip(),
                                 work / "plots" / "latency_vs_batch.png")
        mlflow.log_artifact(str(chart), "plots")
    return metrics


def _best_batch(run: OwnedRun, per_batch: dict[int, dict[str, float]], budget_ms: float | None) -> None:
    """sys.best_throughput_ips and sys.best_batch_size (within the site's latency budget, where one is set), how
    they were chosen as the tag sys.best_batch_rule, and the per-batch table (latency/per_batch.json and the MLflow
    table latency/per_batch_table.json), all from the figures just measured."""
    import mlflow

    rows = measure.batch_table(per_batch, budget_ms)
    best = measure.best_batch(rows)
    sizes = ", ".join(str(r["batch_size"]) for r in rows)
    if budget_ms is None:
        scope = f"of batch sizes {sizes} (no site.latency_budget_ms)"
    else:
        within = ", ".join(str(r["batch_size"]) for r in rows if r["within_budget"])
        scope = (f"of the batch sizes whose p95 per batch call is within site.latency_budget_ms={budget_ms:g} ms "
                 f"({within or 'none'} of {sizes})")
    if best is None:
        fastest = min(rows, key=lambda r: r["latency_p95_ms"])
        rule = (f"no best batch size: no batch size of {sizes} keeps its p95 per batch call within "
                f"site.latency_budget_ms={budget_ms:g} ms (the quickest, batch {fastest['batch_size']}, takes "
                f"{fastest['latency_p95_ms']:.1f} ms)")
    else:
        rule = f"the most images/s {scope}: batch {best['batch_size']}, {best['throughput_ips']:.1f} images/s"
        run.log_metrics({SYS_BEST_THROUGHPUT_IPS: best["throughput_ips"], SYS_BEST_BATCH_SIZE: best["batch_size"]})
    run.set_tags({BEST_BATCH_RULE: rule})
    mlflow.log_dict(rows, "latency/per_batch.json")
    mlflow.log_table({k: [r[k] for r in rows] for k in rows[0]}, "latency/per_batch_table.json")
    log.info("best batch: %s", rule)


def _model_stats(ref: ResolvedModel, imgsz: int) -> dict[str, float]:
    """Size of the file; parameters and GFLOPs from the checkpoint, or for an export from its train run."""
    if ref.backend == "pytorch":
        from gfcore.yolo.model import model_stats

        return model_stats(ref.path, imgsz)
    out = {SYS_MODEL_SIZE_MB: measure.model_size_mb(ref.path)}
    out.update(_lineage_stats(ref.source_run_id))
    return out


def _lineage_stats(run_id: str | None, depth: int = 3) -> dict[str, float]:
    """sys.model_params_m / sys.model_gflops of the nearest run up the source.run_id chain that has them."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    for _ in range(depth):
        if not run_id:
            break
        try:
            run = client.get_run(run_id)
        except MlflowException:
            break
        found = {k: v for k, v in run.data.metrics.items() if k in (SYS_MODEL_PARAMS_M, SYS_MODEL_GFLOPS)}
        if found:
            return found
        run_id = run.data.tags.get(SOURCE_RUN_ID)
    return {}


def _tracking(run: OwnedRun, model: Any, cfg: Config, sequences: list[SeqInfo], imgsz: int, device: str,
              work: Path) -> dict[str, float]:
    """Track each sequence, score with TrackEval, log mot.* (combined) and the per-sequence table."""
    import mlflow

    tracks = work / "tracking" / "tracks"
    results = track_and_score(model, cfg, sequences, imgsz, device, tracks)
    run.log_metrics({f"{MOT}{k}": v for k, v in results[COMBINED].items()})
    table = work / "tracking" / "mot_per_sequence.csv"
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sequence", *METRICS])
        for seq, row in results.items():
            writer.writerow([seq, *(row[m] if isinstance(row[m], int) else f"{row[m]:.6f}" for m in METRICS)])
    mlflow.log_artifact(str(table), "tracking")
    mlflow.log_artifacts(str(tracks), "tracking/tracks")
    if cfg.tracking.log_plots:
        mlflow.log_artifact(str(mot_per_sequence(results, work / "plots" / "mot_per_sequence.png")), "plots")
    return results[COMBINED]


def track_and_score(model: Any, cfg: Config, sequences: list[SeqInfo], imgsz: int, device: str,
                    tracks: Path, label: str = "") -> dict[str, dict[str, float]]:
    """Track each sequence into `tracks` (MOTChallenge files) and score them with TrackEval: per sequence and
    COMBINED, with false_alarms_per_1k_frames (TrackEval's false positives per 1,000 frames)."""
    from tqdm import tqdm

    settings = cfg.infer.tracking
    with tqdm(total=sum(s.length for s in sequences), desc=f"tracking{label} ({settings.tracker.value})",
              unit="frame") as bar:
        for seq in sequences:
            bar.set_postfix(seq=seq.name)
            track_sequence(model, seq, tracks / f"{seq.folder.name}.txt", settings.tracker.value, imgsz, device,
                           settings.conf, settings.iou, bar.update)
    root = sequences[0].folder.parent
    results = evaluate_mot(root, tracks, [s.folder.name for s in sequences], settings.benchmark)
    # False alarms as a site feels them: tracked boxes matching no person, per 1,000 frames of video.
    frames = {s.folder.name: s.length for s in sequences}
    frames[COMBINED] = sum(frames.values())
    for seq, row in results.items():
        if frames.get(seq):
            row[FALSE_ALARMS_PER_1K_FRAMES] = 1000.0 * row["fp"] / frames[seq]
    return results
