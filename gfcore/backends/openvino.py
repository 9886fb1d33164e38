"""OpenVINO through Ultralytics' exporter: fp32, fp16 (compressed weights), int8 (NNCF post-training
quantization, calibrated on `backend.calibration_size` images of the scenario's `calibration_split`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from gfcore.backends.base import Exported, ExportRequest
from gfcore.config.schema import Precision
from gfcore.core.errors import ConfigError


def export(req: ExportRequest) -> Exported:
    from ultralytics import YOLO

    req.out_dir.mkdir(parents=True, exist_ok=True)
    precision = req.backend.precision
    src = req.out_dir / req.weights.name
    shutil.copy2(req.weights, src)
    args = {"format": "openvino", "imgsz": req.imgsz, "device": "cpu", "verbose": False,
            "quantize": {Precision.fp32: None, Precision.fp16: 16, Precision.int8: 8}[precision]}
    if precision == Precision.int8:
        if req.data_yaml is None or not req.calibration_images:
            raise ConfigError("openvino int8 needs calibration images and none were found: check "
                              "backend.calibration_split and the dataset.")
        # Calibration data is always given explicitly; never a default dataset (that would download).
        args.update(data=str(req.data_yaml), split=req.backend.calibration_split,
                    fraction=min(1.0, req.backend.calibration_size / len(req.calibration_images)), batch=1)
    out = Path(YOLO(str(src), task="detect").export(**args))
    # The folder name must end in `_openvino_model` for Ultralytics to recognise it when loading.
    target = req.out_dir / f"model_{precision.value}_openvino_model"
    if target.exists():
        shutil.rmtree(target)
    out.replace(target)
    method = {Precision.fp32: "ultralytics openvino export (fp32)",
              Precision.fp16: "ultralytics openvino export, fp16 weights",
              Precision.int8: "ultralytics openvino export, NNCF post-training int8"}[precision]
    return Exported(path=target, method=method)
