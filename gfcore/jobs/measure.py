"""Measuring a model the way a site will use it: detection metrics on a split, batch-1 latency, size.

Works for anything Ultralytics loads (.pt, .onnx, OpenVINO folder, .engine), so a source model and its
exported variant are measured by the same code with the same settings.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore.core.paths import work_dir
from gfcore.core.vocabulary import DET_OP, SYS, SYS_MODEL_SIZE_MB
from gfcore.yolo.callbacks import detection_metrics
from gfcore.yolo.model import model_size_mb
from gfcore.yolo.runtime_timer import RuntimeTimer

if TYPE_CHECKING:
    from gfcore.config.schema import Config
    from gfcore.data.dataset import DatasetInfo


def load(path: Path) -> Any:
    from ultralytics import YOLO

    return YOLO(str(path), task="detect")


def detection(model: Any, data_yaml: Path, split: str, imgsz: int, device: str, names: list[str],
              conf: float = 0.001, iou: float = 0.7, op_conf: float = 0.25) -> dict[str, float]:
    """det.* and det.ap50_95.{class} through Ultralytics validation (batch 1: exported models have a fixed
    batch), and the figures at the site's operating confidence `op_conf`: det.op.{precision,recall,f1,missed},
    pooled and per class."""
    return detection_results(model, data_yaml, split, imgsz, device, names, conf, iou, op_conf)[0]


def detection_results(model: Any, data_yaml: Path, split: str, imgsz: int, device: str, names: list[str],
                      conf: float = 0.001, iou: float = 0.7, op_conf: float = 0.25) -> tuple[dict[str, float], Any]:
    """`detection`'s figures and the per-image results behind them (gfcore.verdicts.images.ImageResults), which a
    challenge resamples for its intervals."""
    import math

    from gfcore.yolo.validation import validator_class

    # Ultralytics' validator makes a folder even when it saves nothing (`runs/detect/val*` in the current folder
    # by default): it goes into the run's work folder, or a temporary one that is removed.
    with work_dir("gf-val-") as folder:
        results = model.val(data=str(data_yaml), split=split, imgsz=imgsz, batch=1, device=device, conf=conf,
                            iou=iou, plots=False, verbose=False, validator=validator_class(names, op_conf),
                            project=str(folder / "ultralytics"), name="val", exist_ok=True)
    out = detection_metrics(results.results_dict)
    for cls, ap in zip(results.box.ap_class_index, results.box.ap):
        out[f"det.ap50_95.{names[int(cls)]}"] = float(ap)
    per_image = results.per_image
    # An undefined figure (precision with no box kept, recall of a class without labels) is left out, not 0.
    out.update({k: float(v[0]) for k, v in per_image.figures().items()
                if k.startswith(DET_OP) and math.isfinite(float(v[0]))})
    return out, per_image


@dataclass
class LatencySamples:
    """Timed calls of one batch size: wall time per call, Ultralytics' own split of each call, and the runtime's
    own call inside its inference stage (gfcore.yolo.runtime_timer; empty for a runtime without a hook)."""

    batch: int
    wall_ms: list[float] = field(default_factory=list)
    preprocess_ms: list[float] = field(default_factory=list)
    stage_ms: list[float] = field(default_factory=list)
    runtime_ms: list[float] = field(default_factory=list)
    postprocess_ms: list[float] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """latency_* of a call (one batch) in ms, throughput in images per second, the split as medians:
        inference_ms is the runtime's call (Ultralytics' inference stage where the runtime has no hook),
        inference_stage_ms the stage with Ultralytics' conversions around that call."""
        wall = sorted(self.wall_ms)
        mean = statistics.fmean(wall)
        return {
            "latency_ms": mean,
            "latency_p50_ms": percentile(wall, 50),
            "latency_p95_ms": percentile(wall, 95),
            "latency_p99_ms": percentile(wall, 99),
            "throughput_ips": 1000.0 * self.batch / mean,
            "preprocess_ms": statistics.median(self.preprocess_ms),
            "inference_ms": statistics.median(self.runtime_ms or self.stage_ms),
            "inference_stage_ms": statistics.median(self.stage_ms),
            "postprocess_ms": statistics.median(self.postprocess_ms),
        }


