"""Structured-config schema of a GuardianFlow scenario, registered with Hydra's ConfigStore.

`conf/config.yaml` starts its defaults list with `gf_schema`, so every group (site, task, model,
backend, data) and every scenario preset is merged onto these dataclasses: an unknown key or a value of
the wrong type fails when Hydra composes the config, before any run exists. Checks that need more than
a type (names MLflow would reject, a data path the data kind needs) run in `__post_init__`, which
`OmegaConf.to_object` calls when the entry point turns the composed config into these objects.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from gfcore.config.automation import ChallengeConfig, check_rule_settings  # noqa: F401  (re-exported)
from gfcore.config.backend import (  # noqa: F401  re-exported with the rest of the schema
    ACCURACY_AWARE_BACKENDS,
    CALIBRATION_METHODS,
    DEFAULT_CALIBRATION,
    DYNAMIC_QUANT_BACKENDS,
    BackendConfig,
)
from gfcore.config.cluster import SlurmStepsConfig
from gfcore.config.data import DataConfig, DemoDataConfig  # noqa: F401  re-exported with the rest of the schema
from gfcore.config.enums import (  # noqa: F401  re-exported: callers import them from the schema
    BackendName,
    CalibrationMethod,
    DataKind,
    Direction,
    EnvManager,
    ExpDesign,
    Precision,
    QuantMethod,
    StepLauncher,
    TaskType,
    TrackerName,
)
from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import DET_MAP50_95, MAX_TAG_VALUE, own_tag

# Site parts and task classes become parts of experiment, run and registered-model names and of metric
# names: `.` separates the parts of a model name, MLflow rejects `/` and `:` in model names.
_NAME_PART = re.compile(r"^[A-Za-z0-9\uac00-\ud7a3][A-Za-z0-9_\-\uac00-\ud7a3]*$")


def check_name_part(where: str, value: str) -> None:
    if not isinstance(value, str) or not _NAME_PART.match(value):
        raise ConfigError(
            f"{where}={value!r} cannot be part of an experiment or registered model name: use letters, digits, "
            "'-' and '_' only (no '/', ':', '.', or spaces), starting with a letter or digit. "
            "Fix it in the scenario or override it on the command line."
        )


# A scenario's own tag name: what MLflow takes as a tag key, and quotes in no filter string (`tags.`K` = 'V'`).
_TAG_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,249}$")


def check_own_tag(name: str, value: str) -> None:
    """An `exp.tags` entry: a name MLflow accepts and GuardianFlow does not write itself, a value that fits a tag."""
    where = f"exp.tags.{name}"
    if not isinstance(name, str) or not _TAG_NAME.match(name) or posixpath.normpath(name) != name:
        raise ConfigError(f"{where}: {name!r} cannot be a tag name: use letters, digits, '_', '-', '.' and '/' "
                          "(up to 250), starting with a letter, digit or '_', e.g. purpose or ticket.")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: a tag's value is one string, not {type(value).__name__} {value!r}.")
    why = own_tag(name)
    if why:
        raise ConfigError(f"{where}: {why}, so a scenario's own tag cannot have that name: rename it (e.g. "
                          f"{name.replace('.', '_').replace('/', '_')!r}, or purpose, ticket, owner).")
    if len(str(value)) > MAX_TAG_VALUE:
        raise ConfigError(f"{where}: the value has {len(str(value))} characters; a tag holds at most "
                          f"{MAX_TAG_VALUE}.")


@dataclass
class SiteConfig:
    customer: str = MISSING
    region: str = MISSING
    plant: str = MISSING
    zone: str = MISSING
    # What the site asks of its models (read by `guardianflow alerts` and `guardianflow optimize`):
    latency_budget_ms: Optional[float] = None  # the served champion's batch-1 sys.latency_p95_ms at most this
    target_backend: str = "openvino_int8"  # the backend option a too slow champion is quantized to
    gates: List[str] = field(default_factory=list)  # promotion gates, e.g. 'det.mAP50>=champion-0.005'
    # The confidence the site's deployment runs at: every det.* evaluation also counts det.op.* (precision,
    # recall, F1, missed labels, per class) among the boxes at or above it.
    conf_threshold: float = 0.25
    # This site's settings of alert rules, {rule: {key: value}}: gfcore.config.automation.RuleSettings' keys.
    alerts: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.conf_threshold < 1:
            raise ConfigError(f"site.conf_threshold={self.conf_threshold}: the operating confidence must lie "
                              "strictly between 0 and 1 (e.g. 0.25).")
        if self.latency_budget_ms is not None and self.latency_budget_ms <= 0:
            raise ConfigError(f"site.latency_budget_ms={self.latency_budget_ms}: give a budget in ms above 0, or "
                              "null for none.")
        for part in ("customer", "region", "plant", "zone"):
            check_name_part(f"site.{part}", getattr(self, part))
        for rule, given in self.alerts.items():
            check_rule_settings(f"site.alerts.{rule}", given)


@dataclass
class TaskConfig:
    type: TaskType = MISSING
    classes: List[str] = MISSING
    # The classes whose miss is a violation (a missed helmet): a challenge whose candidate loses recall on one at
    # the operating confidence is `worse`, whatever its mAP.
    safety_classes: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.classes:
            raise ConfigError("task.classes is empty: list the class names in the order of the dataset's ids.")
        for name in self.classes:
            check_name_part("a name in task.classes", name)
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"task.classes={list(self.classes)} repeats a name: class names must be unique.")
        unknown = [c for c in self.safety_classes if c not in self.classes]
        if unknown:
            raise ConfigError(f"task.safety_classes names {unknown}, which task.classes does not have: choose "
                              f"among {list(self.classes)}.")


@dataclass
class ModelConfig:
    # `yolov8n.yaml` builds from scratch, `yolo11s.pt` starts from pretrained weights (a file on disk).
    architecture: str = MISSING
    imgsz: int = 640
    # Optional path to weights to start from instead of the architecture's own (.pt).
    weights: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.architecture.endswith((".yaml", ".yml", ".pt")):
            raise ConfigError(
                f"model.architecture={self.architecture!r} is neither a model yaml (e.g. yolov8n.yaml, built from "
                "scratch) nor a weights file (e.g. yolo11s.pt)."
            )
        if self.imgsz < 32 or self.imgsz % 32:
            raise ConfigError(f"model.imgsz={self.imgsz} must be a multiple of 32 and at least 32 (e.g. 160, 640).")


# What each runtime's int8 can be steered with (BackendConfig refuses the rest, naming the runtimes that can).
@dataclass
class TrainConfig:
    """Training settings; the keys are Ultralytics' own and are passed to `YOLO.train` unchanged."""

    epochs: int = 100
    batch: int = 16
    lr0: float = 0.01
    lrf: float = 0.01
    optimizer: str = "auto"
    momentum: float = 0.937
    weight_decay: float = 0.0005
    warmup_epochs: float = 3.0
    cos_lr: bool = False
    patience: int = 100
    workers: int = 8
    seed: int = 0
    deterministic: bool = True
    amp: bool = True
    mosaic: float = 1.0
    close_mosaic: int = 10
    fliplr: float = 0.5
    cache: bool = False
    val: bool = True
    plots: bool = True
    # Any other Ultralytics train argument, e.g. `+train.extra.mixup=0.1`; checked against Ultralytics' keys.
    extra: Dict[str, Any] = field(default_factory=dict)
    # GuardianFlow's own: on out-of-memory, retry with half the batch, but not below this.
    min_batch: int = 2
    # A graduated old folder's own training code instead of Ultralytics' trainer: `module:Class`, imported
    # from train.code_path (see gfcore/jobs/custom_trainer.py for the interface).
    trainer: Optional[str] = None
    code_path: Optional[str] = None
    # Upload the checkpoint (last.pt, and best.pt when it changed) as the run's artifact `checkpoints/` every this
    # many epochs, so the run can be resumed on another machine; 0: never (a resume then needs the local folder).
    checkpoint_every: int = 1
    # Continue this unfinished (FAILED, KILLED or crashed) train run from its last checkpoint, in the same run
    # (`guardianflow resume RUN_ID`, or `-P resume_run_id=RUN_ID`); the config must be the run's own.
    resume_run_id: Optional[str] = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"train.epochs={self.epochs}: train for at least one epoch.")
        if self.checkpoint_every < 0:
            raise ConfigError(f"train.checkpoint_every={self.checkpoint_every}: upload the checkpoint every N >= 1 "
                              "epochs, or 0 for never.")
        if self.batch < 1 and self.batch != -1:
            raise ConfigError(f"train.batch={self.batch}: use a positive batch size, or -1 for Ultralytics' "
                              "automatic batch size.")


