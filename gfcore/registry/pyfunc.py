"""A YOLO detector as an MLflow pyfunc model that carries its weights.

Input: a DataFrame with a column `image`, each cell base64-encoded image bytes (what `/invocations`
receives as JSON) or, from Python, raw bytes or a numpy image (HxWx3, BGR as OpenCV reads it).
Output: one row per detection: image (row index of the input), class_id, class_name, confidence,
x1, y1, x2, y2 in pixels of the input image. Params `conf` and `iou` set the thresholds per call.

The weights can be anything Ultralytics loads (.pt, .onnx, an OpenVINO folder, a TensorRT .engine),
so quantized variants are packaged by the same class.
"""

from __future__ import annotations

import base64
import binascii
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc

import gfcore
from gfcore.core.errors import RegistryError
from gfcore.registry.formats import backend_of

OUTPUT_COLUMNS = ["image", "class_id", "class_name", "confidence", "x1", "y1", "x2", "y2"]
DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.7
MODEL_NAME = "model"  # the logged model's name within its run: runs:/RUN_ID/model


class YoloDetector(mlflow.pyfunc.PythonModel):
    # No type hints on these two: MLflow would read them as a (list-typed) signature of its own.
    def load_context(self, context):
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_AUTOINSTALL", "false")
        from ultralytics import YOLO

        config = context.model_config or {}
        self.imgsz = int(config.get("imgsz", 640))
        self.device = str(config.get("device", "cpu"))
        self.model = YOLO(context.artifacts["weights"], task="detect")

    def predict(self, context, model_input, params=None):
        import pandas as pd

        params = params or {}
        images = [decode_image(cell, row) for row, cell in enumerate(_image_column(model_input))]
        rows: list[dict[str, Any]] = []
        if images:
            results = self.model.predict(images, conf=float(params.get("conf", DEFAULT_CONF)),
                                         iou=float(params.get("iou", DEFAULT_IOU)), imgsz=self.imgsz,
                                         device=self.device, verbose=False)
            for idx, result in enumerate(results):
                boxes = result.boxes
                for (x1, y1, x2, y2), cls, conf in zip(boxes.xyxy.tolist(), boxes.cls.tolist(), boxes.conf.tolist()):
                    rows.append({"image": idx, "class_id": int(cls), "class_name": result.names[int(cls)],
                                 "confidence": float(conf), "x1": x1, "y1": y1, "x2": x2, "y2": y2})
        frame = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
        return frame.astype({"image": "int64", "class_id": "int64", "confidence": "float64", "x1": "float64",
                             "y1": "float64", "x2": "float64", "y2": "float64"})


def _image_column(model_input: Any) -> list[Any]:
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        if "image" not in model_input.columns:
            raise ValueError(f"the input needs a column 'image' (base64-encoded image bytes); it has "
                             f"{list(model_input.columns)}")
        return list(model_input["image"])
    if isinstance(model_input, dict) and "image" in model_input:
        value = model_input["image"]
        return list(value) if isinstance(value, (list, tuple)) else [value]
    raise ValueError("the input must be a DataFrame with a column 'image' of base64-encoded image bytes")


def decode_image(cell: Any, row: int) -> Any:
    """base64 text, raw bytes or a numpy array -> a BGR image array."""
    import cv2
    import numpy as np

    if isinstance(cell, np.ndarray) and cell.ndim in (2, 3):
        return cell if cell.ndim == 3 else cv2.cvtColor(cell, cv2.COLOR_GRAY2BGR)
    data = cell
    if isinstance(cell, str):
        try:
            data = base64.b64decode(cell, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"row {row}: 'image' is not valid base64 ({exc})") from exc
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"row {row}: 'image' must be base64 text, bytes or an image array, not {type(cell).__name__}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"row {row}: 'image' does not decode as an image (PNG, JPEG, ...)")
    return img


