"""Each logged variant lists its own runtime, and serves from an environment built from its own requirements."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from gfcore.core.errors import RegistryError
from gfcore.registry import pyfunc
from gfcore.registry.pyfunc import OUTPUT_COLUMNS, encode_image, log_detector
from tests.registry.conftest import NAME
from tests.stack.servers import free_port, stop

RUNTIME_NAMES = ("openvino", "onnxruntime", "onnxruntime-gpu", "onnx", "tensorrt")


def _installed(pkg: str) -> str:
    return metadata.version(pkg).split("+")[0]


def _logged_requirements(model_uri: str) -> list[str]:
    path = mlflow.pyfunc.get_model_dependencies(model_uri)
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def _experiment(tmp_path: Path) -> str:
    """An experiment whose artifacts stay in this test's folder (not in ./mlruns of the working directory)."""
    return mlflow.create_experiment(f"variants-{tmp_path.name}", artifact_location=(tmp_path / "artifacts").as_uri())


def _fake_weights(folder: Path, kind: str) -> Path:
    """Files shaped like each kind of weights: what is logged is decided by the path alone."""
    if kind == "pytorch":
        path = folder / "best.pt"
    elif kind == "onnx":
        path = folder / "model_int8.onnx"
    else:
        path = folder / "model_int8_openvino_model"
        path.mkdir()
        (path / "best.xml").write_text("<net/>")
        (path / "best.bin").write_bytes(b"\0")
        return path
    path.write_bytes(b"\0")
    return path


@pytest.mark.filterwarnings("ignore:.*An input example was not provided")
@pytest.mark.parametrize("kind, runtime", [("pytorch", None), ("onnx", "onnxruntime"), ("openvino", "openvino")])
def test_logged_model_lists_its_own_runtime(mlflow_store, tmp_path, kind, runtime):
    weights = _fake_weights(tmp_path, kind)
    with mlflow.start_run(experiment_id=_experiment(tmp_path)):
        info = log_detector(weights, 64, example_image=None, name=f"ppe-{kind}")
    assert info.name == f"ppe-{kind}"
    reqs = _logged_requirements(info.model_uri)
    names = {r.split("==")[0] for r in reqs}
    # Every variant runs through Ultralytics, which imports torch.
    for pkg in ("mlflow", "ultralytics", "torch", "torchvision", "pandas", "numpy"):
        assert f"{pkg}=={_installed(pkg)}" in reqs
    if runtime is None:
        assert not names & set(RUNTIME_NAMES), reqs
    else:
        assert f"{runtime}=={_installed(runtime)}" in reqs
        others = set(RUNTIME_NAMES) - {runtime} - ({"onnx"} if kind == "onnx" else set())
        assert not names & others, reqs
    if kind == "onnx":  # Ultralytics' ONNX loader checks for it, and would try to install it at load time
        assert f"onnx=={_installed('onnx')}" in reqs


def test_runtime_distribution_is_the_installed_one(monkeypatch):
    real = metadata.version
    fake = {"onnxruntime-gpu": "1.22.0", "tensorrt": "10.9.0.34"}

    def version(pkg: str) -> str:
        return fake[pkg] if pkg in fake else real(pkg)

    monkeypatch.setattr(metadata, "version", version)
    assert "onnxruntime-gpu==1.22.0" in pyfunc.requirements("onnx")
    assert not any(r.startswith("onnxruntime==") for r in pyfunc.requirements("onnx"))
    reqs = pyfunc.requirements("tensorrt")
    assert "tensorrt==10.9.0.34" in reqs and f"torch=={_installed('torch')}" in reqs


def test_missing_runtime_or_unknown_weights_is_a_clear_error(monkeypatch, tmp_path):
    real = metadata.version

    def no_tensorrt(pkg: str) -> str:
        if pkg.startswith("tensorrt"):
            raise metadata.PackageNotFoundError(pkg)
        return real(pkg)

    monkeypatch.setattr(metadata, "version", no_tensorrt)
    with pytest.raises(RegistryError, match=r"needs tensorrt .*not installed here.*\.\[tensorrt\]"):
        pyfunc.requirements(pyfunc.backend_of(tmp_path / "model_fp16.engine"))
    with pytest.raises(RegistryError, match="cannot tell which runtime serves"):
        pyfunc.backend_of(tmp_path / "model.tflite")
    empty = tmp_path / "empty_openvino_model"
    empty.mkdir()
    with pytest.raises(RegistryError, match="cannot tell which runtime serves"):
        pyfunc.backend_of(empty)


# --- the slow proof: served from a fresh environment built from the variant's own requirements ---------------

def _env_manager() -> str:
    if shutil.which("pyenv"):
        return "virtualenv"  # MLflow builds it with the pyenv Python the model was logged with + `python -m venv`
    if shutil.which("uv"):
        return "uv"
    pytest.skip("building a model's own environment needs pyenv (--env-manager virtualenv) or uv on PATH")