@dataclass
class ExpConfig:
    scenario: str = "custom"  # the preset's name, tag gf.scenario
    version: str = "v1"  # tag exp.version and the run name's last part
    design: ExpDesign = ExpDesign.single
    # The scenario's own tags, e.g. {purpose: baseline, ticket: SAFE-123}: tags of those names on every run the
    # scenario makes and on every version it registers (`+exp.tags.purpose=baseline` on the command line).
    tags: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name_part("exp.version", self.version)
        for name, value in self.tags.items():
            check_own_tag(name, value)


@dataclass
class TrackingConfig:
    system_metrics: bool = True  # MLflow's system/* metrics while the run is active
    system_metrics_interval_s: float = 10.0
    log_plots: bool = True
    # Records of a run on a tracking server go through a local journal (gfcore.tracking.journal): an outage
    # costs no work; at the end the process waits up to drain_timeout_s for the journal to reach the server.
    journal: bool = True
    drain_timeout_s: float = 120.0
    # Record into a local store instead of the server (also GF_OFFLINE=1); `guardianflow sync` publishes later.
    offline: bool = False


@dataclass
class LatencyConfig:
    """How every latency figure is measured (train's final result, quant's source and variant, infer per batch
    size): `warmup` untimed then `runs` timed `predict` calls on real images of the evaluation split, so figures
    of one model from different runs are comparable."""

    warmup: int = 10
    runs: int = 100

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.runs < 1:
            raise ConfigError("latency.warmup must be >= 0 and latency.runs >= 1.")


