"""`full_pipeline` on the smoke scenario: the run tree and the run ids handed along, a rerun that reuses every
step, a failing step and its resume, and bad input refused before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from tests.conftest import artifact_paths, run_entrypoint, run_project, runs_of

FAST = ["scenario=smoke", "train.epochs=1", "tracking.system_metrics=false"]


def _pipeline(uri, tmp_path, *overrides, expect_rc=0, audit=None):
    proc = run_entrypoint(["guardianflow.full_pipeline", *FAST, *overrides], uri, tmp_path, timeout=900, audit=audit)
    assert proc.returncode == expect_rc, proc.stderr[-3000:]
    return proc


def _by_type(runs, exp_type):
    return [r for r in runs if r.data.tags.get("exp.type") == exp_type]


def test_run_tree_and_a_rerun_that_reuses_every_step(mlflow_store, tmp_path):
    proc = _pipeline(mlflow_store, tmp_path, "pipeline.quant_backends=[openvino_fp32]")
    runs = runs_of(mlflow_store)
    [parent] = _by_type(runs, "pipeline")
    [train] = _by_type(runs, "train")
    [quant] = _by_type(runs, "quant")
    infers = _by_type(runs, "infer")
    assert parent.info.status == "FINISHED" and parent.info.run_name == "ppe-yolov8n-pipeline-v1"
    assert len(runs) == 5 and len(infers) == 2
    for child in (train, quant, *infers):
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id and child.info.status == "FINISHED"
        assert child.data.tags["gf.cache_key"]
    # Each step got the run id of the step it builds on.
    assert quant.data.tags["source.run_id"] == train.info.run_id and quant.data.tags["backend.name"] == "openvino"
    assert {i.data.tags["source.run_id"] for i in infers} == {train.info.run_id, quant.info.run_id}
    assert {i.data.tags["backend.name"] for i in infers} == {"pytorch", "openvino"}
    tags = parent.data.tags
    assert tags["gf.step.train"] == train.info.run_id and tags["gf.step.quant_openvino_fp32"] == quant.info.run_id
    assert tags["gf.pipeline.reused"] == "none" and parent.data.metrics["pipeline.steps"] == 4
    paths = artifact_paths(mlflow.MlflowClient(), parent.info.run_id)
    assert {"summary/pipeline_summary.csv", "summary/pipeline_summary.json", "plots/map_vs_latency.png"} <= paths
    summary = Path(mlflow.artifacts.download_artifacts(run_id=parent.info.run_id,
                                                       artifact_path="summary/pipeline_summary.csv",
                                                       dst_path=str(tmp_path))).read_text().splitlines()
    assert summary[0].startswith("variant,det.mAP50,det.mAP50_95,sys.latency_p50_ms,sys.latency_p95_ms,"
                                 "sys.model_size_mb")
    assert summary[1].startswith("pytorch_fp32,") and "demo.local-plant1.yard.ppe,1," in summary[1]
    assert summary[2].startswith("openvino_fp32,") and "demo.local-plant1.yard.ppe__openvino_fp32,1," in summary[2]
    _check_records(parent, train, quant, infers, proc.stdout, tmp_path)

    # The same command again: every step is reused, nothing is trained or exported again, and the parent decides
    # each reuse itself: no `mlflow run` child process is started.
    audit = tmp_path / "audit.json"
    _pipeline(mlflow_store, tmp_path / "again", "pipeline.quant_backends=[openvino_fp32]", audit=audit)
    seen = json.loads(audit.read_text())
    steps = [p for p in seen["processes"] if "guardianflow." in " ".join(p) or ("mlflow" in " ".join(p) and "run" in p)]
    assert not steps, steps  # (the git and uname probes some libraries make are not steps)
    assert not seen["imports"], f"a cached rerun needs no deep-learning runtime or plotting: {seen['imports']}"
    runs = runs_of(mlflow_store)
    assert len(runs) == 6 and len(_by_type(runs, "train")) == 1
    second = _by_type(runs, "pipeline")[-1]
    assert second.info.status == "FINISHED"
    assert second.data.tags["gf.pipeline.reused"] == "train, quant openvino_fp32, infer pytorch_fp32, infer openvino_fp32"
    assert second.data.tags["gf.step.train"] == train.info.run_id
    assert second.data.metrics["pipeline.steps_reused"] == 4

    # A changed training setting makes a new train step, and everything after it.
    _pipeline(mlflow_store, tmp_path / "changed", "pipeline.quant_backends=[]", "train.lr0=0.003")
    third = _by_type(runs_of(mlflow_store), "pipeline")[-1]
    assert third.data.tags["gf.pipeline.reused"] == "none" and third.data.tags["gf.step.train"] != train.info.run_id


def _check_records(parent, train, quant, infers, stdout, tmp_path):
    """What a person reads in the MLflow UI: names per variant, the parent's table and best figures, the
    experiment's kind, one evaluation basis across versions, figures on every logged model."""
    import json

    client = mlflow.MlflowClient()
    assert sorted(r.info.run_name for r in infers) == ["ppe-yolov8n-infer-openvino_fp32-v1",
                                                       "ppe-yolov8n-infer-pytorch_fp32-v1"]
    assert quant.info.run_name == "ppe-yolov8n-quant-openvino_fp32-v1"
    # The parent's description holds the result table and names the best; its best row is in the runs table.
    note = parent.data.tags["mlflow.note.content"]
    assert "| variant | mAP50 | mAP50-95 | p50 ms | p95 ms | size MB | HOTA | registered model | version |" in note
    assert "Most accurate: **" in note and "demo.local-plant1.yard.ppe__openvino_fp32" in note
    best = mlflow.get_run(parent.data.tags["best.run_id"]).data.metrics
    assert parent.data.tags["best.variant"] in note and f"**{parent.data.tags['best.variant']}**" in note
    assert best["det.mAP50_95"] == max(i.data.metrics["det.mAP50_95"] for i in infers)
    assert parent.data.metrics["best.det.mAP50"] == pytest.approx(best["det.mAP50"])
    assert parent.data.metrics["best.sys.latency_p95_ms"] == pytest.approx(best["sys.latency_p95_ms"])
    table = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path="summary/pipeline_summary_table.json",
        dst_path=str(tmp_path / "table"))).read_text())
    assert table["columns"][:3] == ["variant", "det.mAP50", "det.mAP50_95"] and len(table["data"]) == 2
    # The terminal shows the same table.
    assert "Pipeline results" in stdout and "openvino_fp32" in stdout and "p50 ms" in stdout
    # The parent claims no backend: it covers every one.
    assert not any(k.startswith("backend.") for k in parent.data.params)
    experiment = mlflow.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "demo/local-plant1/yard" in experiment.tags["mlflow.note.content"]
    # One evaluation basis: the base model's version and the variant's carry the same split and digest.
    base = client.get_model_version("demo.local-plant1.yard.ppe", "1")
    variant = client.get_model_version("demo.local-plant1.yard.ppe__openvino_fp32", "1")
    for key in ("eval.split", "eval.dataset_digest"):
        assert base.tags[key] == variant.tags[key] == train.data.tags[key], key
    # Every logged model is named after what it is and carries its det.* and latency.
    for version, name in ((base, "ppe-yolov8n-pytorch_fp32"), (variant, "ppe-yolov8n-openvino_fp32")):
        logged = mlflow.get_logged_model(version.source.split("/")[-1])
        keys = {m.key for m in logged.metrics}
        assert logged.name == name and {"det.mAP50", "det.mAP50_95", "sys.latency_p50_ms"} <= keys, name


