"""The entry points as verbs (`guardianflow train ...`), `guardianflow experiments` and `guardianflow models --name`,
against real sqlite stores."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

import mlflow
import pytest

from gfcore.cli import build_parser, main
from gfcore.cli.challenge import entry_arguments
from tests.conftest import run_cli, runs_of

SITE = "demo/local-plant1/yard"
MODEL = "demo.local-plant1.yard.ppe"




def test_train_verb_runs_the_smoke_scenario(mlflow_store):
    proc = run_cli(mlflow_store, "train", "scenario=smoke", "train.epochs=1", "registry.register=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = runs_of(mlflow_store, SITE)
    assert run.info.run_id == proc.stdout.strip().splitlines()[-1]
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.project.entryPoint"] == "train" and run.data.tags["exp.type"] == "train"
    assert run.data.params["train.epochs"] == "1" and run.data.tags["gf.scenario"] == "smoke"
    assert f"next: guardianflow quant scenario=smoke source_run_id={run.info.run_id}" in proc.stderr


@pytest.mark.parametrize("args, said", [
    (["train", "--epochs", "3"], ["train takes no option --epochs", "did you mean train.epochs=3?"]),
    (["quant", "scenario=smoke", "--backend=onnx_int8"], ["quant takes no option --backend=onnx_int8",
                                                          "did you mean backend=onnx_int8?", "source_run_id=RUN_ID"]),
    (["train", "scenario=smoke", "3"], ["train takes no bare word 3"]),
    (["train", "scenario=smoke", "epochs=3"], ["epochs=3: the config has no key epochs",
                                               "did you mean train.epochs=3?"]),
    (["pipeline", "scenario=nope"], ["unknown scenario=nope: the scenario options are demo, "
                                     "donghwa-entec_welding_ppe, sampyo_bct_ppe, smoke"]),
    (["sweep", "scenario=smoke", "model=yolo99"], ["unknown model=yolo99", "yolo11m", "yolov8s"]),
])
def test_bad_input_says_what_to_give_and_starts_nothing(mlflow_store, capsys, args, said):
    assert main(args) == 2
    err = capsys.readouterr().err
    for text in said:
        assert text in err, err
    if "takes no" in err or "has no key" in err:  # the groups and their options, and the key=value form
        assert "key=value" in err or "has no key" in err
        assert "  task: collision, fall, fire, ppe, stuck" in err and "  model: yolo11l, yolo11m" in err
        assert "  scenario: demo, donghwa-entec_welding_ppe, sampyo_bct_ppe, smoke" in err
    client = mlflow.MlflowClient(mlflow_store)
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert client.search_runs(["0"]) == []


def test_other_commands_still_refuse_unknown_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["models", "--bogus"])
    assert exc.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_verbs_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for verb in ("train", "quant", "infer", "sweep", "compare", "pipeline", "challenge", "experiments", "models"):
        assert f"\n    {verb} " in out


def test_challenge_takes_the_entry_points_arguments():
    def parse(name, *overrides, candidate=None, variant=None):
        return entry_arguments(argparse.Namespace(name=name, overrides=list(overrides), candidate=candidate,
                                                  variant=variant))

    assert parse(MODEL, "latency.runs=20") == (MODEL, None, None, ["latency.runs=20"])
    assert parse(f"name={MODEL}", "candidate=3", "variant=openvino_int8", "latency.runs=20") == \
        (MODEL, "3", "openvino_int8", ["latency.runs=20"])
    assert parse(MODEL, candidate="2", variant="onnx_int8") == (MODEL, "2", "onnx_int8", [])
    assert parse(f"name={MODEL}", "candidate= variant=", "data.path=/d.yaml") == \
        (MODEL, None, None, ["data.path=/d.yaml"])
    with pytest.raises(Exception, match="candidate given twice"):
        parse(MODEL, "candidate=3", candidate="2")
    with pytest.raises(Exception, match="which registered model"):
        parse("candidate=3")
    # overrides after an option, as the tie's next step prints them: the parser hands them over as leftovers
    args = build_parser().parse_known_args(["challenge", MODEL, "--candidate", "3", "latency.runs=400"])
    assert args[1] == ["latency.runs=400"] and args[0].unknown == []
    args[0].unknown = args[1]
    assert entry_arguments(args[0]) == (MODEL, "3", None, ["latency.runs=400"])
    args[0].unknown = ["--bogus"]
    with pytest.raises(Exception, match="challenge takes no option --bogus"):
        entry_arguments(args[0])


def test_experiments_lists_the_sites(trained_store, capsys):
    assert main(["experiments"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["experiment", "runs", "failed", "newest", "run", "(UTC)", "registered", "models"]
    assert lines[1].split()[:3] == [SITE, "1", "0"] and lines[1].endswith(MODEL)
    assert lines[-1].startswith("next: `guardianflow models --name demo.local-plant1.yard`")
    assert main(["experiments", "--customer", "demo", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    run = runs_of(trained_store, SITE)[0]
    assert row["experiment"] == SITE and row["experiment_id"] == run.info.experiment_id
    assert (row["runs"], row["failed_runs"], row["registered_models"]) == (1, 0, [MODEL])
    started = datetime.fromtimestamp(run.info.start_time / 1000, tz=timezone.utc)
    assert row["newest_run"] == started.strftime("%Y-%m-%d %H:%M")
    assert main(["experiments", "--customer", "acme"]) == 2
    assert "no site of customer 'acme': the store has demo" in capsys.readouterr().err


@pytest.mark.parametrize("pattern", ["yard", "*.YARD.*", "demo.local-plant1.yard.ppe"])
def test_models_by_name(trained_store, capsys, pattern):
    assert main(["models", "--name", pattern]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mAP50, mAP50-95, p50 ms (batch-1 latency): the champion's")
    assert lines[1].split()[:4] == ["name", "champion", "candidate", "rollback"]
    assert lines[2].split() == [MODEL, "-", "1", "-", "-", "-", "-", "demo/local-plant1/yard/ppe"]
    assert lines[-1].startswith(f"next: `guardianflow versions {MODEL}`")
    assert main(["models", "--name", pattern, "--json"]) == 0
    [model] = json.loads(capsys.readouterr().out)
    assert model["name"] == MODEL and model["aliases"] == {"candidate": "1"}


def test_models_by_a_name_nothing_has(trained_store, capsys):
    assert main(["models", "--name", "busan"]) == 0
    assert "no registered model's name matches 'busan' (1 registered" in capsys.readouterr().out
    assert main(["models", "--name", "busan", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.slow
def test_challenge_launched_as_the_entry_point(trained_store):
    """`challenge --launch`: the challenge entry point through the launcher (an MLflow Project run), its verdict read
    back from the version (last: it tags version 1 of the module's store)."""
    proc = run_cli(trained_store, "challenge", f"name={MODEL}", "candidate=1", "--launch", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert (result["model"], result["candidate"], result["verdict"]) == (MODEL, "1", "unopposed")
    [run] = [r for r in runs_of(trained_store, SITE) if r.info.run_id == result["run_id"]]
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.entryPoint"] == "challenge"
    assert run.data.tags["exp.type"] == "challenge"
