"""The names others read, each written once: every run tag, registered-model tag, version tag and experiment tag
GuardianFlow writes or reads, its metric prefixes and headline metrics, and the kinds of run (like MLflow's
`mlflow/utils/mlflow_tags.py`). docs/metrics.md explains them; code uses these constants, not the strings.

The ground floor: imports nothing of gfcore and nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

MAX_TAG_VALUE = 5000  # the most characters GuardianFlow writes into one tag value (longer reasons are cut)


class RunKind(str, Enum):
    """A run's `exp.type`: what made it. Each kind's name is its value (a dict keyed by kinds answers to the plain
    strings); an entry point's kind is also the name of its config section."""

    train = "train"
    quant = "quant"
    infer = "infer"
    sweep = "sweep"
    compare = "compare"
    pipeline = "pipeline"
    wrap = "wrap"  # an old experiment folder's script, run unchanged (gfcore.legacy)
    challenge = "challenge"  # candidate against champion, same data and machine (gfcore.automation.challenge)
    alerts = "alerts"  # one alert evaluation (guardianflow/alerts)
    optimize = "optimize"  # one optimize check or run (guardianflow/automation)
    fleet_report = "fleet_report"  # one fleet report (guardianflow/fleet)

    def __str__(self) -> str:  # the value wherever a kind is written out (tags, run names)
        return self.value

    @property
    def is_parent(self) -> bool:
        """Parents summarise their children (`best.*`, a result table); they measure nothing themselves."""
        return self in PARENT_KINDS

    @property
    def config_section(self) -> str:
        """The config section of the entry point that makes this kind of run (`pipeline:`, `sweep:`, `train:` ...)."""
        return self.value


PARENT_KINDS = (RunKind.pipeline, RunKind.sweep, RunKind.compare)

# --- MLflow's own tags that GuardianFlow writes or reads
PARENT_TAG = "mlflow.parentRunId"  # a child run's parent
NOTE_TAG = "mlflow.note.content"  # a run's or experiment's description (Markdown), as the UI shows it
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # experiment tag: what the UI opens on
ENTRY_POINT_TAG = "mlflow.project.entryPoint"  # set by `mlflow run`

# --- tags on every run (DESIGN.md section 3)
EXP_TYPE = "exp.type"  # a RunKind
EXP_VERSION = "exp.version"
EXP_DESIGN = "exp.design"  # single, sweep, comparison (gfcore.config ExpDesign)
SCENARIO = "gf.scenario"
SITE_CUSTOMER, SITE_REGION, SITE_PLANT, SITE_ZONE = "site.customer", "site.region", "site.plant", "site.zone"
SITE_TAGS = (SITE_CUSTOMER, SITE_REGION, SITE_PLANT, SITE_ZONE)
TASK_TYPE, TASK_CLASSES = "task.type", "task.classes"
MODEL_ARCHITECTURE = "model.architecture"
DATA_VERSION, DATA_HASH = "data.version", "data.hash"
# Where a run's data can be fetched again (gfcore.data.versions, gfcore.data.dvc): DATA_VERSION is then the pushed
# version's id; DATA_DIGEST the version's manifest sha256, or DVC's hash of the dataset; DATA_URI the version's
# manifest (s3://...), or git+REPO#PATH@REV; DATA_REV the git commit of a DVC dataset.
DATA_DIGEST, DATA_URI, DATA_REV = "data.digest", "data.uri", "data.rev"
CODE_VERSION = "gf.code_version"
SOURCE_RUN_ID = "source.run_id"  # the run this one builds on
INPUT_IMAGES = "images"  # a dataset input's tag (with DATA_HASH): how many images the split has

