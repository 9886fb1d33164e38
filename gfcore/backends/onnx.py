"""ONNX: fp32 and fp16 through Ultralytics' exporter; int8 through ONNX Runtime's quantization.

int8 is static by default (`quantize_static`, QDQ, per-channel, calibrated on real images of the scenario with
`backend.calibration_method`: MinMax, Entropy or Percentile) or dynamic (`backend.method=dynamic`:
`quantize_dynamic`, activation ranges computed from each input at run time, no calibration). Both keep the
detection head in float: one int8 scale cannot cover both box coordinates (pixels) and class scores (0-1), so
quantizing the head's convolutions and decode costs far more accuracy than it saves time.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from gfcore.backends.base import Exported, ExportRequest, preprocess
from gfcore.config.schema import CalibrationMethod, Precision, QuantMethod
from gfcore.core.errors import ConfigError

ENTROPY_BINS = 512  # histogram bins of the entropy (KL) calibration, of which 128 quantized (TensorRT: 2048)

# backend.calibration_method -> the name of ONNX Runtime's CalibrationMethod member
_ORT_CALIBRATION = {CalibrationMethod.minmax: "MinMax", CalibrationMethod.entropy: "Entropy",
                    CalibrationMethod.percentile: "Percentile"}


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
    if req.backend.method == QuantMethod.dynamic:
        quantize_dynamic_int8(fp, target)
        return Exported(path=target, method="onnxruntime quantize_dynamic int8 (uint8 weights, activations at run "
                        "time), detection head in float", quant_method=QuantMethod.dynamic.value)
    calibration = req.backend.calibration
    quantize_int8(fp, target, req.calibration_images, req.imgsz, calibration)
    bins = f" ({ENTROPY_BINS} histogram bins)" if calibration == CalibrationMethod.entropy else ""
    return Exported(path=target, method=f"onnxruntime quantize_static QDQ int8, per-channel, calibration "
                    f"{_ORT_CALIBRATION[calibration]}{bins}, detection head in float",
                    quant_method=QuantMethod.static.value, calibration=calibration.value)


def quantize_dynamic_int8(fp32: Path, target: Path) -> None:
    """ONNX Runtime's dynamic quantization of the weighted ops outside the head."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32))
    quantize_dynamic(str(fp32), str(target), op_types_to_quantize=["Conv", "MatMul"], nodes_to_exclude=_excluded(model),
                     weight_type=QuantType.QUInt8)  # ONNX Runtime's CPU ConvInteger takes uint8 weights only
    _carry_metadata(model, target)


def quantize_int8(fp32: Path, target: Path, images: list[Path], imgsz: int,
                  calibration: CalibrationMethod = CalibrationMethod.minmax) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization import CalibrationMethod as OrtCalibration

    if not images:
        raise ConfigError("onnx int8 needs calibration images and none were found: check "
                          "backend.calibration_split and the dataset.")
    model = onnx.load(str(fp32))
    exclude = _excluded(model)
    input_name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(images)

        def get_next(self):
            path = next(self._it, None)
            return None if path is None else {input_name: preprocess(path, imgsz)}

    method = getattr(OrtCalibration, _ORT_CALIBRATION[calibration])
    with tempfile.TemporaryDirectory(prefix="gf-ort-calib-") as tmp:
        reader, cache = Reader(), None
        if calibration == CalibrationMethod.entropy:
            # quantize_static builds its entropy calibrator with 128 histogram bins for 128 quantized bins: a KL
            # search with one candidate, the min-max range. Calibrate here with more bins (TensorRT's 2048 make
            # ONNX Runtime's Python search take minutes on a nano model) and hand quantize_static the ranges as its
            # calibration cache.
            from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

            calibrator = create_calibrator(fp32, None, augmented_model_path=f"{tmp}/augmented.onnx",
                                           calibrate_method=method,
                                           extra_options={"num_bins": ENTROPY_BINS, "num_quantized_bins": 128})
            calibrator.collect_data(reader)
            cache, reader = Path(tmp) / "ranges.json", None
            save_tensors_data(calibrator.compute_data(), cache)
        quantize_static(str(fp32), str(target), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                        calibrate_method=method, calibration_cache_path=cache)
    _carry_metadata(model, target)


def _excluded(model) -> list[str]:
    """The head and everything that is not a weighted op stay in float (Ultralytics does the latter too)."""
    head = _head_prefix(model)
    return [n.name for n in model.graph.node if n.op_type not in {"Conv", "Gemm", "MatMul"} or
            (head and n.name.startswith(head))]


def _carry_metadata(model, target: Path) -> None:
    """Ultralytics' metadata (class names, stride, imgsz) onto the result, so YOLO(...) loads it like the source."""
    import onnx

    quantized = onnx.load(str(target))
    if not quantized.metadata_props:
        for prop in model.metadata_props:
            quantized.metadata_props.add(key=prop.key, value=prop.value)
        onnx.save(quantized, str(target))


def _head_prefix(model) -> str | None:
    """Ultralytics names nodes `/model.{i}/...`; the detection head is the highest i."""
    indices = [int(m.group(1)) for n in model.graph.node if (m := re.match(r"^/model\.(\d+)/", n.name))]
    return f"/model.{max(indices)}/" if indices else None

