from gfcore.config import compose, to_typed
from gfcore.tracking import naming


def test_names_follow_the_scheme():
    cfg = to_typed(compose(["scenario=donghwa-entec_welding_ppe", "exp.version=v2"]))
    assert naming.experiment_name(cfg.site) == "donghwa-entec/busan-plant1/welding"
    assert naming.run_name(cfg, "train") == "ppe-yolo11l-train-v2"
    base = naming.registered_model_name(cfg)
    assert base == "donghwa-entec.busan-plant1.welding.ppe"
    assert naming.variant_model_name(base, "openvino", "int8") == "donghwa-entec.busan-plant1.welding.ppe__openvino_int8"


def test_demo_experiment():
    assert naming.experiment_name(to_typed(compose()).site) == "demo/local-plant1/yard"


def test_metric_names_are_sanitized():
    assert naming.sanitize_metric_name("metrics/mAP50-95(B)") == "metrics/mAP50-95_B_"
    assert naming.sanitize_metric_name("det.ap50_95.hard hat") == "det.ap50_95.hard hat"
    assert naming.sanitize_metric_name("det.ap50_95.안전모") == "det.ap50_95.안전모"  # MLflow takes Unicode letters
    assert naming.sanitize_metric_name("det.ap50_95.a+b=c") == "det.ap50_95.a_b_c"
    assert naming.sanitize_metric_name("train//loss") == "train__loss"


def test_variant_runs_and_logged_models_say_which_variant():
    cfg = to_typed(compose(["scenario=smoke", "backend=openvino_int8"]))
    assert naming.run_name(cfg, "infer") == "ppe-yolov8n-infer-openvino_int8-v1"
    assert naming.run_name(cfg, "quant") == "ppe-yolov8n-quant-openvino_int8-v1"
    assert naming.run_name(cfg, "pipeline") == "ppe-yolov8n-pipeline-v1"  # a parent covers every backend
    assert naming.logged_model_name(cfg) == "ppe-yolov8n-openvino_int8"
