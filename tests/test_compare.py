"""`compare` on the smoke scenario: each design (architectures, backends, datasets, existing run ids) under
one parent run with a summary, a chart and the best variant tagged, and bad designs refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from tests.conftest import artifact_paths, run_entrypoint, runs_of

FAST = ["scenario=smoke", "train.epochs=1", "tracking.system_metrics=false", "infer.batch_sizes=[1]",
        "latency.runs=3"]


def _train_run_id(uri) -> str:
    return [r for r in runs_of(uri) if r.data.tags["exp.type"] == "train"][0].info.run_id


def _compare(uri, tmp_path, *overrides, expect_rc=0):
    proc = run_entrypoint(["guardianflow.compare", *FAST, *overrides], uri, tmp_path, timeout=900)
    assert proc.returncode == expect_rc, proc.stderr[-3000:]
    return proc


def _parent(uri):
    return [r for r in runs_of(uri) if r.data.tags.get("exp.type") == "compare"][-1]


def _summary(parent, tmp_path):
    path = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="summary/compare_summary.json",
                                               dst_path=str(tmp_path))
    return json.loads(Path(path).read_text())


def _children(uri, parent):
    return [r for r in runs_of(uri) if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


def test_architectures(trained_store, tmp_path):
    proc = _compare(trained_store, tmp_path, "compare.architectures=[yolov8n,yolo11n]")
    parent = _parent(trained_store)
    assert parent.info.status == "FINISHED" and parent.data.tags["exp.design"] == "comparison"
    assert parent.data.tags["gf.compare.design"] == "architectures"
    children = _children(trained_store, parent)
    trains = [c for c in children if c.data.tags["exp.type"] == "train"]
    infers = [c for c in children if c.data.tags["exp.type"] == "infer"]
    assert sorted(c.data.tags["model.architecture"] for c in trains) == ["yolo11n", "yolov8n"]
    assert {c.data.tags["source.run_id"] for c in infers} == {c.info.run_id for c in trains}
    # Otherwise identical settings: only the architecture differs between the two trainings.
    # (`overrides` is the MLflow Project parameter that carried the choice.)
    a, b = (c.data.params for c in trains)
    assert {k for k in a if a[k] != b.get(k)} == {"model.architecture", "overrides"}
    rows = _summary(parent, tmp_path)
    assert [r["variant"] for r in rows] == ["yolov8n", "yolo11n"]
    assert all(r["exp.type"] == "infer" and r["sys.latency_p50_ms"] > 0 for r in rows)
    assert parent.data.tags["best.run_id"] in {r["run_id"] for r in rows}
    paths = artifact_paths(mlflow.MlflowClient(), parent.info.run_id)
    assert {"summary/compare_summary.csv", "summary/compare_summary.json", "summary/compare_summary_table.json",
            "plots/compare_metric.png", "plots/map_vs_latency.png"} <= paths
    # The parent headlines its result: the table in its description, the best row's figures as best.*, and the
    # same table in the terminal.
    best = next(r for r in rows if r["run_id"] == parent.data.tags["best.run_id"])
    note = parent.data.tags["mlflow.note.content"]
    assert "### Comparison of 2 variants" in note and f"**{best['variant']}**" in note
    assert parent.data.metrics["best.det.mAP50"] == pytest.approx(best["det.mAP50"])
    assert parent.data.metrics["best.det.mAP50_95"] == pytest.approx(best["det.mAP50_95"])
    assert "Comparison of 2 variants" in proc.stdout and "yolo11n" in proc.stdout
    assert not any(k.startswith(("train.", "backend.")) for k in parent.data.params)


def test_backends_best_by_latency(trained_store, tmp_path):
    source = _train_run_id(trained_store)
    _compare(trained_store, tmp_path, "compare.backends=[onnx_fp32,openvino_fp32]", f"compare.source_run_id={source}",
             "compare.metric=sys.latency_p50_ms", "compare.direction=minimize")
    parent = _parent(trained_store)
    children = _children(trained_store, parent)
    quants = [c for c in children if c.data.tags["exp.type"] == "quant"]
    assert sorted(c.data.tags["backend.name"] for c in quants) == ["onnx", "openvino"]
    assert all(c.data.tags["source.run_id"] == source for c in quants)
    rows = _summary(parent, tmp_path)
    fastest = min(rows, key=lambda r: r["sys.latency_p50_ms"])
    assert parent.data.tags["best.variant"] == fastest["variant"]
    assert parent.data.metrics["best.sys.latency_p50_ms"] == pytest.approx(fastest["sys.latency_p50_ms"])


def test_datasets_cross_site(trained_store, tmp_path):
    from gfcore.config import compose, to_typed
    from gfcore.data.dataset import resolve_dataset

    cfg = to_typed(compose(["scenario=smoke"]))
    smoke = resolve_dataset(cfg.data, cfg.task).root
    site2 = tmp_path / "site2"
    site2.mkdir()
    (site2 / "data.yaml").write_text(f"path: {smoke}\ntrain: images/train\nval: images/val\ntest: images/val\n"
                                     "names: [helmet, vest]\n")
    source = _train_run_id(trained_store)
    _compare(trained_store, tmp_path, f"compare.datasets=[demo,{site2 / 'data.yaml'}]",
             f"compare.source_run_id={source}", "infer.tracking.enabled=false")
    parent = _parent(trained_store)
    infers = _children(trained_store, parent)
    assert len(infers) == 2 and all(c.data.tags["source.run_id"] == source for c in infers)
    assert {c.data.params["data.name"] for c in infers} == {"demo", "site2"}
    assert [r["variant"] for r in _summary(parent, tmp_path)] == ["demo", "site2"]


def test_existing_runs_side_by_side(trained_store, tmp_path):
    ids = [r.info.run_id for r in runs_of(trained_store) if r.data.tags["exp.type"] in ("train", "infer")][:3]
    before = len(runs_of(trained_store))
    _compare(trained_store, tmp_path, f"compare.run_ids=[{','.join(ids)}]")
    assert len(runs_of(trained_store)) == before + 1  # the parent only: no new work
    parent = _parent(trained_store)
    assert [r["run_id"] for r in _summary(parent, tmp_path)] == ids
    assert parent.data.tags["best.run_id"] in ids


@pytest.mark.parametrize("overrides, message, rc", [
    ([], "compare needs exactly one design", 2),
    (["compare.architectures=[]"], "compare needs exactly one design", 2),
    (["compare.architectures=[yolov8n]", "compare.backends=[onnx_fp32]"], "given: architectures, backends", 2),
    (["compare.backends=[onnx_fp32]"], "compare.backends needs the model to start from", 2),
    (["compare.architectures=[yolov99]"], "Could not find 'model/yolov99'", 2),
    (["compare.run_ids=[0123456789abcdef]"], "does not exist", 2),
    (["compare.datasets=[/nowhere/data.yaml]", "compare.model_uri=x.pt"], "is not a file", 2),
    (["compare.design=grid"], "Key 'design' not in 'CompareConfig'", 1),  # Hydra's own composition error
])
def test_bad_designs_start_nothing(mlflow_store, tmp_path, overrides, message, rc):
    proc = _compare(mlflow_store, tmp_path, *overrides, expect_rc=rc)
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert runs_of(mlflow_store) == []
