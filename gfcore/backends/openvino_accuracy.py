"""OpenVINO int8 within a maximum accuracy drop: NNCF's accuracy-aware quantization on the fp32 IR.

`nncf.quantize_with_accuracy_control` quantizes the model, measures the fp32 and the int8 model with a validation
function, and while the drop exceeds `backend.max_accuracy_drop` (absolute) reverts the groups of operations that
cost the most back to float. The validation function is Ultralytics' own detection validation (its dataloader on
the dataset's val split, letterbox, NMS, `ap_per_class` through `DetectionValidator`) run on the compiled model, and
the metric is det.mAP50. Which operations stayed in float is read from the models themselves: the operations with a
quantized input in NNCF's first, fully quantized model (kept through `intermediate_model_dir`) that have none in
the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gfcore.core.errors import ConfigError

if TYPE_CHECKING:
    from gfcore.backends.base import ExportRequest

VALIDATION_SPLIT = "val"  # what NNCF measures the drop on; never the calibration images' split by default
REPORT_NAME = "accuracy_control.json"  # logged under the run's quant/ artifacts
# Element types of a compressed int8 (or int4) weight constant
_INT_WEIGHTS = {"i8", "u8", "i4", "u4"}
# What a compressed weight passes through before the operation that uses it
_DECOMPRESSION = {"Convert", "Subtract", "Multiply", "Reshape"}
# Operations that move values without computing on them: NNCF places a quantizer before them for the operation after
_AGNOSTIC = {"MaxPool", "Concat", "Interpolate", "Reshape", "Transpose", "Split", "VariadicSplit", "Squeeze",
             "Unsqueeze", "StridedSlice", "Pad", "Gather"}
_KEEP_IMAGES = 2000
_NOT_OPERATIONS = {"FakeQuantize", "Constant", "Result", "Parameter", "ShapeOf", "Convert", *_AGNOSTIC}


@dataclass
class Report:
    max_drop: float
    fp32_map50: float
    int8_map50: float
    images: int
    quantized: list[str] = field(default_factory=list)  # operations NNCF quantized at first
    reverted: list[str] = field(default_factory=list)  # of those, the ones the result keeps in float

    @property
    def drop(self) -> float:
        return self.fp32_map50 - self.int8_map50

    @property
    def met(self) -> bool:
        return self.drop <= self.max_drop + 1e-9

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "metric": "det.mAP50", "split": VALIDATION_SPLIT, "images": self.images, "drop_type": "absolute",
            "max_drop": self.max_drop, "fp32_mAP50": self.fp32_map50, "int8_mAP50": self.int8_map50,
            "accuracy_drop": self.drop, "met": self.met, "quantized_operations": len(self.quantized),
            "reverted_to_float": self.reverted}, indent=1))
        return path


def quantize(model, calibration, req: ExportRequest, fp32_dir: Path, work: Path, **nncf_args):
    """`model` (the fp32 ov.Model of Ultralytics' export in `fp32_dir`) quantized by NNCF within
    `req.backend.max_accuracy_drop`; returns it and a Report. `nncf_args` are those of `nncf.quantize` (preset,
    subset_size, ignored_scope, advanced_parameters)."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    validator, items = _validation(req, fp32_dir, work)
    validation = nncf.Dataset(items, lambda batch: batch["img"].numpy().astype("float32") / 255.0)
    intermediate = work / "nncf-intermediate"
    intermediate.mkdir(parents=True, exist_ok=True)
    advanced = nncf_args.pop("advanced_parameters", None)
    quantized = nncf.quantize_with_accuracy_control(
        model, calibration, validation, validator, max_drop=req.backend.max_accuracy_drop,
        drop_type=nncf.DropType.ABSOLUTE, advanced_quantization_parameters=advanced,
        # One ranking worker: the validation function keeps Ultralytics' validator, which threads must not share.
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
            intermediate_model_dir=str(intermediate), num_ranking_workers=1),
        **nncf_args)
    core = ov.Core()
    first = core.read_model(str(intermediate / "intermediate_model.xml"))
    before, after = _quantized_operations(first), _quantized_operations(quantized)
    fp32_map50, _ = validator(core.compile_model(model, "CPU"), items)
    int8_map50, _ = validator(core.compile_model(quantized, "CPU"), items)
    report = Report(max_drop=req.backend.max_accuracy_drop, fp32_map50=fp32_map50, int8_map50=int8_map50,
                    images=len(items), quantized=sorted(before), reverted=sorted(before - after))
    return quantized, report


