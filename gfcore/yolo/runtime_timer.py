"""Time the inference runtime's own call inside an Ultralytics model: `InferenceSession.run` for ONNX Runtime, the
compiled model's call for OpenVINO, the module's forward for PyTorch.

Ultralytics' "inference" stage also counts its own work around that call (tensor to NumPy, padding, NumPy back
to a tensor), which on a fast runtime is several percent of the figure. `sys.inference_ms` is the runtime's call
alone, so that it can be held against the runtime's own tools (`benchmark_app`, a bare session loop); the stage
keeps its own name (`sys.inference_stage_ms`). A runtime without a hook here (TensorRT, the other formats) has
no runtime figure: the caller falls back to the stage.
"""

from __future__ import annotations

import time
from typing import Any


class RuntimeTimer:
    """Installed on a YOLO model after its first predict (Ultralytics builds the backend then); each later
    predict leaves the duration of its runtime calls in `last_ms` (None where nothing was timed)."""

    def __init__(self) -> None:
        self.installed = False
        self.kind: str | None = None  # "onnxruntime", "openvino", "pytorch" once installed
        self._ms = 0.0
        self._calls = 0

    def start(self) -> None:
        self._ms, self._calls = 0.0, 0

    @property
    def last_ms(self) -> float | None:
        return self._ms if self._calls else None

    def install(self, yolo: Any) -> bool:
        """Hook the runtime of `yolo`'s predictor; False (and nothing changed) for a runtime without a hook."""
        if self.installed:
            return True
        backend = getattr(getattr(getattr(yolo, "predictor", None), "model", None), "backend", None)
        if backend is None:
            return False
        fmt = getattr(backend, "format", None)
        if getattr(backend, "ov_compiled_model", None) is not None:
            backend.ov_compiled_model = _Timed(backend.ov_compiled_model, self, call=True)
            self.kind = "openvino"
        elif fmt == "onnx" and getattr(backend, "session", None) is not None:
            backend.session = _Timed(backend.session, self, methods=("run", "run_with_iobinding"))
            self.kind = "onnxruntime"
        elif _is_module(getattr(backend, "model", None)):
            self._hook_module(backend.model)
            self.kind = "pytorch"
        else:
            return False
        self.installed = True
        return True

    def add(self, ms: float) -> None:
        self._ms += ms
        self._calls += 1

    def _hook_module(self, module: Any) -> None:
        import torch

        cuda = next((p.is_cuda for p in module.parameters()), False)
        started: list[float] = []

        def before(*_: Any) -> None:
            if cuda:  # CUDA runs asynchronously: time the kernels, not their launch
                torch.cuda.synchronize()
            started.append(time.perf_counter())

        def after(*_: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            self.add((time.perf_counter() - started.pop()) * 1000.0)

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)


class _Timed:
    """Stands in for a runtime object: the listed methods (or the object's own call) are timed, everything else
    is the object's."""

    def __init__(self, target: Any, timer: RuntimeTimer, methods: tuple[str, ...] = (), call: bool = False) -> None:
        self._target, self._timer, self._methods, self._call = target, timer, methods, call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self._target, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name in self._methods:
            return lambda *args, **kwargs: self._timed(attr, args, kwargs)
        return attr

    def _timed(self, fn: Any, args: tuple, kwargs: dict) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._timer.add((time.perf_counter() - start) * 1000.0)


def _is_module(obj: Any) -> bool:
    return hasattr(obj, "register_forward_hook") and hasattr(obj, "parameters")