def test_a_failing_step_stops_the_pipeline_and_a_rerun_resumes(mlflow_store, tmp_path):
    from tests.mot.conftest import gt_line, write_frames, write_seq

    seqs = tmp_path / "seqs"
    write_seq(seqs, None, "cam1", [gt_line(1, 1, 10), gt_line(14, 1, 12)], None, length=10)  # frame 14 > seqLength
    write_frames(seqs / "cam1", 10)
    overrides = ["pipeline.quant_backends=[]", f"data.sequences_dir={seqs}"]
    proc = _pipeline(mlflow_store, tmp_path, *overrides, expect_rc=2)
    assert "step infer pytorch_fp32 failed" in proc.stderr and "frame 14 is outside the sequence" in proc.stderr
    runs = runs_of(mlflow_store)
    [parent] = _by_type(runs, "pipeline")
    [train] = _by_type(runs, "train")
    # The step failed before its run was GuardianFlow's: MLflow's run for it is FAILED all the same.
    [infer] = [r for r in runs if r.data.tags.get("mlflow.project.entryPoint") == "infer"]
    assert infer.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert parent.info.status == "FAILED" and "step infer pytorch_fp32 failed" in parent.data.tags["gf.error"]
    assert train.info.status == "FINISHED" and infer.info.status == "FAILED"

    # Fix the ground truth and run the same command again, as an MLflow Project: train is reused.
    write_seq(tmp_path / "fixed", None, "cam1", [gt_line(1, 1, 10), gt_line(4, 1, 12)], None, length=10)
    (seqs / "cam1" / "gt" / "gt.txt").write_text((tmp_path / "fixed" / "cam1" / "gt" / "gt.txt").read_text())
    proc = run_project("full_pipeline", mlflow_store, {
        "scenario": "smoke", "overrides": " ".join([*FAST[1:], *overrides, f"hydra.run.dir={tmp_path}/resume"])})
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_of(mlflow_store)
    resumed = _by_type(runs, "pipeline")[-1]
    assert resumed.info.status == "FINISHED" and resumed.data.tags["mlflow.project.entryPoint"] == "full_pipeline"
    assert resumed.data.tags["gf.pipeline.reused"] == "train" and len(_by_type(runs, "train")) == 1
    new_infer = _by_type(runs, "infer")[-1]
    assert new_infer.info.status == "FINISHED" and new_infer.data.tags["mlflow.parentRunId"] == resumed.info.run_id
    assert new_infer.data.tags["source.run_id"] == train.info.run_id


@pytest.mark.parametrize("override, message", [
    ("pipeline.quant_backends=[openvino_int9]", "Could not find 'backend/openvino_int9'"),
    ("pipeline.quant_backends=[tensorrt_fp16]", "TensorRT"),
])
def test_bad_backends_start_nothing(mlflow_store, tmp_path, override, message):
    import torch

    if "tensorrt" in override and torch.cuda.is_available():
        pytest.skip("this machine has an NVIDIA GPU")
    proc = _pipeline(mlflow_store, tmp_path, override, expect_rc=2)
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert runs_of(mlflow_store) == []
