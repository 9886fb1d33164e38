"""The registered model predicts through pyfunc and through `mlflow models serve`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import mlflow
import pandas as pd
import pytest

from gfcore.config import compose, to_typed
from gfcore.data.dataset import resolve_dataset
from gfcore.registry.pyfunc import OUTPUT_COLUMNS, encode_image
from tests.registry.conftest import NAME


@pytest.fixture(scope="module")
def test_images():
    cfg = to_typed(compose(["scenario=smoke"]))
    folder = resolve_dataset(cfg.data, cfg.task).splits["test"][0]
    return sorted(folder.glob("*.png"))[:3]


def _check_rows(out: pd.DataFrame, n_images: int, size: int = 64) -> None:
    assert list(out.columns) == OUTPUT_COLUMNS
    assert len(out) > 0 and set(out["image"]) <= set(range(n_images))
    assert set(out["class_name"]) <= {"helmet", "vest"} and set(out["class_id"]) <= {0, 1}
    assert ((out["x1"] >= 0) & (out["x2"] <= size) & (out["x1"] <= out["x2"]) & (out["y1"] <= out["y2"])).all()
    assert out["confidence"].between(0, 1).all()


def test_predict_base64_images(trained_store, test_images):
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@candidate")
    df = pd.DataFrame({"image": [encode_image(p) for p in test_images]})
    # A one-epoch model is unsure of everything: a very low threshold still yields boxes to check.
    out = model.predict(df, params={"conf": 0.001})
    _check_rows(out, len(test_images))
    strict = model.predict(df, params={"conf": 0.5})
    assert len(strict) <= len(out) and (strict["confidence"] >= 0.5).all()


def test_predict_numpy_arrays(trained_store, test_images):
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@candidate")
    arrays = [cv2.imread(str(p)) for p in test_images]
    _check_rows(model.predict(pd.DataFrame({"image": arrays}), params={"conf": 0.001}), len(arrays))


def test_bad_input_is_a_clear_error(trained_store):
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@candidate")
    with pytest.raises(Exception, match="not valid base64|does not decode"):
        model.predict(pd.DataFrame({"image": ["not an image!"]}))
    with pytest.raises(Exception, match=r"missing inputs \['image'\]"):
        model.predict(pd.DataFrame({"picture": ["x"]}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_invocations(trained_store, test_images):
    from gfcore.registry import lifecycle

    lifecycle.promote(NAME)  # serve the champion, as a site would
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained_store}
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion",
                               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()[-3000:]
                assert time.time() < deadline, "the server never answered /ping"
                time.sleep(1)
        body = {"dataframe_split": {"columns": ["image"], "data": [[encode_image(p)] for p in test_images]},
                "params": {"conf": 0.001}}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            predictions = json.loads(resp.read())["predictions"]
        _check_rows(pd.DataFrame(predictions)[OUTPUT_COLUMNS], len(test_images))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_requirements_pin_the_installed_opencv(monkeypatch):
    """The serving environment pins the OpenCV build that is installed, headless-only machines included."""
    import importlib.metadata as metadata

    from gfcore.registry import pyfunc

    real = metadata.version
    assert f"opencv-python=={real('opencv-python')}" in pyfunc.requirements()

    def headless_only(pkg: str) -> str:
        if pkg == "opencv-python":
            raise metadata.PackageNotFoundError(pkg)
        return "4.10.0.84" if pkg == "opencv-python-headless" else real(pkg)

    monkeypatch.setattr(metadata, "version", headless_only)
    reqs = pyfunc.requirements()
    assert "opencv-python-headless==4.10.0.84" in reqs and not any(r.startswith("opencv-python==") for r in reqs)
    assert f"mlflow=={real('mlflow')}" in reqs
