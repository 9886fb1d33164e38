"""The closed choices of the config schema (gfcore.config.schema): values Hydra checks at composition."""

from __future__ import annotations

from enum import Enum


class TaskType(str, Enum):
    ppe = "ppe"
    fall = "fall"
    fire = "fire"
    collision = "collision"
    stuck = "stuck"


class BackendName(str, Enum):
    pytorch = "pytorch"
    onnx = "onnx"
    openvino = "openvino"
    tensorrt = "tensorrt"


class Precision(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


class QuantMethod(str, Enum):
    """How int8 activations get their ranges: measured once on calibration images (static), or at run time from
    each input (dynamic: ONNX Runtime only)."""

    static = "static"
    dynamic = "dynamic"


class CalibrationMethod(str, Enum):
    """How a static int8 quantization turns calibration statistics into activation ranges."""

    minmax = "minmax"  # ONNX Runtime CalibrationMethod.MinMax; NNCF RangeEstimatorParametersSet.MINMAX
    entropy = "entropy"  # ONNX Runtime CalibrationMethod.Entropy (KL divergence of histograms)
    percentile = "percentile"  # ONNX Runtime CalibrationMethod.Percentile (99.999 % of a histogram)
    mean_minmax = "mean_minmax"  # NNCF RangeEstimatorParametersSet.MEAN_MINMAX (NNCF's own default)
    mean_quantile = "mean_quantile"  # NNCF RangeEstimatorParametersSet.MEAN_QUANTILE
    histogram = "histogram"  # NNCF RangeEstimatorParametersSet.HISTOGRAM


class DataKind(str, Enum):
    demo = "demo"  # the built-in synthetic set, generated on first use
    yolo = "yolo"  # a YOLO data yaml (data.path): on disk, on S3, or in a DVC-tracked git repository
    versioned = "versioned"  # a version pushed with `guardianflow data push` (data.name, data.version)


class TrackerName(str, Enum):
    bytetrack = "bytetrack"
    botsort = "botsort"


class Direction(str, Enum):
    maximize = "maximize"
    minimize = "minimize"


class EnvManager(str, Enum):
    local = "local"  # the current environment
    virtualenv = "virtualenv"  # python_env.yaml
    uv = "uv"
    conda = "conda"  # conda.yaml


class StepLauncher(str, Enum):
    local = "local"  # each step a `mlflow run` process on this machine
    slurm = "slurm"  # each step that `mlflow run` inside a SLURM job (gfcore.orchestration.slurm_steps)


class ExpDesign(str, Enum):
    single = "single"
    sweep = "sweep"
    comparison = "comparison"


class RuleKind(str, Enum):
    """What an alert rule checks (gfcore.automation.rules): each kind reads some of a rule's settings."""

    champion_below = "champion_below"  # metric, threshold
    latency_over_budget = "latency_over_budget"  # metric, budget_ms
    candidate_worse = "candidate_worse"
    tracking_drop = "tracking_drop"  # metric, max_drop
    failed_runs = "failed_runs"  # hours
    stale_champion = "stale_champion"  # days, data_changed


class Severity(str, Enum):  # mildest first
    info = "info"
    warning = "warning"
    critical = "critical"