def encode_image(path: str | Path) -> str:
    """An image file as the base64 text the model's `image` column takes."""
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def signature() -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

    # AnyType: base64 text from JSON, and numpy arrays or bytes from Python, all pass.
    inputs = Schema([ColSpec(AnyType(), "image")])
    outputs = Schema([ColSpec("long", "image"), ColSpec("long", "class_id"), ColSpec("string", "class_name"),
                      ColSpec("double", "confidence"), ColSpec("double", "x1"), ColSpec("double", "y1"),
                      ColSpec("double", "x2"), ColSpec("double", "y2")])
    params = ParamSchema([ParamSpec("conf", "double", DEFAULT_CONF), ParamSpec("iou", "double", DEFAULT_IOU)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


# What each backend's model needs on top of MLflow, Ultralytics and torch (Ultralytics imports torch, so every
# variant needs it): groups of interchangeable distributions, the first one installed here is pinned.
RUNTIMES: dict[str, tuple[tuple[str, ...], ...]] = {
    "pytorch": (),
    # Ultralytics' ONNX loader checks for `onnx` too (without it: a warning, or an install at load time).
    "onnx": (("onnxruntime-gpu", "onnxruntime"), ("onnx",)),
    "openvino": (("openvino",),),
    "tensorrt": (("tensorrt", "tensorrt-cu13", "tensorrt-cu12"),),
}
OPENCV_DISTRIBUTIONS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                        "opencv-contrib-python-headless")


def requirements(backend: str = "pytorch") -> list[str]:
    """What serving a `backend` model in its own environment needs, pinned at the versions installed here (the
    ones it was measured with): MLflow, Ultralytics, torch, the backend's runtime and OpenCV."""
    if backend not in RUNTIMES:
        raise RegistryError(f"unknown backend {backend!r}: one of {', '.join(RUNTIMES)}.")

    def pin(pkg: str) -> str:
        return f"{pkg}=={metadata.version(pkg).split('+')[0]}"

    def first_installed(distributions: tuple[str, ...]) -> str | None:
        for dist in distributions:
            try:
                return pin(dist)
            except metadata.PackageNotFoundError:
                continue
        return None

    pins = [pin("mlflow"), pin("ultralytics"), pin("torch"), pin("torchvision"), pin("pandas"), pin("numpy")]
    for group in RUNTIMES[backend]:
        found = first_installed(group)
        if found is None:
            hint = 'pip install -e ".[tensorrt]"' if backend == "tensorrt" else f"pip install {group[-1]}"
            raise RegistryError(f"a {backend} model needs {' or '.join(group)}, and it is not installed here: the "
                                f"model pins the version it was measured with, so install it ({hint}) and log "
                                f"the model again.")
        pins.append(found)
    # cv2 comes from whichever OpenCV build is installed (GPU images often carry only the headless one).
    opencv = first_installed(OPENCV_DISTRIBUTIONS)
    return [*pins, opencv] if opencv else pins


def log_detector(weights: Path, imgsz: int, example_image: Path | None, device: str = "cpu",
                 extra_artifacts: dict[str, str] | None = None, name: str = MODEL_NAME) -> Any:
    """Log `weights` as the active run's pyfunc model `name`; returns MLflow's ModelInfo.

    Its requirements are those of the runtime the weights need (see `backend_of`), so the model also
    serves from an environment built from them alone (`mlflow models serve --env-manager virtualenv`)."""
    import pandas as pd

    pip_requirements = requirements(backend_of(weights))  # before anything is logged: a missing runtime stops here
    example = pd.DataFrame({"image": [encode_image(example_image)]}) if example_image else None
    return mlflow.pyfunc.log_model(
        name=name,
        # Models from code: the model is this definition, not a pickle of an instance.
        python_model=str(Path(__file__).with_name("detector_model.py")),
        artifacts={"weights": str(weights), **(extra_artifacts or {})},
        model_config={"imgsz": imgsz, "device": device},
        signature=signature(),
        input_example=example,
        # The model carries gfcore's code, so loading it needs no GuardianFlow install.
        code_paths=[str(Path(gfcore.__file__).parent)],
        pip_requirements=pip_requirements,
    )