# --- tags of some runs
ERROR_TAG = "gf.error"  # why a run ended FAILED or KILLED
OFFLINE_TAG = "gf.offline"  # a run recorded offline: what happens at `guardianflow sync`, then where it went
OFFLINE_RUN_ID = "gf.offline.run_id"  # on the server: the id the run had in the offline store
PUBLISHED_AS = "gf.offline.published_as"  # in the offline store: the run's id on the server
REPRODUCED_FROM = "gf.reproduced_from"  # `guardianflow reproduce`: the run repeated
BACKEND_NAME, BACKEND_PRECISION = "backend.name", "backend.precision"  # quant, infer and challenge runs; versions
MODEL_URI = "model.uri"  # the model an infer or challenge run measured
INFER_IMGSZ = "infer.imgsz"
TRACKING_TRACKER = "tracking.tracker"  # an infer run that tracked: ByteTrack or BoT-SORT
# how a quant run quantized (also version tags): QUANT_METHOD static / dynamic (int8; `none` for fp32 / fp16),
# QUANT_CALIBRATION the calibration method that ran (static int8 where the runtime has one), QUANT_RECIPE in words
QUANT_METHOD, QUANT_CALIBRATION, QUANT_RECIPE = "quant.method", "quant.calibration_method", "quant.recipe"
# an accuracy-aware int8 (backend.max_accuracy_drop): `met` or `missed` (NNCF reverted every layer it could)
QUANT_ACCURACY_TARGET = "quant.accuracy_target"
LATENCY_PROTOCOL = "sys.latency_protocol"  # how latency was measured (a tag, not a metric)
BEST_BATCH_RULE = "sys.best_batch_rule"  # an infer run: how its best batch size was chosen, or why none was
EVAL_SPLIT, EVAL_DATASET, EVAL_DATASET_DIGEST = "eval.split", "eval.dataset", "eval.dataset_digest"
EVAL_BASIS = (EVAL_SPLIT, EVAL_DATASET_DIGEST)  # two versions are comparable when these match
REGISTERED_MODEL, REGISTERED_VERSION = "gf.registered_model", "gf.registered_version"
TRAINER = "gf.trainer"  # a custom Ultralytics trainer class
TRAIN_BATCH_USED = "gf.train.batch_used"
OOM_RETRY_PREFIX = "gf.oom_retry."  # + attempt: a batch halved after running out of memory
# resuming a train run after a crash or preemption (gfcore.jobs.resume)
RESUME_PREFIX = "gf.resume."  # + N (1, 2, ...): the N-th resume; its value says from which epoch and checkpoint
WORK_DIR = "gf.work_dir"  # a train run's local work folder, where Ultralytics keeps its checkpoints (last.pt)
PROCESS = "gf.process"  # the host, pid and start time of the process that owns a train run: is it still alive?
RESUMED_INTO = "gf.resumed_into"  # on the run `mlflow run -P resume_run_id=ID` filed (ended, empty): ID
# orchestration: cached steps, parents, sweep jobs
CACHE_KEY = "gf.cache_key"  # a pipeline step's inputs (gfcore.orchestration.steps)
STEP_PREFIX = "gf.step."  # + step slug, on a parent: the step's run id
PIPELINE_REUSED = "gf.pipeline.reused"
BEST_RUN_ID, BEST_VARIANT, BEST_PARAMS = "best.run_id", "best.variant", "best.params"  # on parents
SWEEP_JOB, SWEEP_OVERRIDES, SWEEP_PID = "gf.sweep.job", "gf.sweep.overrides", "gf.sweep.pid"  # on sweep jobs
SWEEP_SPEC, SWEEP_METRIC = "gf.sweep.spec", "gf.sweep.metric"  # on a sweep parent
# A sweep job registers its version without an alias, tagged SWEEP_TRIAL_OF = the parent run id; when the sweep
# ends its best job's version becomes `candidate`, tagged SWEEP_BEST_OF (also a tag of that job's run).
SWEEP_TRIAL_OF, SWEEP_BEST_OF = "gf.sweep.trial_of", "gf.sweep.best_of"
COMPARE_DESIGN, COMPARE_VARIANTS = "gf.compare.design", "gf.compare.variants"  # on a compare parent
# the scheduler a run executes in
SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID = "slurm.job_id", "slurm.array_job_id", "slurm.array_task_id"
SLURM_NODE, SLURM_PARTITION, SLURM_STATE = "slurm.node", "slurm.partition", "slurm.state"
# wrapped scripts of old experiment folders (gfcore.legacy)
WRAP_TYPE, WRAPPED = "gf.wrap.type", "gf.wrapped"
WRAPPED_EXPERIMENT, WRAPPED_SCRIPT, WRAPPED_SOURCE_DIR = "gf.experiment", "gf.script", "gf.source_dir"
WRAPPED_ARGS = "gf.args"  # a param: the script's arguments
WRAPPED_PATTERN = "gf.script_pattern"  # the registry's pattern that chose the script (no default named)
SCRIPT_OUTPUT = "gf.script_output"  # a version tag: the file the script wrote
# challenges (run tags; verdict, run id and champion version are also the candidate version's tags)
CHALLENGE_MODEL = "challenge.model"
CHALLENGE_CANDIDATE_VERSION, CHALLENGE_CHAMPION_VERSION = "challenge.candidate_version", "challenge.champion_version"
CHALLENGE_VERDICT, CHALLENGE_REASONS, CHALLENGE_RUN_ID = "challenge.verdict", "challenge.reasons", "challenge.run_id"
CHALLENGE_BOOTSTRAP = "challenge.bootstrap"  # how the intervals were drawn, in words
# automation and GuardianFlow's own runs
AUTOMATION_TRIGGER, AUTOMATION_MODEL = "automation.trigger", "automation.model"  # on launched runs
AUTOMATION_OPTIMIZE_RUN_ID = "automation.optimize_run_id"  # on launched runs: the optimize run that launched them
AUTOMATION_PROMOTE_REFUSED_AT = "automation.promote_refused_at"  # a version tag (epoch s)
AUTOMATION_MODE, AUTOMATION_CONFIG = "automation.mode", "automation.config"  # on an optimize run
AUTOMATION_LAUNCHED = "automation.launched"  # on an optimize run, from the moment each is filed: "entry:run_id, ..."
ALERTS_DAYS, ALERTS_NOTIFICATION = "alerts.days", "alerts.notification"  # on an alerts run
ALERTS_NOTIFIED = "alerts.notified"  # "true" on an alerts run whose changes reached the webhook
OPEN_ALERT = "alerts.open_alert."  # + 0001, ...: one open alert of an alerts run as JSON (Grafana reads them)
FLEET_SCOPE = "fleet.scope"  # on a fleet report run

