"""TensorRT engines through Ultralytics' engine export: fp16, or int8 calibrated on the scenario's data.

Needs an NVIDIA GPU and the `tensorrt` package (`pip install -e ".[tensorrt]"`); elsewhere `check_available`
refuses before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

from gfcore.backends.base import Exported, ExportRequest, is_cuda_device
from gfcore.config.schema import Precision
from gfcore.core.errors import ConfigError


def check_available(device: str) -> None:
    import torch

    if not is_cuda_device(device):
        raise ConfigError(f"TensorRT runs on an NVIDIA GPU, not on device {device!r}: set backend.device=0.")
    if not torch.cuda.is_available():
        raise ConfigError("TensorRT needs an NVIDIA GPU, and this machine has none (torch.cuda.is_available() is "
                          "False): run the tensorrt backends on a GPU machine, or use onnx_* / openvino_* here.")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise ConfigError("TensorRT is not installed: pip install -e \".[tensorrt]\" on the GPU machine.") from None


def export(req: ExportRequest) -> Exported:
    from ultralytics import YOLO

    check_available(req.backend.device)
    req.out_dir.mkdir(parents=True, exist_ok=True)
    src = req.out_dir / req.weights.name
    shutil.copy2(req.weights, src)
    int8 = req.backend.precision == Precision.int8
    args = {"format": "engine", "imgsz": req.imgsz, "device": req.backend.device, "verbose": False,
            "quantize": 8 if int8 else 16}
    if int8:
        args.update(data=str(req.data_yaml), split=req.backend.calibration_split,
                    fraction=min(1.0, req.backend.calibration_size / max(1, len(req.calibration_images))))
    out = Path(YOLO(str(src), task="detect").export(**args))
    target = req.out_dir / f"model_{req.backend.precision.value}.engine"
    out.replace(target)
    return Exported(path=target, method=f"ultralytics tensorrt engine ({req.backend.precision.value})",
                    quant_method="static" if int8 else "none")
