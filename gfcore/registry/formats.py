"""Which runtime loads a model file: the one rule for infer, the registry and a served model. Standard library and
gfcore.core only, so that a served model's environment (which has no Hydra) can import it."""

from __future__ import annotations

from pathlib import Path

from gfcore.core.errors import GuardianFlowError, RegistryError


def backend_of(weights: str | Path, error: type[GuardianFlowError] = RegistryError) -> str:
    """The backend Ultralytics loads `weights` with: pytorch (.pt), onnx (.onnx), openvino (a folder with the
    .xml and .bin) or tensorrt (.engine). Anything else raises `error`, the caller's kind (the registry's; infer's
    ModelError). The one rule, in a module of its own: a served model imports it (through gfcore.registry.pyfunc)
    with nothing of gfcore above it, and infer finds a model's runtime without importing MLflow's pyfunc."""
    path = Path(weights)
    suffix = path.suffix.lower()
    if (path.is_dir() and any(path.glob("*.xml"))) or suffix == ".xml":
        return "openvino"
    kinds = {".pt": "pytorch", ".pth": "pytorch", ".onnx": "onnx", ".engine": "tensorrt"}
    if suffix in kinds and not path.is_dir():
        return kinds[suffix]
    raise error(f"cannot tell which runtime serves {path}: it is not a model file infer can measure or the registry "
                "can serve. Give a .pt, an .onnx, an OpenVINO folder (*_openvino_model, with its .xml and .bin) or a "
                "TensorRT .engine.")
