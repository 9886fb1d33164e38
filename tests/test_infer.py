"""`infer` end to end on the smoke scenario: a train run's .pt, a registered OpenVINO variant and a path,
measured for detection, latency per batch size, system figures and tracking (TrackEval), and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import pytest

from gfcore.config import compose, to_typed
from gfcore.core.errors import ConfigError, DataError, ModelError
from gfcore.jobs.infer import infer
from gfcore.mot import COMBINED, METRICS
from gfcore.mot.evaluate import evaluate_mot
from tests.conftest import artifact_paths, run_project, runs_of

BASE = "demo.local-plant1.yard.ppe"
LATENCY_KEYS = ("latency_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "throughput_ips",
                "preprocess_ms", "inference_ms", "inference_stage_ms", "postprocess_ms")


def _train_run_id() -> str:
    [run] = [r for r in runs_of(mlflow.get_tracking_uri()) if r.data.tags["exp.type"] == "train"]
    return run.info.run_id


def _cfg(*extra: str):
    return to_typed(compose(["scenario=smoke", *extra]))


def _last_infer_run():
    return [r for r in runs_of(mlflow.get_tracking_uri()) if r.data.tags["exp.type"] == "infer"][-1]


def _count() -> int:
    return len(runs_of(mlflow.get_tracking_uri()))


def test_pt_model_of_a_train_run(trained_store, tmp_path):
    source = _train_run_id()
    objective = infer(_cfg(f"infer.source_run_id={source}"))
    run = _last_infer_run()
    assert run.info.status == "FINISHED" and run.info.run_name == "ppe-yolov8n-infer-pytorch_fp32-v1"
    tags, m = run.data.tags, run.data.metrics
    assert tags["source.run_id"] == source and tags["backend.name"] == "pytorch"
    assert tags["backend.precision"] == "fp32" and tags["tracking.tracker"] == "bytetrack"
    assert tags["model.uri"] == f"runs:/{source}/weights/best.pt" and tags["infer.imgsz"] == "64"
    assert run.data.params["backend.name"] == "pytorch"
    assert objective == pytest.approx(m["det.mAP50_95"])

    for key in ("det.mAP50", "det.mAP50_95", "det.precision", "det.recall", "det.f1"):
        assert 0.0 <= m[key] <= 1.0, key
    assert {"det.ap50_95.helmet", "det.ap50_95.vest"} <= set(m)
    # Latency per batch size (smoke: 1 and 2): batch 1 under the plain names only, others as sys.bs{N}.*.
    for size, prefix in ((1, "sys."), (2, "sys.bs2.")):
        for key in LATENCY_KEYS:
            assert m[f"{prefix}{key}"] > 0, (size, key)
        assert m[f"{prefix}latency_p50_ms"] <= m[f"{prefix}latency_p99_ms"]
        # The module's own forward, inside Ultralytics' inference stage.
        assert m[f"{prefix}inference_ms"] < m[f"{prefix}inference_stage_ms"], size
        assert m[f"{prefix}throughput_ips"] == pytest.approx(1000 * size / m[f"{prefix}latency_ms"])
    assert not any(k.startswith("sys.bs1.") for k in m) and "sys.fps" not in m, "one name per figure"
    # The best batch size (no latency budget on the smoke site) and the per-batch table, from those same figures.
    rows = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/latency/per_batch.json")
    assert [r["batch_size"] for r in rows] == [1, 2]
    for row, prefix in zip(rows, ("sys.", "sys.bs2.")):
        assert row["latency_p50_ms"] == m[f"{prefix}latency_p50_ms"] and row["within_budget"] is None
        assert row["latency_p95_ms_per_image"] == pytest.approx(m[f"{prefix}latency_p95_ms"] / row["batch_size"])
        assert row["throughput_ips"] == pytest.approx(m[f"{prefix}throughput_ips"])
    best = max(rows, key=lambda r: r["throughput_ips"])
    assert (m["sys.best_batch_size"], m["sys.best_throughput_ips"]) == (best["batch_size"],
                                                                       pytest.approx(best["throughput_ips"]))
    assert tags["sys.best_batch_rule"].startswith("the most images/s of batch sizes 1, 2 (no site.latency_budget_ms)")
    table = mlflow.MlflowClient().load_table(run.info.experiment_id, "latency/per_batch_table.json", [run.info.run_id])
    assert list(table["batch_size"]) == [1, 2] and list(table["throughput_ips"]) == pytest.approx(
        [r["throughput_ips"] for r in rows])
    assert tags["eval.split"] == "test" and "batch 1, 2" in tags["sys.latency_protocol"]
    assert any(k.startswith("system/") for k in m), "MLflow's system metrics, like every other run"
    # System snapshot and model figures; no GPU figures on a CPU machine.
    assert 0 < m["sys.cpu_utilization_pct"] <= 100 and m["sys.rss_peak_mb"] > 100
    assert m["sys.model_size_mb"] > 1 and m["sys.model_params_m"] > 1 and m["sys.model_gflops"] > 0
    assert not any(k.startswith("sys.gpu_") for k in m)

    # Tracking: every mot.* name, and the logged tracks re-score to the same figures.
    assert {f"mot.{k}" for k in METRICS} <= set(m)
    assert all(math.isfinite(m[f"mot.{k}"]) for k in METRICS)
    assert m["mot.gt_tracks"] > 0
    client = mlflow.MlflowClient()
    paths = artifact_paths(client, run.info.run_id)
    assert {"plots/latency_vs_batch.png", "plots/mot_per_sequence.png", "tracking/mot_per_sequence.csv",
            "tracking/tracks/demo-01.txt", "tracking/tracks/demo-02.txt", "config/resolved.yaml"} <= paths
    tracks = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="tracking/tracks",
                                                      dst_path=str(tmp_path)))
    from gfcore.data.dataset import sequences_folder

    rescored = evaluate_mot(sequences_folder(_cfg().data), tracks)
    for key in METRICS:
        assert rescored[COMBINED][key] == pytest.approx(m[f"mot.{key}"]), key
    table = (Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                      artifact_path="tracking/mot_per_sequence.csv",
                                                      dst_path=str(tmp_path)))).read_text().splitlines()
    assert table[0] == "sequence," + ",".join(METRICS)
    assert [line.split(",")[0] for line in table[1:]] == ["demo-01", "demo-02", COMBINED]


def test_registered_openvino_variant(trained_store):
    from gfcore.jobs.quant import quant

    source = _train_run_id()
    quant(_cfg("backend=openvino_fp32", f"quant.source_run_id={source}"))
    quant_run = [r for r in runs_of(trained_store) if r.data.tags["exp.type"] == "quant"][-1]
    uri = f"models:/{BASE}__openvino_fp32@candidate"
    infer(_cfg(f"infer.model_uri={uri}", "infer.tracking.tracker=botsort", "infer.batch_sizes=[1]"))
    run = _last_infer_run()
    tags, m = run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED"
    assert tags["backend.name"] == "openvino" and tags["backend.precision"] == "fp32"
    assert tags["source.run_id"] == quant_run.info.run_id and tags["model.uri"] == uri
    assert tags["tracking.tracker"] == "botsort" and run.data.params["backend.name"] == "openvino"
    assert m["sys.latency_p50_ms"] > 0 and "sys.bs2.latency_ms" not in m
    # Parameters and GFLOPs describe the architecture: taken from the train run up the lineage.
    train_metrics = mlflow.get_run(source).data.metrics
    assert m["sys.model_params_m"] == train_metrics["sys.model_params_m"]
    assert {f"mot.{k}" for k in METRICS} <= set(m)


def test_onnx_file_by_path(trained_store, tmp_path):
    from ultralytics import YOLO

    weights = mlflow.artifacts.download_artifacts(run_id=_train_run_id(), artifact_path="weights/best.pt",
                                                  dst_path=str(tmp_path))
    onnx = YOLO(weights).export(format="onnx", imgsz=64, verbose=False)
    # A latency budget no batch size can keep: no best batch size, and the run says why.
    infer(_cfg(f"infer.model_uri={onnx}", "infer.tracking.enabled=false", "site.latency_budget_ms=0.001"))
    run = _last_infer_run()
    assert run.info.status == "FINISHED" and run.data.tags["backend.name"] == "onnx"
    assert "source.run_id" not in run.data.tags and "mot.hota" not in run.data.metrics
    m = run.data.metrics
    assert m["sys.bs2.latency_p50_ms"] > 0
    assert "sys.best_batch_size" not in m and "sys.best_throughput_ips" not in m
    assert run.data.tags["sys.best_batch_rule"].startswith("no best batch size: no batch size of 1, 2 keeps its p95")
    rows = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/latency/per_batch.json")
    assert [(r["batch_size"], r["within_budget"]) for r in rows] == [(1, False), (2, False)]


@pytest.mark.parametrize("budget, best", [(None, 8), (30.0, 2), (5.0, None)])
def test_best_batch_within_the_budget(budget, best):
    from gfcore.jobs.measure import batch_table, best_batch

    figures = {1: (4.0, 6.0, 240.0), 2: (7.0, 20.0, 270.0), 8: (25.0, 40.0, 300.0)}  # p50, p95 per call, images/s
    rows = batch_table({n: {"latency_p50_ms": p50, "latency_p95_ms": p95, "throughput_ips": ips}
                        for n, (p50, p95, ips) in figures.items()}, budget)
    assert [r["within_budget"] for r in rows] == ([None] * 3 if budget is None else [p95 <= budget for _, p95, _ in
                                                                                    figures.values()])
    assert rows[2]["latency_p50_ms_per_image"] == 25.0 / 8 and rows[1]["latency_p95_ms_per_image"] == 10.0
    chosen = best_batch(rows)
    assert (chosen["batch_size"] if chosen else None) == best


def test_infer_under_mlflow_run(trained_store, tmp_path):
    source = _train_run_id()
    proc = run_project("infer", trained_store, {
        "scenario": "smoke", "source_run_id": source,
        "overrides": f"infer.batch_sizes=[1] latency.runs=3 hydra.run.dir={tmp_path}/out"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = runs_of(trained_store)[-1]
    assert run.data.tags["mlflow.project.entryPoint"] == "infer" and run.info.status == "FINISHED"
    assert run.data.tags["source.run_id"] == source and "mot.idf1" in run.data.metrics


@pytest.mark.parametrize("override, error, message", [
    ("infer.model_uri=models:/nope@champion", ConfigError, "does not resolve"),
    (f"infer.model_uri=models:/{BASE}@no_such_alias", ConfigError, "does not resolve"),
    (f"infer.model_uri=models:/{BASE}", ConfigError, "names no version"),
    ("infer.model_uri=runs:/0123456789abcdef/model", ConfigError, "does not resolve"),
    ("infer.model_uri=/nowhere/best.pt", ConfigError, "no such file or folder"),
    ("infer.model_uri=s3://bucket/model.onnx", ConfigError, "neither a models:/NAME@alias"),
    ("infer.source_run_id=0123456789abcdef", ConfigError, "does not exist"),
    ("infer.source_run_id=", ConfigError, "infer needs a model"),
])
def test_a_model_that_does_not_resolve(trained_store, override, error, message):
    before = _count()
    with pytest.raises(error, match=message):
        infer(_cfg(override))
    assert _count() == before


def test_a_model_file_that_cannot_load(trained_store, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    before = _count()
    with pytest.raises(ModelError, match=r"broken\.onnx .* cannot run here"):
        infer(_cfg(f"infer.model_uri={broken}"))
    with pytest.raises(ModelError, match="not a model file infer can measure"):
        infer(_cfg(f"infer.model_uri={tmp_path}"))
    assert _count() == before


def test_engine_file_needs_a_gpu(trained_store, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has an NVIDIA GPU")
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\0")
    before = _count()
    with pytest.raises(ConfigError, match="TensorRT runs on an NVIDIA GPU"):
        infer(_cfg(f"infer.model_uri={engine}"))
    assert _count() == before


def test_malformed_sequences_fail_before_the_run(trained_store, tmp_path):
    from tests.mot.conftest import gt_line, write_seq

    seqs = tmp_path / "seqs"
    write_seq(seqs, None, "cam1", [gt_line(1, 1, 10), gt_line(14, 1, 12)], None, length=10)
    before = _count()
    with pytest.raises(DataError, match=r"gt\.txt, line 2: frame 14 is outside the sequence"):
        infer(_cfg(f"infer.source_run_id={_train_run_id()}", f"data.sequences_dir={seqs}"))
    (seqs / "cam1" / "gt" / "gt.txt").write_text(gt_line(1, 1, 10) + "\n")
    with pytest.raises(DataError, match=r"sequence cam1: 10 of 10 frames are missing, first .*000001\.jpg"):
        infer(_cfg(f"infer.source_run_id={_train_run_id()}", f"data.sequences_dir={seqs}"))
    (seqs / "cam1" / "seqinfo.ini").unlink()
    with pytest.raises(DataError, match=r"seqinfo\.ini is missing"):
        infer(_cfg(f"infer.source_run_id={_train_run_id()}", f"data.sequences_dir={seqs}"))
    assert _count() == before


def test_tracking_without_sequences(trained_store, tmp_path):
    cfg = _cfg(f"infer.source_run_id={_train_run_id()}", "data.demo.sequences=0")
    with pytest.raises(ConfigError, match="the dataset has no video sequences"):
        infer(cfg)


@pytest.mark.gpu
def test_gpu_system_snapshot(trained_store):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("GPU figures need an NVIDIA GPU; this machine has none")
    infer(_cfg(f"infer.source_run_id={_train_run_id()}", "backend.device=0", "infer.tracking.enabled=false"))
    m = _last_infer_run().data.metrics
    assert m["sys.gpu_memory_peak_mb"] > 0 and m["sys.gpu_power_w"] > 0
    assert 0 <= m["sys.gpu_utilization_pct"] <= 100 and m["sys.gpu_temperature_c"] > 0