@dataclass
class QuantConfig:
    # The train run whose best.pt is exported; source and result are both measured on registry.eval_split.
    source_run_id: Optional[str] = None


@dataclass
class InferTrackingConfig:
    enabled: bool = False  # track the dataset's video sequences and score them with TrackEval
    tracker: TrackerName = TrackerName.bytetrack
    conf: Optional[float] = None  # detection threshold fed to the tracker; None: Ultralytics' tracking default
    iou: float = 0.7  # NMS IoU threshold
    # Whose MOTChallenge rules score the sequences: auto (guessed per sequence from gt.txt), MOT15, MOT16,
    # MOT17 or MOT20 (as `guardianflow eval-mot --benchmark`).
    benchmark: str = "auto"

    def __post_init__(self) -> None:
        if self.benchmark.upper() not in ("AUTO", "MOT15", "MOT16", "MOT17", "MOT20"):
            raise ConfigError(f"infer.tracking.benchmark={self.benchmark!r}: use auto, MOT15, MOT16, MOT17 or MOT20.")


@dataclass
class InferConfig:
    # The model, first that is set: a models:/NAME@alias, models:/NAME/VERSION or runs:/ URI, or a path; else
    # the model of source_run_id (a train or quant run). The backend follows the model file.
    model_uri: Optional[str] = None
    source_run_id: Optional[str] = None
    # Detection metrics and latency images come from this split; unset: registry.eval_split, the split every
    # registered version's figures are measured on.
    split: Optional[str] = None
    conf: float = 0.001  # detection metrics: Ultralytics validation thresholds
    iou: float = 0.7
    batch_sizes: List[int] = field(default_factory=lambda: [1, 8])
    tracking: InferTrackingConfig = field(default_factory=InferTrackingConfig)

    def __post_init__(self) -> None:
        if self.split not in (None, "train", "val", "test"):
            raise ConfigError(f"infer.split={self.split!r}: use train, val or test (or leave it unset for "
                              "registry.eval_split).")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ConfigError(f"infer.batch_sizes={list(self.batch_sizes)}: list one or more positive batch sizes, "
                              "e.g. [1,8].")
        if not (0 <= self.conf <= 1 and 0 < self.iou <= 1):
            raise ConfigError("infer.conf must be within 0..1 and infer.iou within (0, 1].")


