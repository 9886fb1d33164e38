"""`guardianflow wrap --name / --version`, MLflow's system metrics on a wrapped run, and the registry's `patterns`
choosing the script where it names no default (the match said), against a temporary sqlite store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import mlflow
import pytest

from gfcore.core.errors import ConfigError
from gfcore.legacy.experiments_registry import get_entry, load_registry
from gfcore.legacy.wrap import wrap
from tests.conftest import REPO, runs_of

EXPERIMENT = "acme/north-plant1/gate"
SCRIPT = """\
import json, sys, time
time.sleep(float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 0)
json.dump({"ok": True}, open("result.json", "w"))
print("evaluated")
"""


@pytest.fixture
def tiny_registry(tmp_path):
    """An old folder whose infer scripts are found by pattern only (one of them a backup), and whose train
    patterns match nothing."""
    folder = tmp_path / "acme-gate"
    folder.mkdir()
    (folder / "eval_gate.py").write_text(SCRIPT)
    (folder / "eval_gate_backup.py").write_text(SCRIPT.replace("evaluated", "the backup ran"))
    (folder / "notes.txt").write_text("not a script")
    registry = tmp_path / "registry.yaml"
    registry.write_text(textwrap.dedent("""\
        version: 1
        experiments:
          acme-gate:
            path: acme-gate
            site: {customer: acme, region: north, plant: plant1, zone: gate}
            task: {type: ppe, classes: [helmet, vest]}
            entry_points:
              infer: {patterns: ["bench*.py", "eval*.py"]}
              train: {patterns: ["train*.py"]}
        """))
    return registry


def _cli(uri, *args):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_RUN_ID", None)
    return subprocess.run([sys.executable, "-m", "gfcore.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_name_version_system_metrics_and_the_pattern_said(mlflow_store, tiny_registry):
    proc = _cli(mlflow_store, "wrap", "acme-gate", "--type", "infer", "--name", "nightly-eval", "--version", "v3",
                "-p", "seconds=2.5", "--system-metrics-interval", "1", "--registry", str(tiny_registry))
    assert proc.returncode == 0, proc.stderr
    # Said before the script runs: which pattern matched what, and which script runs.
    assert ("no infer default; pattern 'eval*.py' matched eval_gate.py, eval_gate_backup.py: running eval_gate.py"
            in proc.stderr)
    assert "evaluated" in proc.stdout and "the backup ran" not in proc.stdout
    [run] = runs_of(mlflow_store, EXPERIMENT)
    assert run.info.run_name == "ppe-nightly-eval-wrap-v3" and run.info.status == "FINISHED"
    tags = run.data.tags
    assert (tags["exp.version"], tags["gf.script"], tags["gf.script_pattern"]) == ("v3", "eval_gate.py", "eval*.py")
    # MLflow's own sampler ran while the script did: a time series, not a single value.
    system = {k for k in run.data.metrics if k.startswith("system/")}
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= system
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    assert len(history) >= 2


def test_defaults_keep_the_scheme_and_a_short_script_still_gets_a_sample(mlflow_store, tiny_registry):
    entry = get_entry(load_registry(tiny_registry), "acme-gate")
    # --script wins over the patterns; no --name: the script's name, version v1 (the scheme as before).
    result = wrap(entry, "infer", script="eval_gate_backup.py")
    assert result.status == "FINISHED" and result.run_name == "ppe-eval_gate_backup-wrap-v1" and not result.chosen
    run = mlflow.MlflowClient().get_run(result.run_id)
    assert "gf.script_pattern" not in run.data.tags and run.data.tags["exp.version"] == "v1"
    # Shorter than one 10 s interval: the last sample, taken when the script ended, is there.
    assert any(k.startswith("system/") for k in run.data.metrics)
    # 0: no system metrics.
    quiet = wrap(entry, "infer", system_metrics_interval_s=0)
    assert quiet.chosen.startswith("experiment acme-gate: no infer default; pattern 'eval*.py'")
    assert not any(k.startswith("system/") for k in mlflow.MlflowClient().get_run(quiet.run_id).data.metrics)


def test_no_match_and_bad_names_run_nothing(mlflow_store, tiny_registry):
    entry = get_entry(load_registry(tiny_registry), "acme-gate")
    with pytest.raises(ConfigError, match=r"no train default, and its patterns \['train\*.py'\] match no script"):
        wrap(entry, "train")
    with pytest.raises(ConfigError, match="wrap --name='nightly/eval' cannot be part of"):
        wrap(entry, "infer", name="nightly/eval")
    with pytest.raises(ConfigError, match="wrap --version='v 2' cannot be part of"):
        wrap(entry, "infer", version="v 2")
    assert runs_of(mlflow_store, EXPERIMENT) == []
    listed = _cli(mlflow_store, "list", "--registry", str(tiny_registry), "--json")
    assert listed.returncode == 0, listed.stderr
    assert "pattern bench*.py, eval*.py" in listed.stdout
