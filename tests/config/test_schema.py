"""Every preset composes and validates; typos, wrong types and bad names fail at composition."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from gfcore.config import compose, split_overrides, to_typed
from gfcore.config.schema import BackendName, Config, DataKind, TaskType
from gfcore.core.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
SCENARIOS = sorted(p.stem for p in (CONF / "scenario").glob("*.yaml"))


def test_there_are_the_required_presets():
    assert {"demo", "smoke", "donghwa-entec_welding_ppe", "sampyo_bct_ppe"} <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_preset_composes_and_validates(scenario):
    cfg = to_typed(compose([f"scenario={scenario}"]))
    assert isinstance(cfg, Config)
    assert cfg.exp.scenario == scenario, "a preset names itself in exp.scenario (tag gf.scenario)"
    assert cfg.task.classes and cfg.site.customer and cfg.model.imgsz % 32 == 0


TASKS = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def test_there_are_the_required_task_and_model_presets():
    assert {t.value for t in TaskType} <= set(TASKS), "one task preset per task type"
    assert {"yolov8n", "yolov8s", "yolo11n", "yolo11s", "yolo11m", "yolo11l"} <= set(MODELS)


@pytest.mark.parametrize("task", TASKS)
def test_every_task_preset_composes_and_validates(task):
    cfg = to_typed(compose(["scenario=smoke", f"task={task}"]))
    assert cfg.task.type.value == task and cfg.task.classes
    assert cfg.task.safety_classes and set(cfg.task.safety_classes) <= set(cfg.task.classes)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_preset_composes_and_validates(model):
    cfg = to_typed(compose(["scenario=smoke", f"model={model}"]))
    assert cfg.model.architecture.split(".")[0] == model
    if cfg.model.architecture.endswith(".yaml"):  # built from Ultralytics' yaml: known to it, offline
        from ultralytics.nn.tasks import yaml_model_load

        assert yaml_model_load(cfg.model.architecture)["scale"] == model[-1]


def test_default_is_the_demo_scenario():
    cfg = to_typed(compose())
    assert (cfg.site.customer, cfg.site.region, cfg.site.plant, cfg.site.zone) == ("demo", "local", "plant1", "yard")
    assert cfg.task.type == TaskType.ppe and cfg.task.classes == ["helmet", "vest"]
    assert cfg.model.architecture == "yolov8n.yaml" and cfg.data.kind == DataKind.demo
    assert cfg.backend.name == BackendName.pytorch and cfg.backend.device == "cpu"
    assert cfg.exp.scenario == "demo"


def test_seed_sites_are_described():
    dh = to_typed(compose(["scenario=donghwa-entec_welding_ppe"]))
    assert (dh.site.customer, dh.site.region, dh.site.plant, dh.site.zone) == ("donghwa-entec", "busan", "plant1",
                                                                               "welding")
    assert dh.task.classes == ["headgear", "harness", "hook"]
    assert dh.model.architecture.startswith("yolo11l") and dh.model.imgsz == 1280
    sp = to_typed(compose(["scenario=sampyo_bct_ppe"]))
    assert (sp.site.customer, sp.site.region, sp.site.zone) == ("sampyo", "gimhae", "bct")
    assert sp.task.classes == ["helmet", "vest"] and sp.model.architecture.startswith("yolo11s")


def test_overrides_use_ultralytics_key_names():
    cfg = to_typed(compose(["scenario=smoke", "train.epochs=7", "train.lr0=0.05", "train.optimizer=SGD",
                            "model.imgsz=96", "model.architecture=yolo11n.yaml", "+train.extra.mixup=0.1"]))
    assert (cfg.train.epochs, cfg.train.lr0, cfg.train.optimizer) == (7, 0.05, "SGD")
    assert (cfg.model.imgsz, cfg.model.architecture, cfg.train.extra) == (96, "yolo11n.yaml", {"mixup": 0.1})


def test_unknown_scenario_lists_the_valid_ones():
    with pytest.raises(HydraException) as err:
        compose(["scenario=nope"])
    assert "Available options in 'scenario'" in str(err.value) and "smoke" in str(err.value)


def test_unknown_group_option_fails():
    with pytest.raises(HydraException, match="Available options in 'model'"):
        compose(["model=yolov99"])


@pytest.mark.parametrize("override", ["train.epochs=abc", "model.imgsz=big", "train.cos_lr=maybe",
                                      "task.type=juggling"])
def test_wrong_type_fails_at_composition(override):
    with pytest.raises((HydraException, OmegaConfBaseException)):
        compose(["scenario=smoke", override])


def test_unknown_key_fails_at_composition():
    with pytest.raises((HydraException, OmegaConfBaseException), match="foo"):
        compose(["scenario=smoke", "train.foo=1"])


@pytest.mark.parametrize("override", ["site.zone=a/b", "site.customer=acme:1", "site.plant='plant 1'",
                                      "site.region=busan.north", "task.classes=[helmet,helmet]"])
def test_names_mlflow_would_reject_fail_before_any_run(override):
    with pytest.raises(ConfigError):
        to_typed(compose(["scenario=smoke", override]))


@pytest.mark.parametrize("override, message", [
    ("infer.batch_sizes=[]", "infer.batch_sizes"), ("infer.batch_sizes=[1,0]", "infer.batch_sizes"),
    ("infer.split=holdout", "infer.split"), ("latency.runs=0", "latency.runs"),
    ("registry.eval_split=holdout", "registry.eval_split"),
    ("infer.tracking.benchmark=MOT99", "infer.tracking.benchmark"), ("infer.conf=1.5", "infer.conf"),
    ("data.demo.sequence_frames=1", "sequence_frames"),
    ("challenge.resamples=99", "at least 100 bootstrap resamples"),
    ("site.conf_threshold=0", "strictly between 0 and 1"), ("site.conf_threshold=1.0", "strictly between 0 and 1"),
    ("task.safety_classes=[helmet,hardhat]", r"\['hardhat'\], which task.classes does not have: choose among "
                                              r"\['helmet', 'vest'\]"),
    ("site.gates=['det.op.recall.helmett>=0.9']", "Did you mean 'det.op.recall.helmet'"),
])
def test_bad_infer_settings_fail_before_any_run(override, message):
    with pytest.raises(ConfigError, match=message):
        to_typed(compose(["scenario=smoke", override]))


def test_infer_tracker_must_be_known():
    with pytest.raises((HydraException, OmegaConfBaseException), match="sort"):
        compose(["scenario=smoke", "infer.tracking.tracker=deepsort"])


@pytest.mark.parametrize("override, target", [
    ("sweep=optuna", "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"),
    ("launcher=joblib", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
    ("launcher=submitit_local", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"),
    # GuardianFlow's own (hydra_plugins/guardianflow_launchers): submitit's SLURM launcher with watched jobs,
    # and Hydra's Ray launcher's jobs with their environment passed to the workers.
    ("launcher=submitit_slurm", "hydra_plugins.guardianflow_launchers.slurm.WatchedSlurmLauncher"),
    ("launcher=ray", "hydra_plugins.guardianflow_launchers.ray_launcher.RayJobsLauncher"),
])
def test_sweep_and_launcher_presets_compose(override, target):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from gfcore.config.compose import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", overrides=["scenario=smoke", override], return_hydra_config=True)
    node = cfg.hydra.sweeper if override.startswith("sweep") else cfg.hydra.launcher
    assert node._target_ == target
    assert to_typed(compose(["scenario=smoke", override])).sweep.metric == "det.mAP50_95"


def test_yolo_data_needs_a_path():
    with pytest.raises((ConfigError, OmegaConfBaseException)):
        to_typed(compose(["scenario=smoke", "data=yolo"]))


@pytest.mark.parametrize("raw, expected", [
    (["scenario=demo"], ["scenario=demo"]),
    (["scenario=demo", ""], ["scenario=demo"]),
    (["train.epochs=1 train.batch=4"], ["train.epochs=1", "train.batch=4"]),
    (["  a=1   b=2 "], ["a=1", "b=2"]),
    (["site.zone='north gate' a=1"], ["site.zone='north gate'", "a=1"]),
    (["+train.extra.x=[1, 2] a=1"], ["+train.extra.x=[1, 2]", "a=1"]),
])
def test_split_overrides(raw, expected):
    assert split_overrides(raw) == expected


@pytest.mark.parametrize("overrides, message", [
    (["backend=openvino_int8", "backend.method=dynamic"], "openvino_int8 has no dynamic quantization; backend=onnx_int8"),
    (["backend=onnx_fp32", "backend.method=dynamic"], "onnx_fp32 has no dynamic quantization; backend=onnx_int8"),
    (["backend=onnx_int8", "backend.max_accuracy_drop=0.01"],
     "onnx_int8 has no accuracy-aware quantization; backend=openvino_int8 has"),
    (["backend=openvino_fp16", "backend.max_accuracy_drop=0.01"], "backend=openvino_int8 has"),
    (["backend=tensorrt_int8", "backend.max_accuracy_drop=0.01"], "backend=openvino_int8 has"),
    (["backend=openvino_int8", "backend.max_accuracy_drop=1.5"], "absolute value in [0, 1)"),
    (["backend=openvino_int8", "backend.calibration_method=entropy"],
     "openvino_int8 cannot calibrate with it (it offers minmax, mean_minmax, mean_quantile, histogram); "
     "backend=onnx_int8 can"),
    (["backend=onnx_int8", "backend.calibration_method=histogram"], "backend=openvino_int8 can"),
    (["backend=tensorrt_int8", "backend.calibration_method=minmax"],
     "tensorrt_int8 cannot calibrate with it; backend=onnx_int8 and backend=openvino_int8 can"),
    (["backend=onnx_int8", "backend.method=dynamic", "backend.calibration_method=entropy"],
     "dynamic quantization has no calibration"),
])
def test_quantization_settings_a_backend_cannot_honour_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        to_typed(compose(["scenario=smoke", *overrides]))


def test_quantization_settings_resolve_to_what_the_runtime_runs():
    def backend(*overrides):
        return to_typed(compose(["scenario=smoke", *overrides])).backend

    assert backend("backend=onnx_int8").calibration.value == "minmax"  # ONNX Runtime's default
    assert backend("backend=openvino_int8").calibration.value == "mean_minmax"  # NNCF's default
    assert backend("backend=onnx_int8", "backend.calibration_method=percentile").calibration.value == "percentile"
    assert backend("backend=onnx_int8", "backend.method=dynamic").calibration is None
    assert backend("backend=onnx_fp32").calibration is None
    b = backend("backend=openvino_int8", "backend.max_accuracy_drop=0.01", "backend.calibration_method=minmax")
    assert (b.max_accuracy_drop, b.calibration.value) == (0.01, "minmax")
    with pytest.raises((HydraException, OmegaConfBaseException)):
        backend("backend=onnx_int8", "backend.calibration_method=kl")
