"""Measuring a model the way a site will use it: detection metrics on a split, batch-1 latency, size.

Works for anything Ultralytics loads (.pt, .onnx, OpenVINO folder, .engine), so a source model and its
exported variant are measured by the same code with the same settings.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from gfcore.yolo.callbacks import detection_metrics


def model_size_mb(path: Path) -> float:
    """A file's size, or the total of a folder (OpenVINO's xml + bin)."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    return path.stat().st_size / 2**20


def load(path: Path) -> Any:
    from ultralytics import YOLO

    return YOLO(str(path), task="detect")


def detection(model: Any, data_yaml: Path, split: str, imgsz: int, device: str, names: list[str],
              conf: float = 0.001, iou: float = 0.7) -> dict[str, float]:
    """det.* and det.ap50_95.{class} through Ultralytics validation (batch 1: exported models have a fixed
    batch)."""
    results = model.val(data=str(data_yaml), split=split, imgsz=imgsz, batch=1, device=device, conf=conf, iou=iou,
                        plots=False, verbose=False)
    out = detection_metrics(results.results_dict)
    for cls, ap in zip(results.box.ap_class_index, results.box.ap):
        out[f"det.ap50_95.{names[int(cls)]}"] = float(ap)
    return out


def latency(model: Any, images: list[Path], imgsz: int, device: str, warmup: int, runs: int,
            desc: str = "latency") -> dict[str, float]:
    """Batch-1 wall time of `predict` over real images, after warm-up: sys.latency_* in milliseconds."""
    import cv2
    from tqdm import tqdm

    frames = [cv2.imread(str(p)) for p in images]
    for i in range(warmup):
        model.predict(frames[i % len(frames)], imgsz=imgsz, device=device, verbose=False)
    times = []
    for i in tqdm(range(runs), desc=desc, unit="img", leave=False):
        start = time.perf_counter()
        model.predict(frames[i % len(frames)], imgsz=imgsz, device=device, verbose=False)
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return {
        "sys.latency_ms": statistics.fmean(times),
        "sys.latency_p50_ms": _percentile(times, 50),
        "sys.latency_p95_ms": _percentile(times, 95),
        "sys.fps": 1000.0 / statistics.fmean(times),
    }


def _percentile(sorted_values: list[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    k = (len(sorted_values) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)
