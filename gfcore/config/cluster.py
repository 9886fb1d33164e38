"""Config of the work that leaves this machine: pipeline steps as SLURM jobs (`pipeline.slurm`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from gfcore.core.errors import ConfigError

RESOURCE_KEYS = ("cpus_per_task", "mem_gb", "timeout_min", "partition", "account", "qos")


@dataclass
class SlurmStepsConfig:
    """What each step's SLURM job asks for with pipeline.launcher=slurm. GPUs follow the step's device: train's
    backend.device, a quant or infer step's backend (TensorRT asks for one, OpenVINO for none). `steps` sizes an
    entry point apart, e.g. pipeline.slurm.steps={train: {cpus_per_task: 8, mem_gb: 32, timeout_min: 240}}."""

    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    cpus_per_task: int = 1
    mem_gb: int = 2
    timeout_min: int = 60
    impossible_after_s: float = 30.0  # PENDING this long for a reason no waiting clears: the step fails
    # The train step's job asks SLURM for a warning (SIGUSR1) this many seconds before its time limit (SLURM sends
    # it up to 30 s later than that); warned, it requeues itself and the requeued job resumes the same run from its
    # last checkpoint, as after a preemption or `scontrol requeue`. 0: no warning (a preemption still requeues).
    requeue_warning_s: int = 60
    steps: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry, given in (self.steps or {}).items():
            unknown = set(given or {}) - set(RESOURCE_KEYS)
            if entry not in ("train", "quant", "infer") or unknown:
                raise ConfigError(f"pipeline.slurm.steps.{entry}: steps are train, quant or infer, each with any of "
                                  f"{', '.join(RESOURCE_KEYS)}{f' (not {sorted(unknown)})' if unknown else ''}.")
        limit_s = 60 * int(self.for_entry("train")["timeout_min"] or 0)
        if self.requeue_warning_s < 0 or (self.requeue_warning_s and limit_s and self.requeue_warning_s >= limit_s):
            raise ConfigError(f"pipeline.slurm.requeue_warning_s={self.requeue_warning_s}: the train job's warning "
                              "before its time limit must be 0 (none) or a number of seconds shorter than that "
                              f"limit ({limit_s // 60} min).")

    def for_entry(self, entry: str) -> dict[str, Any]:
        """The resources of one entry point's jobs: the defaults with its own settings over them."""
        base = {k: getattr(self, k) for k in RESOURCE_KEYS}
        return {**base, **dict((self.steps or {}).get(entry) or {})}