def _validation(req: ExportRequest, fp32_dir: Path, work: Path):
    """Ultralytics' DetectionValidator over the val split, as `validate(compiled_model, items) -> (mAP50, None)`
    (NNCF's validation function), and the split's batches of one image."""
    from types import SimpleNamespace

    import torch
    import yaml
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.models.yolo.detect import DetectionValidator

    if req.data_yaml is None:
        raise ConfigError("backend.max_accuracy_drop needs the dataset's val split to measure the drop on, and this "
                          "dataset has no data yaml.")
    validator = DetectionValidator(save_dir=work / "nncf-val", args={
        "task": "detect", "mode": "val", "data": str(req.data_yaml), "imgsz": req.imgsz, "batch": 1,
        "split": VALIDATION_SPLIT, "rect": False, "workers": 0, "plots": False, "save_json": False,
        "verbose": False})
    validator.data = check_det_dataset(str(req.data_yaml))
    if not validator.data.get(VALIDATION_SPLIT):
        raise ConfigError(f"backend.max_accuracy_drop measures the drop on the dataset's {VALIDATION_SPLIT} split, "
                          f"and {req.data_yaml} has none: add one, or drop backend.max_accuracy_drop.")
    validator.device, validator.stride, validator.training = torch.device("cpu"), 32, False
    validator.dataloader = validator.get_dataloader(validator.data[VALIDATION_SPLIT], 1)
    # NNCF goes over the split many times: a small split is decoded once and kept (letterboxed uint8), a large one
    # is read again each time.
    items = list(validator.dataloader) if len(validator.dataloader) <= _KEEP_IMAGES else validator.dataloader
    if not len(items):
        raise ConfigError(f"backend.max_accuracy_drop: the dataset's {VALIDATION_SPLIT} split has no images.")
    names = validator.data["names"]
    model = SimpleNamespace(names=names if isinstance(names, dict) else dict(enumerate(names)), end2end=False)
    meta = fp32_dir / "metadata.yaml"  # an end-to-end head (YOLOv10, YOLO26) returns boxes after its own selection
    if meta.exists():
        model.end2end = bool((yaml.safe_load(meta.read_text()) or {}).get("end2end", False))

    def validate(compiled_model, batches) -> tuple[float, None]:
        validator.init_metrics(model)
        for batch in batches:
            batch = validator.preprocess(dict(batch))  # a copy: NNCF hands the same items again
            preds = torch.from_numpy(compiled_model(batch["img"].numpy())[0])
            validator.update_metrics(validator.postprocess(preds), batch)
        return float(validator.get_stats()["metrics/mAP50(B)"]), None

    return validate, items


def _quantized_operations(model) -> set[str]:
    """Names of the operations that compute on a quantized input: one from a FakeQuantize (also through operations
    that only move values, such as Concat or MaxPool), or a compressed int weight."""
    return {op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_type_name() not in _NOT_OPERATIONS and not _is_decompression(op)
            and any(_is_quantized(port.get_source_output().get_node()) for port in op.inputs())}


def _is_quantized(node, depth: int = 0) -> bool:
    kind = node.get_type_name()
    if kind == "FakeQuantize" or _is_decompression(node):
        return True
    return kind in _AGNOSTIC and depth < 6 and any(
        _is_quantized(port.get_source_output().get_node(), depth + 1) for port in node.inputs())


def _is_decompression(node, depth: int = 0) -> bool:
    """Whether `node` turns an int8 constant back into float (Convert, then Subtract / Multiply by scales)."""
    kind = node.get_type_name()
    if kind == "Constant":
        return depth > 0 and node.get_element_type().get_type_name() in _INT_WEIGHTS
    if kind not in _DECOMPRESSION or depth > 3:
        return False
    return any(_is_decompression(port.get_source_output().get_node(), depth + 1) for port in node.inputs())
