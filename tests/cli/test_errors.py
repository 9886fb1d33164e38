"""Bad input is one line on stderr (`guardianflow: error: ...`), exit 2, no traceback: a value of the wrong type
names the key, the value and the type wanted; a misspelled name lists the valid ones with "did you mean" (rules,
triggers, config keys, models, variants, gate metrics); a misspelled model is refused before Ultralytics or torch
is imported (gfcore.config.explain, gfcore.core.suggest)."""

from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import pytest

from gfcore import cli
from gfcore.core import suggest
from tests.conftest import REPO, run_cli
from tests.fleet.seed import seed

MODEL = "acme.r-p1.gate.ppe"
TYPO = "acme.r-p1.gate.pp"


@pytest.fixture
def fleet(mlflow_store):
    seed(mlflow.MlflowClient())
    return mlflow_store


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("guardianflow: error: ")
    return line


def _error(capsys, *args: str) -> str:
    capsys.readouterr()
    assert cli.main(list(args)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("guardianflow: error: "), err
    return err


def test_a_value_of_the_wrong_type_is_one_line(mlflow_store):
    line = _one_line(run_cli(mlflow_store, "alerts", "list", "rules.low_accuracy.threshold=abc", "--no-record"))
    assert line == "guardianflow: error: rules.low_accuracy.threshold=abc: wants a number, got 'abc'"


def test_a_misspelled_rule_is_one_line_with_the_rules(mlflow_store):
    line = _one_line(run_cli(mlflow_store, "alerts", "list", "rules.low_acuracy.threshold=0.8", "--no-record"))
    assert "no rule 'low_acuracy' (did you mean low_accuracy?); rules: " in line
    assert "failed_runs" in line and "+rules" not in line


@pytest.mark.parametrize("args, said", [
    (["names", "train.epochs=abc"], "train.epochs=abc: wants a whole number, got 'abc'"),
    (["names", "train.cos_lr=maybe"], "train.cos_lr=maybe: wants true or false, got 'maybe'"),
    (["names", "backend.precision=int9"], "wants one of fp32, fp16, int8, got 'int9' (did you mean int8?)"),
    (["names", "train.epoch=3"], "train.epoch=3: no key train.epoch (did you mean train.epochs?)"),
    (["names", "scenario=smok"], "scenario=smok: Could not find 'scenario/smok' (did you mean smoke?)"),
    (["names", "train.epochs=[1"], "an override Hydra cannot read"),
    (["train", "train.epochs=abc"], "train.epochs=abc: wants a whole number, got 'abc'. Nothing was started."),
    (["optimize", "check", "triggers.low_acuracy.trials=3"], "no trigger 'low_acuracy' (did you mean low_accuracy?)"),
    (["optimize", "check", "triggers.low_accuracy.trials=x"], "triggers.low_accuracy.trials=x: wants a whole number"),
    (["optimize", "check", "env_manager=cnda"], "got 'cnda' (did you mean conda?)"),
    (["optimize", "check", "+auto_promot=true"], "no key auto_promot (did you mean auto_promote?)"),
    (["alerts", "list", "rules.low_accuracy.treshold=0.8"], "(did you mean rules.low_accuracy.threshold?)"),
])
def test_overrides_are_one_line_errors(mlflow_store, capsys, args, said):
    assert said in _error(capsys, *args)


@pytest.mark.parametrize("args, said", [
    (["versions", TYPO], f"no registered model named '{TYPO}' (did you mean {MODEL}?)"),
    (["optimize", "check", "--model", TYPO], f"(did you mean {MODEL}?)"),
    (["rollback", TYPO], f"(did you mean {MODEL}?)"),
    (["promote", MODEL, "--require", "det.mAP5>=0.8"], "has no metric 'det.mAP5' (did you mean det.mAP50?)"),
])
def test_misspelled_names_say_did_you_mean(fleet, capsys, args, said):
    assert said in _error(capsys, *args)


HEAVY = ("torch", "ultralytics")
PROBE = """import json, sys
from gfcore.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules]}))""" % (HEAVY,)


@pytest.mark.parametrize("args, said", [
    (["challenge", TYPO], f"(did you mean {MODEL}?)"),
    (["challenge", MODEL, "--variant", "openvino_in8"], f"(did you mean {MODEL}__openvino_int8?)"),
    (["promote", TYPO], f"(did you mean {MODEL}?)"),
])
def test_a_misspelled_model_is_refused_before_torch_or_ultralytics_load(fleet, args, said):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert json.loads(proc.stdout) == {"code": 2, "heavy": []}, proc.stderr[-2000:]
    assert said in proc.stderr


def test_suggest():
    assert suggest.did_you_mean("low_acuracy", ["failed_runs", "low_accuracy"]) == " (did you mean low_accuracy?)"
    assert suggest.did_you_mean("zzz", ["failed_runs", "low_accuracy"]) == ""
    assert suggest.unknown("rule", "x", ["b", "a"]) == "no rule 'x'; rules: a, b"
    assert suggest.listed(str(i) for i in range(20)).endswith("and 8 more")


def test_a_bad_override_of_a_logged_scenario_is_one_line(mlflow_store, tmp_path):
    """`challenge NAME KEY=VALUE` changes the candidate's logged scenario: a wrong value or key there is said as one
    line naming the override, as anywhere else."""
    import yaml

    from gfcore.automation.challenge import config_of
    from gfcore.config.compose import compose, to_container
    from gfcore.core.errors import ConfigError

    logged = tmp_path / "resolved.yaml"
    logged.write_text(yaml.safe_dump(to_container(compose(["scenario=smoke"]))))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(logged), "config")
    assert config_of(run.info.run_id, ["latency.runs=50"]).latency.runs == 50
    with pytest.raises(ConfigError, match=r"^latency\.runs=abc: wants a whole number, got 'abc'$"):
        config_of(run.info.run_id, ["latency.runs=abc"])
    with pytest.raises(ConfigError, match=r"^latency\.rns=3: no key latency\.rns \(did you mean latency\.runs\?\)$"):
        config_of(run.info.run_id, ["latency.rns=3"])
