"""`sweep`: a Hydra multirun of train under one parent run, with the grid and Optuna sweepers and the basic,
joblib and submitit launchers, against a temporary sqlite store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow

from tests.conftest import artifact_paths, run_entrypoint, run_project, runs_of

FAST = ["scenario=smoke", "train.epochs=1", "registry.register=false", "tracking.system_metrics=false"]


def _tree(uri):
    runs = runs_of(uri)
    [parent] = [r for r in runs if r.data.tags["exp.type"] == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def _sweep(uri, tmp_path, *overrides, timeout=600):
    proc = run_entrypoint(["guardianflow.sweep", *FAST, *overrides, f"hydra.sweep.dir={tmp_path}/multirun"], uri,
                          tmp_path, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _tree(uri)


def test_grid_sweep_with_a_failing_child(mlflow_store, tmp_path):
    parent, children = _sweep(mlflow_store, tmp_path, "train.lr0=0.001,0.01", "model=yolov8n,yolo11s")
    assert parent.info.status == "FINISHED" and parent.info.run_name == "ppe-yolov8n-sweep-v1"
    assert parent.data.tags["exp.design"] == "sweep" and parent.data.tags["gf.sweep.metric"] == "det.mAP50_95"
    assert len(children) == 4
    finished = [c for c in children if c.info.status == "FINISHED"]
    failed = [c for c in children if c.info.status == "FAILED"]
    assert len(finished) == 2 and len(failed) == 2  # yolo11s.pt is not on disk: those jobs fail, the sweep goes on
    assert all("not on disk" in c.data.tags["gf.error"] for c in failed)
    assert {c.data.params["train.lr0"] for c in finished} == {"0.001", "0.01"}
    assert all(c.data.tags["exp.type"] == "train" and c.data.tags["exp.design"] == "sweep" for c in finished)
    assert all(c.info.run_name == f"ppe-yolov8n-train-v1-t{c.data.tags['gf.sweep.job']}" for c in finished)

    best = mlflow.get_run(parent.data.tags["best.run_id"])
    assert best.info.run_id in {c.info.run_id for c in finished}
    assert parent.data.metrics["best.det.mAP50_95"] == max(c.data.metrics["det.mAP50_95"] for c in finished)
    assert parent.data.tags["best.params"] == f"train.lr0={best.data.params['train.lr0']} model=yolov8n"
    assert parent.data.metrics["sweep.children"] == 4 and parent.data.metrics["sweep.failed"] == 2
    paths = artifact_paths(mlflow.MlflowClient(), parent.info.run_id)
    assert {"sweep/sweep_results.csv", "sweep/sweep_results.json", "plots/sweep_chart.png"} <= paths
    table = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path="sweep/sweep_results.json", dst_path=str(tmp_path))).read_text())
    assert sorted(r["status"] for r in table) == ["FAILED", "FAILED", "FINISHED", "FINISHED"]
    # The parent headlines its result: the table in its description naming the best, best.* figures.
    note = parent.data.tags["mlflow.note.content"]
    assert "### Sweep over train.lr0=0.001,0.01 model=yolov8n,yolo11s" in note and "2 failed" in note
    assert f"(run {best.info.run_id})" in note and "| FAILED |" in note
    assert parent.data.metrics["best.det.mAP50"] == best.data.metrics["det.mAP50"]
    assert "sweep/sweep_results_table.json" in paths


def test_joblib_runs_jobs_in_two_processes_on_one_store(mlflow_store, tmp_path):
    parent, children = _sweep(mlflow_store, tmp_path, "train.lr0=0.001,0.01", "launcher=joblib")
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert all(c.info.status == "FINISHED" for c in children)
    pids = {c.data.tags["gf.sweep.pid"] for c in children}
    assert len(pids) == 2 and str(os.getpid()) not in pids


def test_submitit_local_launcher(mlflow_store, tmp_path):
    parent, children = _sweep(mlflow_store, tmp_path, "train.lr0=0.001,0.01", "launcher=submitit_local")
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert all(c.info.status == "FINISHED" for c in children)


def test_optuna_sweep_under_mlflow_run(mlflow_store, tmp_path):
    proc = run_project("sweep", mlflow_store, {
        "scenario": "smoke",
        "overrides": " ".join([*FAST[1:], "sweep=optuna", "hydra.sweeper.n_trials=2",
                               f"hydra.sweep.dir={tmp_path}/multirun"])})
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent, children = _tree(mlflow_store)
    assert parent.data.tags["mlflow.project.entryPoint"] == "sweep" and parent.info.status == "FINISHED"
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert "train.lr0=interval(0.0005, 0.01)" in parent.data.tags["gf.sweep.spec"]
    lrs = {float(c.data.params["train.lr0"]) for c in children}
    assert len(lrs) == 2 and all(0.0005 <= lr <= 0.01 for lr in lrs)
    assert parent.data.tags["best.run_id"] in {c.info.run_id for c in children}


def test_only_the_best_trial_becomes_candidate(mlflow_store, tmp_path):
    """Sweep jobs register without an alias (tagged gf.sweep.trial_of); when the sweep ends, the best job's version
    (by sweep.metric) becomes `candidate`, tagged gf.sweep.best_of, and the previous candidate keeps its version.
    A sweep in which no job finished moves nothing. (Runs and versions made directly: no training.)"""
    from gfcore.config import compose, to_typed
    from gfcore.core.vocabulary import PARENT_TAG, SWEEP_BEST_OF, SWEEP_TRIAL_OF
    from gfcore.orchestration import sweep
    from gfcore.registry.register import register_model

    cfg = to_typed(compose(["scenario=smoke"]))
    client = mlflow.MlflowClient()
    exp = client.create_experiment("demo/local-plant1/yard")
    name = "demo.local-plant1.yard.ppe"
    model = tmp_path / "model"
    model.mkdir()
    before = client.create_run(exp).info.run_id
    register_model(model.as_uri(), name, cfg, before, {})  # v1, the candidate before the sweep

    def swept(values, status="FINISHED"):
        parent = client.create_run(exp, tags={"exp.type": "sweep"}).info.run_id
        for n, value in enumerate(values):
            run = client.create_run(exp, tags={PARENT_TAG: parent, "gf.sweep.job": str(n)}).info.run_id
            client.log_metric(run, "det.mAP50_95", value)
            client.set_terminated(run, status)
            reg = register_model(model.as_uri(), name, cfg, run, {SWEEP_TRIAL_OF: parent}, alias=None)
            assert reg.alias is None
        return parent, sweep.summarise(parent, "det.mAP50_95", "maximize", tmp_path / parent, set())

    failed, result = swept([0.4, 0.9], status="FAILED")
    assert result["best"] is None and client.get_run(failed).info.status == "FAILED"
    assert {k: str(v) for k, v in client.get_registered_model(name).aliases.items()} == {"candidate": "1"}

    parent, result = swept([0.2, 0.5, 0.3])  # versions 4, 5, 6
    best = client.get_run(result["best"]["run_id"])
    assert best.data.metrics["det.mAP50_95"] == 0.5 and best.data.tags[SWEEP_BEST_OF] == parent
    assert {k: str(v) for k, v in client.get_registered_model(name).aliases.items()} == {"candidate": "5"}
    versions = {str(v.version): v for v in client.search_model_versions(f"name='{name}'")}
    assert versions["5"].tags[SWEEP_BEST_OF] == parent and best.data.tags["gf.registered_version"] == "5"
    assert all(SWEEP_BEST_OF not in versions[v].tags for v in ("1", "4", "6"))
    assert f"{name} version 5 is now `candidate`." in client.get_run(parent).data.tags["mlflow.note.content"]


def test_an_invalid_sweep_starts_nothing(mlflow_store, tmp_path):
    proc = run_entrypoint(["guardianflow.sweep", *FAST, "train.lr0=range("], mlflow_store, tmp_path, timeout=120)
    assert proc.returncode == 2 and "the override 'train.lr0=range(' is not a valid Hydra override" in proc.stderr
    assert runs_of(mlflow_store) == []
