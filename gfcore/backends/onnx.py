"""ONNX: fp32 and fp16 through Ultralytics' exporter; int8 through ONNX Runtime's static QDQ quantization.

int8 calibrates on real images of the scenario and keeps the detection head in float: one int8 scale
cannot cover both box coordinates (pixels) and class scores (0-1), so quantizing the head's
convolutions and decode costs far more accuracy than it saves time.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from gfcore.backends.base import Exported, ExportRequest
from gfcore.config.schema import Precision
from gfcore.core.errors import ConfigError


def export(req: ExportRequest) -> Exported:
    from ultralytics import YOLO

    req.out_dir.mkdir(parents=True, exist_ok=True)
    half = req.backend.precision == Precision.fp16
    src = req.out_dir / req.weights.name
    shutil.copy2(req.weights, src)  # Ultralytics writes the export next to its input
    fp = Path(YOLO(str(src), task="detect").export(format="onnx", imgsz=req.imgsz, quantize=16 if half else None,
                                                    device=req.backend.device, simplify=True, verbose=False))
    if req.backend.precision != Precision.int8:
        target = req.out_dir / f"model_{req.backend.precision.value}.onnx"
        fp.replace(target)
        return Exported(path=target, method=f"ultralytics onnx export ({req.backend.precision.value})")
    target = req.out_dir / "model_int8.onnx"
    quantize_int8(fp, target, req.calibration_images, req.imgsz)
    return Exported(path=target, method="onnxruntime static QDQ int8, per-channel, detection head in float")


def quantize_int8(fp32: Path, target: Path, images: list[Path], imgsz: int) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if not images:
        raise ConfigError("onnx int8 needs calibration images and none were found: check "
                          "backend.calibration_split and the dataset.")
    model = onnx.load(str(fp32))
    head = _head_prefix(model)
    # Keep the head and everything that is not a weighted op in float (Ultralytics does the latter too).
    exclude = [n.name for n in model.graph.node if n.op_type not in {"Conv", "Gemm", "MatMul"} or
               (head and n.name.startswith(head))]
    input_name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(images)

        def get_next(self):
            path = next(self._it, None)
            return None if path is None else {input_name: preprocess(path, imgsz)}

    quantize_static(str(fp32), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
    # Carry Ultralytics' metadata (class names, stride, imgsz) so YOLO(...) loads the result like the source.
    quantized = onnx.load(str(target))
    if not quantized.metadata_props:
        for prop in model.metadata_props:
            quantized.metadata_props.add(key=prop.key, value=prop.value)
        onnx.save(quantized, str(target))


def _head_prefix(model) -> str | None:
    """Ultralytics names nodes `/model.{i}/...`; the detection head is the highest i."""
    indices = [int(m.group(1)) for n in model.graph.node if (m := re.match(r"^/model\.(\d+)/", n.name))]
    return f"/model.{max(indices)}/" if indices else None


def preprocess(path: Path, imgsz: int):
    """As Ultralytics predicts: letterbox to imgsz, BGR -> RGB, CHW, 0-1 float32, batch of one."""
    import cv2
    import numpy as np
    from ultralytics.data.augment import LetterBox

    img = LetterBox((imgsz, imgsz), auto=False)(image=cv2.imread(str(path)))
    return np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