def _tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_openvino_int8_variant_serves_from_its_own_environment(trained_store, tmp_path):
    from gfcore.backends import ExportRequest
    from gfcore.backends.openvino import export
    from gfcore.config import compose, to_typed
    from gfcore.data.dataset import resolve_dataset, split_images

    env_manager = _env_manager()
    # The trained model, exported to OpenVINO int8 as `quant` does, logged and registered as a variant.
    cfg = to_typed(compose(["scenario=smoke", "backend=openvino_int8", "backend.calibration_size=8"]))
    dataset = resolve_dataset(cfg.data, cfg.task)
    source = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}@candidate", dst_path=str(tmp_path / "src")))
    [weights] = list(source.rglob("*.pt"))
    calibration = split_images(dataset, cfg.backend.calibration_split, "backend.calibration_split")
    exported = export(ExportRequest(weights=weights, imgsz=cfg.model.imgsz, out_dir=tmp_path / "export",
                                    data_yaml=dataset.data_yaml, calibration_images=calibration[:8],
                                    backend=cfg.backend))
    with mlflow.start_run(experiment_id=_experiment(tmp_path)):
        info = log_detector(exported.path, cfg.model.imgsz, dataset.example_image(), name="ppe-openvino_int8")
    variant = f"{NAME}__openvino_int8"
    version = mlflow.register_model(info.model_uri, variant).version

    reqs = _logged_requirements(f"models:/{variant}/{version}")
    assert f"openvino=={_installed('openvino')}" in reqs
    assert not any(r.split("==")[0] in ("onnxruntime", "onnx", "tensorrt") for r in reqs), reqs

    # `mlflow models serve` builds the environment from the model's python_env.yaml and requirements.txt
    # alone, under MLFLOW_ENV_ROOT; from a folder outside the repository and without PYTHONPATH, so nothing of
    # this checkout or of this interpreter's site-packages can be imported there.
    env_root, work = tmp_path / "envs", tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained_store, "MLFLOW_ENV_ROOT": str(env_root)}
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MLFLOW_RUN_ID", "PYTEST_CURRENT_TEST"):
        env.pop(key, None)
    port = free_port()
    log = tmp_path / "serve.log"
    started = time.time()
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                                   f"models:/{variant}/{version}", "--env-manager", env_manager, "-h", "127.0.0.1",
                                   "-p", str(port)], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = started + 1200  # building the environment installs torch & co. (a few GB) from wheels
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, f"the server stopped:\n{_tail(log)}"
                assert time.time() < deadline, f"the server never answered /ping:\n{_tail(log)}"
                time.sleep(2)
        print(f"environment built and server up in {time.time() - started:.0f} s")

        [env_dir] = [p for p in env_root.iterdir() if (p / "bin" / "python").exists()]
        facts_code = ("import importlib.metadata as m, importlib.util as u, json, sys; print(json.dumps({"
                      "'gfcore': u.find_spec('gfcore') is not None, 'path': sys.path, "
                      "'dists': sorted(d.metadata['Name'].lower() for d in m.distributions())}))")
        probe = subprocess.run([str(env_dir / "bin" / "python"), "-c", facts_code], cwd=work, env=env,
                               capture_output=True, text=True, timeout=120, check=True)
        facts = json.loads(probe.stdout)
        assert not facts["gfcore"] and "guardianflow" not in facts["dists"], facts
        assert not set(site.getsitepackages()) & set(facts["path"]), facts["path"]
        assert "openvino" in facts["dists"] and "onnxruntime" not in facts["dists"]

        image = min(dataset.splits["test"][0].glob("*.png"))
        body = {"dataframe_split": {"columns": ["image"], "data": [[encode_image(image)]]},
                "params": {"conf": 0.0001}}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            out = pd.DataFrame(json.loads(resp.read())["predictions"])
        assert list(out.columns) == OUTPUT_COLUMNS, f"{list(out.columns)}\n{_tail(log)}"
        assert len(out) > 0 and set(out["image"]) == {0}
        assert set(out["class_name"]) <= set(cfg.task.classes) and out["confidence"].between(0, 1).all()
        size = cfg.model.imgsz
        assert ((out["x1"] >= 0) & (out["x1"] <= out["x2"]) & (out["x2"] <= size) & (out["y1"] <= out["y2"])).all()
        assert "OpenVINO" in _tail(log, 200_000), "the variant was not loaded through OpenVINO"
        print(f"answered in {time.time() - started:.0f} s from the start of `mlflow models serve`")
    finally:
        stopping = time.time()
        stop(server)  # the server and what it started (pip, the scoring server) are one process group
        shutil.rmtree(env_root, ignore_errors=True)  # a few GB: never left behind in pytest's kept temp folders
        print(f"server stopped and environment removed in {time.time() - stopping:.0f} s")
