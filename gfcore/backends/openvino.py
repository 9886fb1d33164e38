"""OpenVINO: fp32 and fp16 (compressed weights) through Ultralytics' exporter; int8 by NNCF on Ultralytics' fp32 IR.

int8 quantizes as Ultralytics' exporter does (NNCF post-training quantization, MIXED preset, the detection head in
float) but calls NNCF itself, so that what the scenario steers is what runs: calibration on
`backend.calibration_size` images of `backend.calibration_split`, the activation range estimator
(`backend.calibration_method`), and, with `backend.max_accuracy_drop`, NNCF's accuracy-aware quantization
(gfcore.backends.openvino_accuracy).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gfcore.backends.base import Exported, ExportRequest, preprocess
from gfcore.config.schema import CalibrationMethod, Precision, QuantMethod
from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import (
    QUANT_ACCURACY_DROP,
    QUANT_ACCURACY_TARGET,
    QUANT_QUANTIZED_LAYERS,
    QUANT_REVERTED_LAYERS,
)

# backend.calibration_method -> NNCF's RangeEstimatorParametersSet member, for activations (weights: always min-max)
_NNCF_RANGES = {CalibrationMethod.minmax: "MINMAX", CalibrationMethod.mean_minmax: "MEAN_MINMAX",
                CalibrationMethod.mean_quantile: "MEAN_QUANTILE", CalibrationMethod.histogram: "HISTOGRAM"}


def export(req: ExportRequest) -> Exported:
    from ultralytics import YOLO

    req.out_dir.mkdir(parents=True, exist_ok=True)
    precision = req.backend.precision
    if precision == Precision.int8 and (req.data_yaml is None or not req.calibration_images):
        raise ConfigError("openvino int8 needs calibration images and none were found: check "
                          "backend.calibration_split and the dataset.")
    src = req.out_dir / req.weights.name
    shutil.copy2(req.weights, src)
    args = {"format": "openvino", "imgsz": req.imgsz, "device": "cpu", "verbose": False,
            "quantize": 16 if precision == Precision.fp16 else None}
    out = Path(YOLO(str(src), task="detect").export(**args))
    # The folder name must end in `_openvino_model` for Ultralytics to recognise it when loading.
    target = req.out_dir / f"model_{precision.value}_openvino_model"
    if target.exists():
        shutil.rmtree(target)
    if precision == Precision.int8:
        return _int8(out, target, req)
    out.replace(target)
    return Exported(path=target, method={Precision.fp32: "ultralytics openvino export (fp32)",
                                         Precision.fp16: "ultralytics openvino export, fp16 weights"}[precision])


def _int8(fp32_dir: Path, target: Path, req: ExportRequest) -> Exported:
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    [xml] = fp32_dir.glob("*.xml")
    model = ov.Core().read_model(str(xml))
    images = req.calibration_images
    calibration = nncf.Dataset(images, lambda path: preprocess(path, req.imgsz))
    chosen = req.backend.calibration  # the asked-for method, else NNCF's default (mean_minmax)
    nncf_args = {
        "preset": nncf.QuantizationPreset.MIXED, "subset_size": len(images), "ignored_scope": _head_scope(model),
        "advanced_parameters": AdvancedQuantizationParameters(
            activations_range_estimator_params=getattr(RangeEstimatorParametersSet, _NNCF_RANGES[chosen]))}
    how = f"NNCF post-training int8 on Ultralytics' fp32 IR, MIXED preset, activation ranges {_NNCF_RANGES[chosen]}"
    tags, metrics, files = {}, {}, []
    if req.backend.max_accuracy_drop is None:
        quantized = nncf.quantize(model, calibration, **nncf_args)
        how += ", detection head in float"
    else:
        from gfcore.backends import openvino_accuracy

        quantized, report = openvino_accuracy.quantize(model, calibration, req, fp32_dir, req.out_dir / "nncf",
                                                       **nncf_args)
        how += (f", accuracy-aware (det.mAP50 on the val split within {report.max_drop} absolute: "
                f"{len(report.reverted)} of {len(report.quantized)} operations reverted to float), detection head "
                "in float")
        tags[QUANT_ACCURACY_TARGET] = "met" if report.met else "missed"
        metrics = {QUANT_ACCURACY_DROP: report.drop, QUANT_QUANTIZED_LAYERS: len(report.quantized),
                   QUANT_REVERTED_LAYERS: len(report.reverted)}
        files = [report.write(req.out_dir / openvino_accuracy.REPORT_NAME)]
    shutil.copytree(fp32_dir, target)
    for old in (*target.glob("*.xml"), *target.glob("*.bin")):
        old.unlink()
    ov.save_model(quantized, str(target / xml.name), compress_to_fp16=False)
    return Exported(path=target, method=how, quant_method=QuantMethod.static.value, calibration=chosen.value,
                    tags=tags, metrics=metrics, files=files)


def _head_scope(model):
    """The detection head and its sigmoids stay in float, as Ultralytics' own int8 export keeps them."""
    import nncf

    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        return None
    head = sigmoids[-1].split("/", 1)[0]
    return nncf.IgnoredScope(names=[op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"
                                    or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))])
