"""Read-only commands print their answer only: no MLflow download bars, no warnings MLflow or torch repeat, unless
`--verbose` (gfcore.core.quiet). Each command runs as the `guardianflow` executable would, in a process of its own,
on a seeded fleet where it downloads artifacts (the last alert evaluation, the runs' logged configs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import mlflow
import pytest

from gfcore.core import quiet
from tests.conftest import REPO, run_cli
from tests.fleet.seed import seed

BAR = "Downloading artifacts"
WARNING_LINE = re.compile(r"Warning:|^\s*(warnings\.warn|color_warning)\(|\bWARNING\b", re.MULTILINE)


@pytest.fixture
def fleet(mlflow_store, monkeypatch):
    monkeypatch.delenv(quiet.ARTIFACT_BARS_ENV, raising=False)  # as on a user's machine: MLflow's default, bars on
    monkeypatch.delenv(quiet.VERBOSE_ENV, raising=False)
    seed(mlflow.MlflowClient())
    return mlflow_store


def _said(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def test_alerts_list_prints_no_bar_and_no_warning(fleet):
    first = _said(run_cli(fleet, "alerts", "list"))  # records open_alerts.json, which the next one downloads
    assert "open alerts" in first or "severity" in first
    loud = _said(run_cli(fleet, "--verbose", "alerts", "list", "--no-record"))
    assert BAR in loud, "with --verbose, MLflow's bar shows: the quiet check below is not vacuous"
    said = _said(run_cli(fleet, "alerts", "list", "--no-record"))
    assert BAR not in said and "%|" not in said, said
    assert not WARNING_LINE.search(said), said
    assert "failed_runs" in said and "low_accuracy" in said  # the answer itself is all there


def test_optimize_check_prints_no_bar_and_no_warning(fleet):
    loud = _said(run_cli(fleet, "optimize", "check", "--no-record", "--verbose"))  # --verbose after the command too
    assert BAR in loud
    said = _said(run_cli(fleet, "optimize", "check", "--no-record"))
    assert BAR not in said and "%|" not in said, said
    assert not WARNING_LINE.search(said), said
    assert "new_candidate" in said and "low_accuracy" in said


def test_a_users_own_setting_wins(monkeypatch):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after: defaults() wraps it
    monkeypatch.setattr(warnings, "filters", list(warnings.filters))
    monkeypatch.delenv(quiet.VERBOSE_ENV, raising=False)
    monkeypatch.setenv(quiet.ARTIFACT_BARS_ENV, "true")
    quiet.defaults()
    assert os.environ[quiet.ARTIFACT_BARS_ENV] == "true"
    monkeypatch.delenv(quiet.ARTIFACT_BARS_ENV)
    quiet.defaults(show_all=True)  # --verbose: MLflow's default stays, and the processes started see GF_VERBOSE
    assert quiet.ARTIFACT_BARS_ENV not in os.environ and os.environ[quiet.VERBOSE_ENV] == "1"


@pytest.mark.parametrize("verbose", [False, True])
def test_mlflows_predict_type_hint_warning_is_hidden_unless_verbose(verbose, monkeypatch):
    """MLflow warns at the class definition of every PythonModel without type hints, under a `simplefilter("once")`
    of its own that a warnings filter cannot reach."""
    monkeypatch.delenv(quiet.VERBOSE_ENV, raising=False)
    code = f"from gfcore.core import quiet; quiet.defaults(show_all={verbose}); import gfcore.registry.pyfunc"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("Add type hints" in proc.stderr) is verbose, proc.stderr
