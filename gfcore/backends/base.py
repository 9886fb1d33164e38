"""What every backend module shares: the export request, its result, and whether a device is a CUDA GPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gfcore.core.errors import ConfigError

if TYPE_CHECKING:
    from gfcore.config.schema import BackendConfig


@dataclass
class Exported:
    path: Path  # file or folder that YOLO(...) loads
    method: str  # how it was made, in words, e.g. "ultralytics onnx export + onnxruntime static QDQ"
    # What ran, as the runtime was called: int8 static / dynamic (`none`: no quantization), the calibration method
    # (None: none chosen or none to choose), and what else the quantization measured (metrics, files to keep).
    quant_method: str = "none"
    calibration: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # logged as artifacts under quant/


@dataclass
class ExportRequest:
    weights: Path
    imgsz: int
    out_dir: Path
    data_yaml: Path | None
    calibration_images: list[Path]  # for int8, taken from backend.calibration_split
    backend: BackendConfig


class Exporter(Protocol):
    def __call__(self, req: ExportRequest) -> Exported: ...


def is_cuda_device(device: str) -> bool:
    return device not in ("cpu", "mps", "")


def require_cuda(what: str, instead: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"{what} needs an NVIDIA GPU, and this machine has none (torch.cuda.is_available() is "
                          f"False): {instead}.")


def preprocess(path: Path, imgsz: int):
    """As Ultralytics predicts: letterbox to imgsz, BGR -> RGB, CHW, 0-1 float32, batch of one."""
    import cv2
    import numpy as np
    from ultralytics.data.augment import LetterBox

    img = LetterBox((imgsz, imgsz), auto=False)(image=cv2.imread(str(path)))
    return np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
