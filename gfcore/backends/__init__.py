"""Export and quantization backends, one module per runtime; `get(backend)` picks the exporter.

Every exporter takes a trained `.pt` and returns the exported model (a file or, for OpenVINO, a folder)
that Ultralytics' `YOLO(...)` loads and predicts with, so measurement and the pyfunc model need no
backend-specific code. `check(backend)` refuses, before any work, what cannot run on this machine.
"""

from __future__ import annotations

from gfcore.backends.base import Exported, Exporter, ExportRequest, is_cuda_device, require_cuda
from gfcore.config.schema import BackendConfig, BackendName, Precision, QuantMethod
from gfcore.core.errors import ConfigError

__all__ = ["Exported", "ExportRequest", "Exporter", "check", "get", "is_cuda_device", "needs_calibration",
           "require_cuda"]


def check(backend: BackendConfig) -> None:
    """Refuse combinations that cannot work here, with what to do instead."""
    name, precision, device = backend.name, backend.precision, backend.device
    if name == BackendName.tensorrt:
        from gfcore.backends import tensorrt

        tensorrt.check_available(device)
    elif name == BackendName.pytorch and precision == Precision.int8:
        raise ConfigError("pytorch has no int8 variant here: use backend=onnx_int8 or backend=openvino_int8.")
    elif name == BackendName.pytorch and precision == Precision.fp16 and not is_cuda_device(device):
        raise ConfigError("backend=pytorch_fp16 needs an NVIDIA GPU (on a CPU Ultralytics computes in fp32): set "
                          "backend.device=0 on a GPU machine, or use backend=onnx_fp16 / openvino_fp16 on a CPU.")
    elif name == BackendName.pytorch and precision == Precision.fp16:
        require_cuda("backend=pytorch_fp16", "run it on a GPU machine, or use backend=onnx_fp16 / openvino_fp16 here")
    elif name in (BackendName.onnx, BackendName.openvino) and is_cuda_device(device):
        require_cuda(f"backend={backend.variant} on device {device}", "set backend.device=cpu")


def get(backend: BackendConfig) -> Exporter:
    if backend.name == BackendName.pytorch:
        from gfcore.backends.pytorch import export
    elif backend.name == BackendName.onnx:
        from gfcore.backends.onnx import export
    elif backend.name == BackendName.openvino:
        from gfcore.backends.openvino import export
    else:
        from gfcore.backends.tensorrt import export
    return export


def needs_calibration(backend: BackendConfig) -> bool:
    """Static int8 calibrates on real images; dynamic int8 computes its ranges at run time."""
    return backend.precision == Precision.int8 and backend.method == QuantMethod.static
