"""train registers its best weights as a servable pyfunc model with alias `candidate`."""

from __future__ import annotations

import mlflow

from gfcore.config import compose, to_typed
from gfcore.jobs.train import train
from tests.conftest import runs_of
from tests.registry.conftest import NAME


def test_train_registers_a_candidate(trained_store):
    client = mlflow.MlflowClient()
    rm = client.get_registered_model(NAME)
    assert {k: str(v) for k, v in rm.aliases.items()} == {"candidate": "1"}
    assert rm.tags["gf.path"] == "demo/local-plant1/yard/ppe"
    assert {rm.tags[k] for k in ("site.customer", "site.region", "site.plant", "site.zone")} == \
        {"demo", "local", "plant1", "yard"}
    assert rm.tags["task.type"] == "ppe" and rm.tags["task.classes"] == "helmet,vest"

    [run] = runs_of(trained_store)
    mv = client.get_model_version(NAME, "1")
    assert mv.run_id == run.info.run_id
    for key, value in {"architecture": "yolov8n", "imgsz": "64", "task": "ppe", "exp.version": "v1",
                       "data.hash": run.data.tags["data.hash"], "run_id": run.info.run_id}.items():
        assert mv.tags[key] == value, key
    assert abs(float(mv.tags["det.mAP50"]) - run.data.metrics["det.mAP50"]) < 1e-6
    assert abs(float(mv.tags["det.mAP50_95"]) - run.data.metrics["det.mAP50_95"]) < 1e-6
    assert run.data.tags["gf.registered_model"] == NAME and run.data.tags["gf.registered_version"] == "1"


def test_the_logged_model_has_signature_params_and_input_example(trained_store):
    info = mlflow.models.get_model_info(f"models:/{NAME}/1")
    assert [c["name"] for c in info.signature.inputs.to_dict()] == ["image"]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == \
        ["image", "class_id", "class_name", "confidence", "x1", "y1", "x2", "y2"]
    assert {p.name: p.default for p in info.signature.params} == {"conf": 0.25, "iou": 0.7}
    assert info.saved_input_example_info is not None


def test_registration_can_be_switched_off(mlflow_store):
    train(to_typed(compose(["scenario=smoke", "train.epochs=1", "registry.register=false"])))
    assert mlflow.MlflowClient().search_registered_models() == []
    [run] = runs_of(mlflow_store)
    assert "gf.registered_model" not in run.data.tags and run.info.status == "FINISHED"
