"""The `backend` section: the runtime and precision a model is exported to and measured on, and how int8 is made
(static or dynamic, the calibration method, an accuracy-aware search where the runtime has one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from gfcore.config.enums import BackendName, CalibrationMethod, Precision, QuantMethod
from gfcore.core.errors import ConfigError

DYNAMIC_QUANT_BACKENDS = (BackendName.onnx,)  # ONNX Runtime's quantize_dynamic
CALIBRATION_METHODS = {
    BackendName.onnx: (CalibrationMethod.minmax, CalibrationMethod.entropy, CalibrationMethod.percentile),
    BackendName.openvino: (CalibrationMethod.minmax, CalibrationMethod.mean_minmax, CalibrationMethod.mean_quantile,
                           CalibrationMethod.histogram),
}
DEFAULT_CALIBRATION = {BackendName.onnx: CalibrationMethod.minmax, BackendName.openvino: CalibrationMethod.mean_minmax}
ACCURACY_AWARE_BACKENDS = (BackendName.openvino,)  # NNCF's quantize_with_accuracy_control


def _variants(names) -> str:
    return " and ".join(f"backend={n.value}_int8" for n in names)


@dataclass
class BackendConfig:
    name: BackendName = BackendName.pytorch
    precision: Precision = Precision.fp32
    device: str = "cpu"  # Ultralytics' device string: cpu, 0, 0,1, cuda:0, mps
    calibration_size: int = 300  # images used to calibrate int8 quantization
    calibration_split: str = "train"  # never the split the result is measured on
    # int8: static (activation ranges calibrated on calibration_size images) or dynamic (ranges computed from each
    # input at run time, no calibration: ONNX Runtime only).
    method: QuantMethod = QuantMethod.static
    # static int8: how calibration statistics become ranges; null: the runtime's default (onnx minmax, openvino
    # mean_minmax). ONNX Runtime: minmax, entropy, percentile; NNCF: minmax, mean_minmax, mean_quantile, histogram.
    calibration_method: Optional[CalibrationMethod] = None
    # openvino int8: NNCF's accuracy-aware quantization keeps layers in float until det.mAP50 on the val split drops
    # at most this much (absolute, e.g. 0.01) from the fp32 model's; null: plain post-training quantization.
    max_accuracy_drop: Optional[float] = None

    def __post_init__(self) -> None:
        if self.calibration_size < 1:
            raise ConfigError("backend.calibration_size must be at least 1 image.")
        if self.calibration_split not in ("train", "val", "test"):
            raise ConfigError(f"backend.calibration_split={self.calibration_split!r}: use train, val or test.")
        self._check_quantization()

    def _check_quantization(self) -> None:
        here = self.name if self.precision == Precision.int8 else None  # only int8 is steered
        if self.method == QuantMethod.dynamic and here not in DYNAMIC_QUANT_BACKENDS:
            raise ConfigError(f"backend.method=dynamic: backend={self.variant} has no dynamic quantization; "
                              f"{_variants(DYNAMIC_QUANT_BACKENDS)} has (e.g. backend=onnx_int8 backend.method=dynamic)"
                              "; OpenVINO (NNCF) and TensorRT quantize statically.")
        if self.calibration_method is not None:
            chosen = self.calibration_method.value
            if self.method == QuantMethod.dynamic:
                raise ConfigError(f"backend.calibration_method={chosen} with backend.method=dynamic: dynamic "
                                  "quantization has no calibration; drop one of them.")
            can = [b for b, methods in CALIBRATION_METHODS.items() if self.calibration_method in methods]
            if here not in can:
                mine = CALIBRATION_METHODS.get(here, ())
                offered = f" (it offers {', '.join(m.value for m in mine)})" if mine else ""
                raise ConfigError(f"backend.calibration_method={chosen}: backend={self.variant} cannot calibrate "
                                  f"with it{offered}; {_variants(can)} can.")
        if self.max_accuracy_drop is not None:
            if here not in ACCURACY_AWARE_BACKENDS:
                raise ConfigError(f"backend.max_accuracy_drop={self.max_accuracy_drop}: backend={self.variant} has no "
                                  f"accuracy-aware quantization; {_variants(ACCURACY_AWARE_BACKENDS)} has (NNCF), "
                                  "e.g. backend=openvino_int8 backend.max_accuracy_drop=0.01.")
            if not 0 <= self.max_accuracy_drop < 1:
                raise ConfigError(f"backend.max_accuracy_drop={self.max_accuracy_drop}: give the largest det.mAP50 "
                                  "loss you accept as an absolute value in [0, 1), e.g. 0.01.")

    @property
    def calibration(self) -> CalibrationMethod | None:
        """The calibration method that runs: the one asked for, else the runtime's default (None: no calibration)."""
        if self.precision != Precision.int8 or self.method == QuantMethod.dynamic:
            return None
        return self.calibration_method or DEFAULT_CALIBRATION.get(self.name)

    @property
    def variant(self) -> str:
        """`{backend}_{precision}`, e.g. openvino_int8."""
        return f"{self.name.value}_{self.precision.value}"