# --- registered-model tags (besides SITE_TAGS, TASK_TYPE and TASK_CLASSES)
MODEL_PATH = "gf.path"  # the slash form of the name: customer/region-plant/zone/task[/variant]

# --- registered-version tags (besides the headline figures, EVAL_SPLIT / EVAL_DATASET(_DIGEST), EXP_VERSION,
# DATA_HASH, SOURCE_RUN_ID, QUANT_METHOD and the challenge tags)
VERSION_RUN_ID, VERSION_ARCHITECTURE, VERSION_IMGSZ, VERSION_TASK = "run_id", "architecture", "imgsz", "task"
VERSION_BACKEND, VERSION_PRECISION = BACKEND_NAME, BACKEND_PRECISION  # one spelling with the runs' tags
# Versions registered before the spelling was one were tagged `backend` / `precision`: read, never written.
FORMER_VERSION_TAGS = {VERSION_BACKEND: "backend", VERSION_PRECISION: "precision"}
PROMOTED_AT, PROMOTED_FROM, PROMOTED_BY = "gf.promoted_at", "gf.promoted_from", "gf.promoted_by"
GATES, GATES_CHALLENGE_RUN_ID = "gf.gates", "gf.gates_challenge_run_id"
ROLLED_BACK_AT, ROLLED_BACK_FROM, ROLLED_BACK_BY = "gf.rolled_back_at", "gf.rolled_back_from", "gf.rolled_back_by"


# --- a scenario's own tags (`exp.tags`, e.g. purpose, ticket) go onto its runs and versions under their own names:
# never one of these namespaces (GuardianFlow's tags and metric prefixes above, MLflow's `mlflow.*`) nor one of
# these plain names (version tags, a dataset input's tag).
OWN_TAG_NAMESPACES = (
    "mlflow.", "gf.", "exp.", "site.", "task.", "model.", "data.", "source.", "backend.", "infer.", "tracking.",
    "quant.", "eval.", "best.", "slurm.", "challenge.", "automation.", "alerts.", "fleet.", "det.", "mot.", "sys.",
    "val.", "train.", "lr.", "delta.", "ratio.", "original.", "quantized.", "comparison.", "pipeline.", "sweep.",
    "compare.", "wrap.", "system/",
)
OWN_TAG_NAMES = (INPUT_IMAGES, VERSION_RUN_ID, VERSION_ARCHITECTURE, VERSION_IMGSZ, VERSION_TASK,
                 *FORMER_VERSION_TAGS.values())