@dataclass
class PipelineConfig:
    """full_pipeline: train, then quant for each backend, then infer for the trained model and each variant."""

    quant_backends: List[str] = field(default_factory=lambda: ["openvino_int8"])  # options of the backend group
    use_cache: bool = True  # reuse a finished step whose entry point, config, upstream runs and code match
    env_manager: EnvManager = EnvManager.local  # how `mlflow run` prepares each step's environment
    launcher: StepLauncher = StepLauncher.local  # slurm: each step's `mlflow run` inside a SLURM job
    slurm: SlurmStepsConfig = field(default_factory=SlurmStepsConfig)


@dataclass
class SweepConfig:
    """A Hydra multirun of train under one parent run that names the best child."""

    metric: str = DET_MAP50_95
    direction: Direction = Direction.maximize


@dataclass
class CompareConfig:
    """One design, chosen by the one non-empty list: architectures (model options: train each, then benchmark),
    backends (backend options: quantize source_run_id, then benchmark), datasets (data options or YOLO data
    yamls: benchmark one model on each), run_ids (existing runs side by side, no new work)."""

    architectures: List[str] = field(default_factory=list)
    backends: List[str] = field(default_factory=list)
    datasets: List[str] = field(default_factory=list)
    run_ids: List[str] = field(default_factory=list)
    source_run_id: Optional[str] = None  # the train run that backends and datasets start from
    model_uri: Optional[str] = None  # or a model URI / path, for datasets
    metric: str = DET_MAP50_95
    direction: Direction = Direction.maximize


@dataclass
class RegistryConfig:
    register: bool = True  # train (and quant) register their model with alias `candidate`
    # The split of the scenario's dataset on which every registered version's headline figures (det.*, batch-1
    # latency) are measured; version tags eval.split and eval.dataset_digest say which, so two versions are
    # comparable exactly when those tags match.
    eval_split: str = "test"

    def __post_init__(self) -> None:
        if self.eval_split not in ("train", "val", "test"):
            raise ConfigError(f"registry.eval_split={self.eval_split!r}: use train, val or test.")


@dataclass
class Config:
    site: SiteConfig = MISSING
    task: TaskConfig = MISSING
    model: ModelConfig = MISSING
    backend: BackendConfig = MISSING
    data: DataConfig = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    exp: ExpConfig = field(default_factory=ExpConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    challenge: ChallengeConfig = field(default_factory=ChallengeConfig)

    def __post_init__(self) -> None:
        for gate in self.site.gates:
            check_class_figure(f"site.gates entry {gate!r}", re.split(r"\s*(?:[<>=!]=|[<>])", gate)[0].strip(),
                               list(self.task.classes))


def check_class_figure(where: str, metric: str, classes: list[str]) -> None:
    """A per-class figure (det.ap50_95.CLASS, det.op.recall.CLASS, ...) must name one of the task's classes."""
    import difflib

    m = re.match(r"^det\.(?:ap50_95|op\.(?:precision|recall|f1|missed))\.(.+)$", metric)
    if m and m.group(1) not in classes:
        close = difflib.get_close_matches(m.group(1), classes, n=1)
        hint = f" Did you mean {metric[:m.start(1)] + close[0]!r}?" if close else ""
        raise ConfigError(f"{where}: {metric!r} is a figure of class {m.group(1)!r}, which task.classes "
                          f"{classes} does not have.{hint}")


def gpus_of_device(device: str) -> int:
    """How many GPUs an Ultralytics device string uses: `cpu` and `mps` none, `0` one, `0,1` two, `cuda:0` one."""
    text = str(device).strip().lower().removeprefix("cuda:")
    if text in ("", "cpu", "mps", "none"):
        return 0
    return len([part for part in text.split(",") if part.strip()])


def register() -> None:
    """Register the schema with Hydra's ConfigStore, and the resolver launcher presets size GPU requests with
    (`${gf_gpus:${backend.device}}`); safe to call more than once."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    # Hydra closes every dict of the composed config, so a new key needs `+`; exp.tags stays open, so that
    # `exp.tags.purpose=baseline` and `exp.tags={purpose: baseline}` work as well as `+exp.tags.purpose=baseline`.
    node = OmegaConf.structured(Config)
    OmegaConf.set_struct(node.exp.tags, False)
    ConfigStore.instance().store(name="gf_schema", node=node)
    OmegaConf.register_new_resolver("gf_gpus", gpus_of_device, replace=True)


register()
