"""`quant` end to end on the smoke scenario: every CPU variant exported, measured, compared and registered."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from gfcore.config import compose, to_typed
from gfcore.config.schema import CalibrationMethod
from gfcore.core.errors import ConfigError
from gfcore.data.dataset import resolve_dataset
from gfcore.jobs.quant import quant
from gfcore.registry.pyfunc import encode_image
from tests.conftest import artifact_paths, runs_of

BASE = "demo.local-plant1.yard.ppe"
CPU_VARIANTS = ["pytorch_fp32", "onnx_fp32", "onnx_fp16", "onnx_int8", "openvino_fp32", "openvino_fp16",
                "openvino_int8"]


def _source_run_id() -> str:
    [run] = [r for r in runs_of(mlflow.get_tracking_uri()) if r.data.tags["exp.type"] == "train"]
    return run.info.run_id


def _cfg(backend: str, *extra: str):
    return to_typed(compose(["scenario=smoke", f"backend={backend}", f"quant.source_run_id={_source_run_id()}",
                             "backend.calibration_size=8", *extra]))


@pytest.mark.parametrize("backend", CPU_VARIANTS)
def test_cpu_variant_end_to_end(trained_store, backend):
    source = _source_run_id()
    quant(_cfg(backend))
    run = [r for r in runs_of(trained_store) if r.data.tags.get("backend.name") == backend.split("_")[0]
           and r.data.tags.get("backend.precision") == backend.split("_")[1]][-1]
    assert run.info.status == "FINISHED" and run.info.run_name == f"ppe-yolov8n-quant-{backend}-v1"
    assert run.data.tags["exp.type"] == "quant" and run.data.tags["source.run_id"] == source
    assert run.data.tags["quant.method"]
    m = run.data.metrics
    # The variant's figures under the names train and infer runs use; the source's as original.*.
    for key in ("det.mAP50", "det.mAP50_95", "sys.latency_p50_ms", "sys.latency_p95_ms", "sys.model_size_mb"):
        assert math.isfinite(m[key]) and math.isfinite(m[f"original.{key}"]), key
    assert not any(k.startswith("quantized.") for k in m), "one name per figure"
    # The runtime's own call (ONNX Runtime's session.run, OpenVINO's compiled model) inside Ultralytics' stage.
    for prefix in ("", "original."):
        assert 0 < m[f"{prefix}sys.inference_ms"] < m[f"{prefix}sys.inference_stage_ms"], prefix
    for key in ("comparison.accuracy_drop_mAP50", "comparison.accuracy_drop_mAP50_95", "comparison.speedup_ratio",
                "comparison.compression_ratio"):
        assert math.isfinite(m[key]), key
    assert m["comparison.speedup_ratio"] == pytest.approx(m["original.sys.latency_p50_ms"] / m["sys.latency_p50_ms"])
    # The source is measured on the same basis as its train run's headline: same split, same figures.
    train_run = mlflow.get_run(source)
    assert run.data.tags["eval.split"] == train_run.data.tags["eval.split"] == "test"
    assert run.data.tags["eval.dataset_digest"] == train_run.data.tags["eval.dataset_digest"]
    assert m["original.det.mAP50_95"] == pytest.approx(train_run.data.metrics["det.mAP50_95"], abs=1e-6)
    assert "plots/source_vs_quantized.png" in artifact_paths(mlflow.MlflowClient(), run.info.run_id)

    name = f"{BASE}__{backend}"
    client = mlflow.MlflowClient()
    rm = client.get_registered_model(name)
    version = str(rm.aliases["candidate"])
    tags = client.get_model_version(name, version).tags
    assert tags["source.run_id"] == source and tags["backend.name"] == backend.split("_")[0]
    assert tags["backend.precision"] == backend.split("_")[1] and tags["quant.method"] == run.data.tags["quant.method"]
    assert rm.tags["gf.path"] == f"demo/local-plant1/yard/ppe/{backend}"
    # One evaluation basis: the variant's version and the base model's carry the same split and digest.
    base = client.get_model_version(BASE, client.get_registered_model(BASE).aliases["candidate"]).tags
    assert (tags["eval.split"], tags["eval.dataset_digest"]) == (base["eval.split"], base["eval.dataset_digest"])
    assert float(tags["det.mAP50"]) == pytest.approx(m["det.mAP50"], abs=1e-5)
    # What a person reads on the registry pages.
    described = client.get_model_version(name, version).description
    assert described.startswith(f"{backend} model of run {run.info.run_id}: det.mAP50 ") and "demo-test" in described
    assert rm.description.startswith(f"The {backend.replace('_', ' ')} export of `{BASE}`")
    # The logged model is named after what it is and carries the variant's figures, on the test split.
    model_id = client.get_model_version(name, version).source.split("/")[-1]
    logged = mlflow.get_logged_model(model_id)
    assert logged.name == f"ppe-yolov8n-{backend}"
    attached = {x.key: x for x in logged.metrics}
    assert attached["det.mAP50"].value == pytest.approx(m["det.mAP50"])
    assert attached["det.mAP50"].dataset_name == "demo-test" and "sys.latency_p50_ms" in attached

    # The registered variant loads through pyfunc and predicts.
    cfg = to_typed(compose(["scenario=smoke"]))
    image = sorted(resolve_dataset(cfg.data, cfg.task).splits["test"][0].glob("*.png"))[0]
    out = mlflow.pyfunc.load_model(f"models:/{name}@candidate").predict(
        pd.DataFrame({"image": [encode_image(image)]}), params={"conf": 0.0001})
    assert list(out.columns)[:4] == ["image", "class_id", "class_name", "confidence"] and len(out) > 0


def _count(uri):
    return len(runs_of(uri)), {rm.name for rm in mlflow.MlflowClient().search_registered_models()}


def test_bad_source_runs(trained_store):
    before = _count(trained_store)
    base = ["scenario=smoke", "backend=onnx_fp32"]
    with pytest.raises(ConfigError, match="needs the train run to start from"):
        quant(to_typed(compose(base)))
    with pytest.raises(ConfigError, match="does not exist"):
        quant(to_typed(compose([*base, "quant.source_run_id=0123456789abcdef0123456789abcdef"])))
    client = mlflow.MlflowClient()
    exp = mlflow.get_experiment_by_name("demo/local-plant1/yard").experiment_id
    unfinished = client.create_run(exp).info.run_id
    with pytest.raises(ConfigError, match="is RUNNING, not FINISHED"):
        quant(to_typed(compose([*base, f"quant.source_run_id={unfinished}"])))
    client.set_terminated(unfinished, "FINISHED")
    with pytest.raises(ConfigError, match="has no weights/best.pt"):
        quant(to_typed(compose([*base, f"quant.source_run_id={unfinished}"])))
    client.delete_run(unfinished)
    assert _count(trained_store) == before, "no run and no model from bad input"


@pytest.mark.parametrize("backend, message", [("tensorrt_fp16", "TensorRT needs an NVIDIA GPU"),
                                              ("tensorrt_int8", "TensorRT needs an NVIDIA GPU"),
                                              ("pytorch_fp16", "needs an NVIDIA GPU")])
def test_backends_that_cannot_run_here_refuse_first(trained_store, backend, message):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has an NVIDIA GPU")
    before = _count(trained_store)
    with pytest.raises(ConfigError, match=message):
        quant(_cfg(backend))
    assert _count(trained_store) == before


def test_int8_without_calibration_images(trained_store, tmp_path):
    cfg = to_typed(compose(["scenario=smoke"]))
    src = resolve_dataset(cfg.data, cfg.task)
    root = tmp_path / "site"
    for split in ("train", "val"):  # no test split
        for kind in ("images", "labels"):
            (root / kind / split).mkdir(parents=True)
        for img in (src.root / "images" / split).glob("*.png"):
            (root / "images" / split / img.name).write_bytes(img.read_bytes())
            (root / "labels" / split / f"{img.stem}.txt").write_text(
                (src.root / "labels" / split / f"{img.stem}.txt").read_text())
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [helmet, vest]\n")
    before = _count(trained_store)
    with pytest.raises(ConfigError, match="no images in its test split"):
        quant(_cfg("openvino_int8", "data=yolo", "data.name=site", f"data.path={root / 'data.yaml'}",
                   "backend.calibration_split=test", "registry.eval_split=val"))
    assert _count(trained_store) == before


def test_quant_under_mlflow_run(trained_store, tmp_path):
    from tests.conftest import run_project

    source = _source_run_id()
    proc = run_project("quant", trained_store, {
        "scenario": "smoke", "source_run_id": source,
        "overrides": f"backend=onnx_fp32 latency.runs=3 hydra.run.dir={tmp_path}/out"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = runs_of(trained_store)[-1]
    assert run.data.tags["mlflow.project.entryPoint"] == "quant" and run.info.status == "FINISHED"
    assert run.data.tags["source.run_id"] == source and "comparison.speedup_ratio" in run.data.metrics


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["tensorrt_fp16", "tensorrt_int8", "pytorch_fp16"])
def test_gpu_variants(trained_store, backend):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("TensorRT and PyTorch fp16 need an NVIDIA GPU; this machine has none")
    if backend.startswith("tensorrt"):
        pytest.importorskip("tensorrt", reason="TensorRT is not installed here: pip install -e '.[tensorrt]'")
    quant(_cfg(backend))
    run = runs_of(trained_store)[-1]
    assert run.info.status == "FINISHED" and math.isfinite(run.data.metrics["comparison.speedup_ratio"])
    assert mlflow.MlflowClient().get_registered_model(f"{BASE}__{backend}").aliases["candidate"]


def _onnx_ops(uri: str) -> set[str]:
    """The operator types of the .onnx file inside a registered model."""
    import onnx

    [path] = list(Path(mlflow.artifacts.download_artifacts(uri)).rglob("*.onnx"))
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_onnx_dynamic_and_static_calibration_are_what_ran(trained_store, tmp_path):
    """`backend.method` and `backend.calibration_method` reach ONNX Runtime, and the run and version record them."""
    from gfcore import backends
    from gfcore.backends.onnx import quantize_int8
    from gfcore.tracking.source import check_source_run, download_weights

    name = f"{BASE}__onnx_int8"
    client = mlflow.MlflowClient()
    quant(_cfg("onnx_int8", "backend.method=dynamic"))
    run = runs_of(trained_store)[-1]
    assert run.data.tags["quant.method"] == "dynamic" and "quant.calibration_method" not in run.data.tags
    assert "quantize_dynamic" in run.data.tags["quant.recipe"]
    version = client.get_model_version(name, client.get_registered_model(name).aliases["candidate"])
    assert version.tags["quant.method"] == "dynamic"
    ops = _onnx_ops(f"models:/{name}/{version.version}")
    assert {"DynamicQuantizeLinear", "ConvInteger"} <= ops and "QuantizeLinear" not in ops
    assert math.isfinite(run.data.metrics["det.mAP50"])  # ONNX Runtime ran it on the test split

    quant(_cfg("onnx_int8", "backend.calibration_method=percentile"))
    run = runs_of(trained_store)[-1]
    assert (run.data.tags["quant.method"], run.data.tags["quant.calibration_method"]) == ("static", "percentile")
    assert "calibration Percentile" in run.data.tags["quant.recipe"]
    version = client.get_model_version(name, client.get_registered_model(name).aliases["candidate"])
    assert version.tags["quant.calibration_method"] == "percentile"
    assert {"QuantizeLinear", "DequantizeLinear"} <= _onnx_ops(f"models:/{name}/{version.version}")

    # The calibration method changes the activation scales ONNX Runtime computes from the same images (entropy:
    # with more histogram bins than quantize_static's own, which would give the min-max ranges).
    cfg = _cfg("onnx_fp32")
    dataset = resolve_dataset(cfg.data, cfg.task)
    fp32 = backends.get(cfg.backend)(backends.ExportRequest(
        weights=download_weights(check_source_run(_source_run_id(), "quant"), tmp_path / "source"),
        imgsz=cfg.model.imgsz, out_dir=tmp_path / "fp32", data_yaml=dataset.data_yaml, calibration_images=[],
        backend=cfg.backend)).path
    images = sorted(dataset.splits["train"][0].glob("*.png"))[:2]
    scales = {}
    for method in ("minmax", "entropy", "percentile"):
        quantize_int8(fp32, tmp_path / f"{method}.onnx", images, cfg.model.imgsz, CalibrationMethod(method))
        scales[method] = _activation_scales(tmp_path / f"{method}.onnx")
    assert scales["minmax"].keys() == scales["entropy"].keys() == scales["percentile"].keys()
    assert scales["minmax"] != scales["entropy"] and scales["minmax"] != scales["percentile"]


def _activation_scales(path) -> dict[str, float]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.input[0]: float(init[n.input[1]].ravel()[0]) for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.input[1] in init and init[n.input[1]].size == 1}


def test_openvino_int8_within_a_maximum_accuracy_drop(trained_store):
    """NNCF's accuracy-aware quantization: the run records the drop it reached on the val split (within the asked
    maximum), how many operations were quantized and which went back to float, in metrics, tags and an artifact."""
    import json

    quant(_cfg("openvino_int8", "backend.max_accuracy_drop=0.02"))
    run = runs_of(trained_store)[-1]
    tags, m = run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED" and run.data.params["backend.max_accuracy_drop"] == "0.02"
    assert (tags["quant.method"], tags["quant.calibration_method"]) == ("static", "mean_minmax")
    assert "accuracy-aware" in tags["quant.recipe"] and tags["quant.accuracy_target"] == "met"
    assert m["quant.accuracy_drop"] <= 0.02 and m["quant.quantized_layers"] > 0
    report = json.loads(Path(mlflow.artifacts.download_artifacts(
        f"runs:/{run.info.run_id}/quant/accuracy_control.json")).read_text())
    assert report["split"] == "val" and report["metric"] == "det.mAP50" and report["max_drop"] == 0.02
    assert report["accuracy_drop"] == pytest.approx(m["quant.accuracy_drop"])
    assert report["fp32_mAP50"] - report["int8_mAP50"] == pytest.approx(report["accuracy_drop"])
    assert len(report["reverted_to_float"]) == m["quant.reverted_layers"] <= m["quant.quantized_layers"]
    assert report["quantized_operations"] == m["quant.quantized_layers"]
    version = mlflow.MlflowClient().get_model_version(
        f"{BASE}__openvino_int8", mlflow.MlflowClient().get_registered_model(f"{BASE}__openvino_int8").aliases["candidate"])
    assert version.tags["quant.accuracy_target"] == "met" and float(version.tags["quant.accuracy_drop"]) <= 0.02