def own_tag(name: str) -> str | None:
    """Why `name` cannot be a scenario's own tag (it is GuardianFlow's or MLflow's), or None when it can."""
    if name in OWN_TAG_NAMES:
        return f"{name!r} is a tag GuardianFlow writes itself"
    for space in OWN_TAG_NAMESPACES:
        if name.startswith(space):
            whose = "MLflow's" if space == "mlflow." else "GuardianFlow's"
            return f"{name!r} is in {whose} own namespace {space!r}"
    return None


def version_tag(tags: Mapping[str, str] | None, key: str) -> str | None:
    """A registered version's tag `key`, read under its former name where the version predates the rename."""
    tags = tags or {}
    if key in tags:
        return tags[key]
    former = FORMER_VERSION_TAGS.get(key)
    return tags.get(former) if former else None


# --- metric prefixes (docs/metrics.md)
DET, MOT, SYS = "det.", "mot.", "sys."  # detection, tracking, system figures
VAL, TRAIN, LR = "val.", "train.", "lr."  # per epoch: validation, training losses, learning rates
BEST = "best."  # a parent's best row
DELTA = "delta."  # a challenge: candidate minus champion (`delta.X.ci_low` / `.ci_high`: its 95 % interval)
# Suffixes of a challenge's difference: its 95 % interval and the smallest difference the data can show.
CI_LOW, CI_HIGH, MDE = ".ci_low", ".ci_high", ".mde"
RATIO = "ratio."  # a challenge: candidate / champion of a latency figure, with its interval
DET_OP = "det.op."  # detection at the site's operating confidence (site.conf_threshold)
ORIGINAL, QUANTIZED, COMPARISON = "original.", "quantized.", "comparison."  # a quant run
# an accuracy-aware quant run: det.mAP50 lost on the val split (fp32 IR - int8, as NNCF measured it), the operations
# NNCF quantized at first and those it reverted to float (named in the artifact quant/accuracy_control.json)
QUANT_ACCURACY_DROP, QUANT_QUANTIZED_LAYERS = "quant.accuracy_drop", "quant.quantized_layers"
QUANT_REVERTED_LAYERS = "quant.reverted_layers"
PIPELINE, SWEEP, COMPARE = "pipeline.", "sweep.", "compare."  # parents' own counts
FLEET, ALERTS, AUTOMATION = "fleet.", "alerts.", "automation."  # GuardianFlow's own runs
WRAP = "wrap."  # a wrapped script's exit code and duration
SYSTEM = "system/"  # MLflow's system-metrics time series

# --- headline metrics: the figures versions, parents, alerts and the fleet compare by
DET_MAP50, DET_MAP50_95 = "det.mAP50", "det.mAP50_95"
DET_PRECISION, DET_RECALL, DET_F1 = "det.precision", "det.recall", "det.f1"
SYS_LATENCY_P50_MS, SYS_LATENCY_P95_MS = "sys.latency_p50_ms", "sys.latency_p95_ms"
SYS_MODEL_SIZE_MB, SYS_THROUGHPUT_IPS = "sys.model_size_mb", "sys.throughput_ips"
# infer: the highest images/s over infer.batch_sizes (within site.latency_budget_ms) and its batch size
SYS_BEST_THROUGHPUT_IPS, SYS_BEST_BATCH_SIZE = "sys.best_throughput_ips", "sys.best_batch_size"
SYS_MODEL_PARAMS_M, SYS_MODEL_GFLOPS = "sys.model_params_m", "sys.model_gflops"
SYS_GPU_UTILIZATION_PCT = "sys.gpu_utilization_pct"
SYS_STARTUP_S = "sys.startup_s"  # process start to the run's first record
MOT_HOTA, MOT_IDF1 = "mot.hota", "mot.idf1"
