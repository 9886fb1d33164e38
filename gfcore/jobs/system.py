"""A system snapshot of a measured span: the process's CPU use and peak memory, and on NVIDIA GPUs the
device's memory, utilization, power and temperature through NVML (nvidia-ml-py).

GPU figures are only sampled when the model runs on a CUDA device and NVML answers; on a CPU machine
they are simply absent, never zeros.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from typing import Any

from gfcore.core.vocabulary import SYS, SYS_GPU_UTILIZATION_PCT

log = logging.getLogger(__name__)


class SystemSampler:
    """`with SystemSampler(device) as s: ...` then `s.metrics()` -> sys.* figures of the span."""

    def __init__(self, device: str = "cpu", interval_s: float = 0.1) -> None:
        self.device = device
        self.interval_s = interval_s
        self._gpu = _NvmlDevice.open(device)
        self._samples: list[tuple[float, float, float, float]] = []  # memory MB, util %, power W, temp C
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SystemSampler:
        import psutil

        self._proc = psutil.Process()
        self._cpu0, self._t0 = self._cpu_seconds(), time.perf_counter()
        if self._gpu is not None:
            self._thread = threading.Thread(target=self._sample_gpu, name="gf-nvml", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cpu1, self._t1 = self._cpu_seconds(), time.perf_counter()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._gpu is not None:
            self._gpu.close()

    def metrics(self) -> dict[str, float]:
        cores = os.cpu_count() or 1
        wall = max(self._t1 - self._t0, 1e-9)
        out = {
            # Share of the whole machine (all cores) the process used while measuring, 0-100.
            f"{SYS}cpu_utilization_pct": 100.0 * (self._cpu1 - self._cpu0) / wall / cores,
            f"{SYS}rss_peak_mb": _peak_rss_mb(),
        }
        if self._samples:
            memory, util, power, temp = zip(*self._samples)
            out.update({f"{SYS}gpu_memory_peak_mb": max(memory), SYS_GPU_UTILIZATION_PCT: sum(util) / len(util),
                        f"{SYS}gpu_power_w": sum(power) / len(power), f"{SYS}gpu_temperature_c": max(temp)})
        return out

    def _cpu_seconds(self) -> float:
        t = self._proc.cpu_times()
        return t.user + t.system

    def _sample_gpu(self) -> None:
        while True:
            sample = self._gpu.sample()
            if sample is not None:
                self._samples.append(sample)
            if self._stop.wait(self.interval_s):
                break


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if os.uname().sysname == "Darwin" else 2**10)


class _NvmlDevice:
    """One GPU through NVML; `open` returns None where there is none to watch."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    @classmethod
    def open(cls, device: str) -> _NvmlDevice | None:
        index = _cuda_index(device)
        if index is None:
            return None
        try:
            import pynvml

            pynvml.nvmlInit()
            return cls(pynvml.nvmlDeviceGetHandleByIndex(index))
        except Exception as exc:  # no driver, no such device, or nvidia-ml-py missing
            log.info("no GPU figures: NVML is not available for device %s (%s)", device, exc)
            return None

    def sample(self) -> tuple[float, float, float, float] | None:
        import pynvml

        try:
            memory = pynvml.nvmlDeviceGetMemoryInfo(self._handle).used / 2**20
            util = float(pynvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
            power = pynvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
            temp = float(pynvml.nvmlDeviceGetTemperature(self._handle, pynvml.NVML_TEMPERATURE_GPU))
        except pynvml.NVMLError:
            return None
        return memory, util, power, temp

    def close(self) -> None:
        import pynvml

        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _cuda_index(device: str) -> int | None:
    """Ultralytics' device string -> the physical GPU index NVML uses, or None for cpu/mps."""
    text = str(device).strip().lower().removeprefix("cuda:").removeprefix("cuda")
    first = text.split(",")[0].strip() or "0"
    if not first.isdigit():
        return None
    logical = int(first)
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible and logical < len(visible) and visible[logical].isdigit():
        return int(visible[logical])
    return logical
