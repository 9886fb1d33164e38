"""What every backend module shares: the export request, its result, and whether a device is a CUDA GPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gfcore.core.errors import ConfigError

if TYPE_CHECKING:
    from gfcore.config.schema import BackendConfig


@dataclass
class Exported:
    path: Path  # file or folder that YOLO(...) loads
    method: str  # how it was made, e.g. "ultralytics onnx export + onnxruntime static QDQ"


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
