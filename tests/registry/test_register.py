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


def test_a_sweep_job_registered_from_its_journal_after_its_sweep_chose_it(trained_store, tmp_path):
    """A sweep's job registers without an alias; one whose journal reaches the server only after its sweep ended
    (an outage) was tagged best by the sweep, and becomes `candidate` when its registration is sent."""
    from gfcore.config.compose import to_container
    from gfcore.core.vocabulary import SWEEP_BEST_OF, SWEEP_TRIAL_OF
    from gfcore.data.dataset import resolve_dataset
    from gfcore.registry.register import dataset_record, replay_log_and_register

    client = mlflow.MlflowClient()
    cfg = to_typed(compose(["scenario=smoke", "train.epochs=1"]))
    [trained] = runs_of(trained_store)
    weights = client.download_artifacts(trained.info.run_id, "weights/best.pt", str(tmp_path))
    kwargs = {"weights": weights, "imgsz": cfg.model.imgsz, "device": "cpu", "name": NAME, "cfg": to_container(cfg),
              "figures": {"det.mAP50": 0.1}, "dataset": dataset_record(resolve_dataset(cfg.data, cfg.task)),
              "alias": None}
    before = {k: str(v) for k, v in client.get_registered_model(NAME).aliases.items()}
    chosen = {}
    try:
        for best in (False, True):
            job = client.create_run(trained.info.experiment_id, tags={SWEEP_BEST_OF: "sweep-1"} if best else {})
            with mlflow.start_run(run_id=job.info.run_id):  # the journal sends with the run active
                reg = replay_log_and_register(job.info.run_id, version_tags={SWEEP_TRIAL_OF: "sweep-1"}, **kwargs)
            chosen[best] = client.get_model_version(NAME, reg.version)
        assert not chosen[False].aliases and SWEEP_BEST_OF not in chosen[False].tags, "not chosen: no alias"
        assert chosen[True].tags[SWEEP_BEST_OF] == "sweep-1" and chosen[True].tags[SWEEP_TRIAL_OF] == "sweep-1"
        assert str(client.get_registered_model(NAME).aliases["candidate"]) == str(chosen[True].version)
    finally:
        client.set_registered_model_alias(NAME, "candidate", before["candidate"])


def test_registration_can_be_switched_off(mlflow_store):
    train(to_typed(compose(["scenario=smoke", "train.epochs=1", "registry.register=false"])))
    assert mlflow.MlflowClient().search_registered_models() == []
    [run] = runs_of(mlflow_store)
    assert "gf.registered_model" not in run.data.tags and run.info.status == "FINISHED"
