"""`guardianflow wrap` of the example old folders against a temporary sqlite store: a real training script with
its artifacts and registered model, an export, a script that uses MLflow itself, a Korean script with hard-coded
paths, a failure, a timeout, Ctrl-C, and bad registries and arguments refused before anything runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import mlflow
import psutil
import pytest

from gfcore.core.errors import ConfigError
from gfcore.legacy.experiments_registry import get_entry, load_registry
from gfcore.legacy.wrap import build_args, wrap
from tests.conftest import REPO, artifact_paths, run_cli, runs_of

PPE_EXP = "donghwa-entec/busan-plant1/welding"




def _smoke_data_yaml() -> str:
    from gfcore.config import compose, to_typed
    from gfcore.data.dataset import resolve_dataset

    cfg = to_typed(compose(["scenario=smoke"]))
    return str(resolve_dataset(cfg.data, cfg.task).data_yaml)


def test_train_export_and_a_script_with_its_own_mlflow_run(mlflow_store, legacy_tree):
    entries = load_registry(legacy_tree / "registry.yaml")
    ppe = get_entry(entries, "donghwa-entec-ppe")
    data = _smoke_data_yaml()
    result = wrap(ppe, "train", params={"data": data, "epochs": "1", "batch": "8", "imgsz": "64"})
    assert result.status == "FINISHED" and result.exit_code == 0
    [run] = runs_of(mlflow_store, PPE_EXP)
    tags = run.data.tags
    assert (tags["exp.type"], tags["gf.wrap.type"], tags["gf.wrapped"], tags["gf.script"]) == \
        ("wrap", "train", "true", "train.py")
    assert tags["gf.source_dir"] == str(ppe.folder) and tags["site.zone"] == "welding" and tags["task.type"] == "ppe"
    assert run.data.params["epochs"] == "1" and run.data.params["data"] == data
    assert run.data.metrics["wrap.exit_code"] == 0 and run.data.metrics["wrap.duration_s"] > 0
    paths = artifact_paths(mlflow.MlflowClient(), run.info.run_id)
    assert {"stdout.txt", "stderr.txt", "outputs/weights/weights/best.pt", "outputs/results/results.csv"} <= paths
    stdout = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="stdout.txt")
    assert "saved weights/best.pt" in open(stdout).read()
    rm = mlflow.MlflowClient().get_registered_model("donghwa-entec.busan-plant1.welding.ppe")
    assert rm.aliases == {"candidate": 1}
    assert result.registered == [("donghwa-entec.busan-plant1.welding.ppe", "1")]

    # The export script's ONNX file becomes the site's onnx variant.
    result = wrap(ppe, "quant", params={"weights": "weights/best.pt", "imgsz": "64"})
    assert result.status == "FINISHED" and result.collected["weights"] == ["ppe_detector.onnx"]
    assert result.registered == [("donghwa-entec.busan-plant1.welding.ppe__onnx_fp32", "1")]

    # A script that starts its own MLflow run: it lands in the same experiment and leaves ours alone.
    result = wrap(ppe, "infer", params={"weights": "weights/best.pt", "data": data, "imgsz": "64"}, register=False)
    assert result.status == "FINISHED" and result.collected["results"] == ["eval.json"]
    runs = runs_of(mlflow_store, PPE_EXP)
    [own] = [r for r in runs if r.info.run_name == "ppe-eval-by-hand"]
    [ours] = [r for r in runs if r.info.run_id == result.run_id]
    assert own.info.status == "FINISHED" and "map50" in own.data.metrics
    assert ours.info.status == "FINISHED" and "map50" not in ours.data.metrics


def test_hard_coded_korean_script_via_the_cli(mlflow_store, legacy_tree):
    proc = run_cli(mlflow_store, "wrap", "donghwa-entec-fall", "--type", "train", "--registry",
                str(legacy_tree / "registry.yaml"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epoch 5/5" in proc.stdout and "완료" in proc.stdout  # streamed live
    [run] = runs_of(mlflow_store, "donghwa-entec/busan-plant1/assembly")
    assert run.info.status == "FINISHED" and run.data.tags["gf.script"] == "학습_v2.py"
    paths = artifact_paths(mlflow.MlflowClient(), run.info.run_id)
    assert {"outputs/results/results/metrics.csv", "outputs/plots/plots/loss.png"} <= paths


def test_a_failing_script_ends_failed_with_its_stderr(mlflow_store, legacy_tree):
    proc = run_cli(mlflow_store, "wrap", "sampyo-gimhae-bct", "--type", "train", "--registry",
                str(legacy_tree / "registry.yaml"))
    assert proc.returncode == 3
    [run] = runs_of(mlflow_store, "sampyo/gimhae-plant1/bct")
    assert run.info.status == "FAILED" and run.data.metrics["wrap.exit_code"] == 3
    assert run.data.tags["gf.error"] == "exit code 3: FileNotFoundError: /mnt/old_nas/bct/data.yaml"


def _stream_processes():
    return [p for p in psutil.process_iter(["cmdline"]) if any("stream_infer.py" in c for c in p.info["cmdline"] or [])]


def test_a_timeout_kills_the_script_and_ends_killed(mlflow_store, legacy_tree):
    entry = get_entry(load_registry(legacy_tree / "registry.yaml"), "sampyo-gimhae-bct")
    result = wrap(entry, "infer", params={"fps": "20"}, timeout=2)
    assert result.status == "KILLED" and result.exit_code is None
    [run] = runs_of(mlflow_store, "sampyo/gimhae-plant1/bct")
    assert run.info.status == "KILLED" and "timed out after 2 s" in run.data.tags["gf.error"]
    assert "frame 1: 0 detections" in open(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="stdout.txt")).read()
    assert _stream_processes() == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_ends_killed_and_stops_the_script(mlflow_store, legacy_tree, sig):
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store}
    # A shell's background jobs ignore SIGINT; restore the default so Python turns it into KeyboardInterrupt.
    proc = subprocess.Popen([sys.executable, "-m", "gfcore.cli", "wrap", "sampyo-gimhae-bct", "--type", "infer",
                             "-p", "fps=20", "--registry", str(legacy_tree / "registry.yaml")], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not _stream_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(sig)
    try:
        proc.communicate(timeout=60)
    finally:
        for p in _stream_processes():
            p.kill()
    assert proc.returncode == 130
    [run] = runs_of(mlflow_store, "sampyo/gimhae-plant1/bct")
    assert run.info.status == "KILLED"
    time.sleep(0.5)
    assert _stream_processes() == []


def test_bad_registries_and_arguments_run_nothing(mlflow_store, legacy_tree, tmp_path):
    registry = legacy_tree / "registry.yaml"
    text = registry.read_text()
    cases = [
        (text.replace("    notes: analysis.ipynb", "    colour: red\n    notes: analysis.ipynb"), "Key 'colour' not in"),
        (text.replace("path: examples/legacy_experiments/sampyo-gimhae-bct", "path: examples/nowhere"),
         "is not a folder"),
        (text.replace("default: train_old.py", "default: ../../../outside.py"), "is outside its folder"),
    ]
    for content, message in cases:
        bad = tmp_path / "bad.yaml"
        bad.write_text(content)
        with pytest.raises(ConfigError, match=message):
            load_registry(bad)
    proc = run_cli(mlflow_store, "wrap", "nope", "--type", "train", "--registry", str(registry))
    assert proc.returncode == 2 and "no experiment 'nope' in the registry" in proc.stderr
    proc = run_cli(mlflow_store, "wrap", "donghwa-entec-ppe", "--type", "train", "-p", "epochs=1", "--registry",
                str(registry))
    assert proc.returncode == 2 and "needs batch, data, imgsz: pass -p batch=VALUE -p data=VALUE" in proc.stderr
    assert runs_of(mlflow_store, PPE_EXP) == []


def test_arguments_are_one_value_each():
    assert build_args("--name {name} --epochs {epochs}", {"name": "site 1; rm -rf /", "epochs": "3"}) == \
        ["--name", "site 1; rm -rf /", "--epochs", "3"]
    assert build_args(None, {"epochs": "3", "data": "a b.yaml"}) == ["--epochs", "3", "--data", "a b.yaml"]