def time_batches(model: Any, frames: list[Any], imgsz: int, device: str, batch: int, warmup: int, runs: int,
                 on_call: Any = None) -> LatencySamples:
    """`predict` on batches of `batch` real frames (cycling), `warmup` untimed calls, then `runs` timed ones."""
    samples = LatencySamples(batch=batch)
    timer = RuntimeTimer()
    for i in range(warmup + runs):
        chunk = [frames[(i * batch + j) % len(frames)] for j in range(batch)]
        timer.start()
        start = time.perf_counter()
        results = model.predict(chunk, imgsz=imgsz, device=device, batch=batch, verbose=False)
        elapsed = (time.perf_counter() - start) * 1000.0
        if i >= warmup:
            # Ultralytics reports each stage per image (the batch's time over its size).
            speed = results[0].speed
            samples.wall_ms.append(elapsed)
            samples.preprocess_ms.append(speed["preprocess"] * batch)
            samples.stage_ms.append(speed["inference"] * batch)
            samples.postprocess_ms.append(speed["postprocess"] * batch)
            if timer.last_ms is not None:
                samples.runtime_ms.append(timer.last_ms)
        timer.install(model)  # the predictor (and its runtime) exists from the first call on
        if on_call is not None:
            on_call()
    return samples


def read_frames(images: list[Path]) -> list[Any]:
    import cv2

    return [cv2.imread(str(p)) for p in images]


def latency(model: Any, images: list[Path], imgsz: int, device: str, warmup: int, runs: int,
            desc: str = "latency") -> dict[str, float]:
    """Batch-1 figures over real images after warm-up, under the plain names: sys.latency_p50_ms, ..."""
    from tqdm import tqdm

    with tqdm(total=warmup + runs, desc=desc, unit="call", leave=False) as bar:
        samples = time_batches(model, read_frames(images), imgsz, device, 1, warmup, runs, bar.update)
    return batch_metrics(samples)


def batch_metrics(samples: LatencySamples) -> dict[str, float]:
    """One name per figure: batch 1 under the plain `sys.*` names, other batch sizes as `sys.bs{N}.*`."""
    prefix = SYS if samples.batch == 1 else f"{SYS}bs{samples.batch}."
    return {f"{prefix}{k}": v for k, v in samples.metrics().items()}


def batch_table(per_batch: dict[int, dict[str, float]], budget_ms: float | None) -> list[dict[str, Any]]:
    """One row per batch size from the figures `time_batches` measured (`LatencySamples.metrics`, nothing timed
    again): a call's p50 / p95, the same per image, images per second, and whether the call's p95 stays within
    `budget_ms` (None without a budget), smallest batch first."""
    rows = []
    for size in sorted(per_batch):
        m = per_batch[size]
        rows.append({"batch_size": size, "latency_p50_ms": m["latency_p50_ms"], "latency_p95_ms": m["latency_p95_ms"],
                     "latency_p50_ms_per_image": m["latency_p50_ms"] / size,
                     "latency_p95_ms_per_image": m["latency_p95_ms"] / size,
                     "throughput_ips": m["throughput_ips"],
                     "within_budget": None if budget_ms is None else m["latency_p95_ms"] <= budget_ms})
    return rows


def best_batch(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row with the most images per second among those within the budget (all, without one); a tie goes to
    the smaller batch. None when no batch size keeps within the budget."""
    allowed = [r for r in rows if r["within_budget"] is not False]
    return max(allowed, key=lambda r: (r["throughput_ips"], -r["batch_size"])) if allowed else None


def latency_protocol(cfg: Config, dataset: DatasetInfo, batches: list[int] | tuple[int, ...] = (1,),
                     split: str | None = None, imgsz: int | None = None) -> str:
    """How a run's latency figures were measured, in words (its tag `sys.latency_protocol`)."""
    split = split or cfg.registry.eval_split
    sizes = ", ".join(str(b) for b in batches)
    return (f"batch {sizes}: {cfg.latency.warmup} untimed warm-up + {cfg.latency.runs} timed predict() calls per "
            f"batch size on the {dataset.counts.get(split, 0)} {split} images (cycled), "
            f"imgsz {imgsz or cfg.model.imgsz}, "
            f"device {cfg.backend.device}; wall time per call (pre-process, inference, post-process); "
            "p50/p95/p99 over the timed calls")


def evaluate(path: Path, data_yaml: Path, split: str, images: list[Path], imgsz: int, device: str,
             names: list[str], warmup: int, runs: int, label: str, op_conf: float = 0.25) -> dict[str, float]:
    """A model file's headline figures on one split: det.* (det.ap50_95.{class}, det.op.* at the operating
    confidence `op_conf`), batch-1 latency, size.

    Train (best.pt), quant (source and variant) and so every registered version are measured by this one
    function with the same settings, which is what makes their figures comparable."""
    model = load(path)
    det = detection(model, data_yaml, split, imgsz, device, names, op_conf=op_conf)
    lat = latency(model, images, imgsz, device, warmup, runs, desc=f"latency {label}")
    return {**det, **lat, SYS_MODEL_SIZE_MB: model_size_mb(path)}


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on an already sorted list."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    k = (len(sorted_values) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)
