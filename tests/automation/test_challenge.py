"""`guardianflow challenge` and promotion gates on `champion`, on real smoke versions trained in a sqlite store."""

from __future__ import annotations

import json

import mlflow
import pytest

from gfcore import cli
from gfcore.automation import challenge
from gfcore.core.errors import RegistryError
from gfcore.registry import gates
from tests.conftest import smoke_versions

NAME = "demo.local-plant1.yard.ppe"


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """Versions 1 and 2 of the demo model (smoke, one epoch each), no champion yet."""
    with smoke_versions(tmp_path_factory, "challenge", seeds=(0, 1), promote_first=False) as uri:
        yield uri


def _aliases() -> dict[str, str]:
    return {k: str(v) for k, v in mlflow.MlflowClient().get_registered_model(NAME).aliases.items()}


def _challenge_runs() -> list:
    exp = mlflow.get_experiment_by_name("demo/local-plant1/yard")
    return mlflow.MlflowClient().search_runs([exp.experiment_id], "tags.`exp.type` = 'challenge'")


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_challenge_and_gates_on_the_champion(two_versions, capsys):
    client = mlflow.MlflowClient()
    assert _aliases() == {"candidate": "2"}

    # No champion yet: version 1 is measured alone and says so; a gate on `champion` cannot apply.
    code, out, _ = _cli(capsys, "challenge", NAME, "--candidate", "1", "--json")
    alone = json.loads(out)
    assert code == 0 and alone["verdict"] == "unopposed" and alone["champion"] is None
    assert set(alone["figures"]) == {"candidate"} and alone["deltas"] == {}
    code, _, _ = _cli(capsys, "promote", NAME, "--version", "1", "--require", "det.mAP50>=champion-0.005")
    assert code == 0 and _aliases() == {"champion": "1", "candidate": "2"}
    assert "not applied: no champion yet" in client.get_model_version(NAME, "1").tags["gf.gates"]

    # Version 2 against champion 1: without a challenge, a relative gate is refused and nothing changes.
    code, _, err = _cli(capsys, "promote", NAME, "--require", "det.mAP50>=champion-0.005")
    assert code == 2 and "guardianflow challenge" in err and "--challenge" in err
    assert _aliases() == {"champion": "1", "candidate": "2"}

    # --challenge measures first; a gate the candidate cannot meet is refused, aliases unchanged.
    code, _, err = _cli(capsys, "promote", NAME, "--challenge", "--require", "det.mAP50>=champion+2")
    assert code == 2 and "refused to promote version 2" in err and "det.mAP50" in err and "champion" in err
    assert _aliases() == {"champion": "1", "candidate": "2"}
    [run] = [r for r in _challenge_runs() if r.data.tags["challenge.champion_version"] == "1"]
    tags, metrics = run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED" and run.info.run_name == "ppe-yolov8n-challenge-pytorch_fp32-v2-vs-v1"
    assert tags["exp.design"] == "comparison" and tags["challenge.candidate_version"] == "2"
    assert tags["eval.split"] == "test" and tags["eval.dataset_digest"] and "alternate in 5 rounds" in tags[
        "sys.latency_protocol"]
    for role in ("candidate", "champion"):  # det, batch-1 latency and tracking of both, measured in this run
        for metric in ("det.mAP50", "det.mAP50_95", "sys.latency_p50_ms", "sys.latency_p95_ms", "mot.hota",
                       "mot.idf1"):
            assert f"{role}.{metric}" in metrics, f"{role}.{metric}"
    assert metrics["delta.det.mAP50"] == pytest.approx(metrics["candidate.det.mAP50"] - metrics["champion.det.mAP50"])
    # Every det.* difference with its paired-bootstrap interval and the smallest difference the split can show;
    # latency as a ratio with its interval; how they were drawn, in the run's tags and params.
    for figure in ("det.mAP50", "det.mAP50_95", "det.precision", "det.recall", "det.op.recall"):
        low, high = metrics[f"delta.{figure}.ci_low"], metrics[f"delta.{figure}.ci_high"]
        assert low <= metrics[f"delta.{figure}"] <= high, figure
        assert f"delta.{figure}.mde" in metrics
    for figure in ("sys.latency_p50_ms", "sys.latency_p95_ms"):
        assert metrics[f"ratio.{figure}.ci_low"] <= metrics[f"ratio.{figure}"] <= metrics[f"ratio.{figure}.ci_high"]
    assert metrics["delta.mot.hota.seq_min"] <= metrics["delta.mot.hota.seq_max"]
    assert "1000 resamples, seed 0" in tags["challenge.bootstrap"] and run.data.params["challenge.resamples"] == "1000"
    for role in ("candidate", "champion"):  # the operating point, pooled and per class
        assert {f"{role}.det.op.recall", f"{role}.det.op.missed.helmet", f"{role}.det.op.recall.vest"} <= set(metrics)
    note = tags["mlflow.note.content"]
    assert "difference [95 % CI]" in note and "smallest detectable" in note and "| det.mAP50 |" in note
    assert metrics["candidate.sys.latency_p95_ms"] >= metrics["candidate.sys.latency_p50_ms"] > 0
    assert tags["challenge.verdict"] in challenge.VERDICTS[:3]
    assert "candidate v2" in tags["mlflow.note.content"] and "champion v1" in tags["mlflow.note.content"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/challenge.png" in artifacts
    version_tags = client.get_model_version(NAME, "2").tags
    assert version_tags["challenge.run_id"] == run.info.run_id and version_tags["challenge.champion_version"] == "1"
    assert version_tags["challenge.verdict"] == tags["challenge.verdict"]

    # Gates it meets: the same challenge is read (no second one), and the promotion names it.
    code, out, _ = _cli(capsys, "promote", NAME, "--challenge", "--require", "det.mAP50>=champion-1",
                        "--require", "sys.latency_p95_ms<=champion*100", "--require", "det.mAP50>=0")
    assert code == 0 and _aliases() == {"champion": "2", "rollback": "1"}, out
    assert len(_challenge_runs()) == 2, "the unopposed one and the one against v1"
    promoted = client.get_model_version(NAME, "2").tags
    assert promoted["gf.gates_challenge_run_id"] == run.info.run_id
    assert promoted["gf.gates"] == "det.mAP50>=champion-1, sys.latency_p95_ms<=champion*100, det.mAP50>=0"


def test_challenge_refuses_the_champion_and_unknown_models(two_versions, capsys):
    code, _, err = _cli(capsys, "challenge", NAME, "--candidate", _aliases()["champion"])
    assert code == 2 and "is the champion" in err
    code, _, err = _cli(capsys, "challenge", "no.such-model.x.ppe")
    assert code == 2 and "no registered model named" in err


def test_stale_champion_when_its_data_changed(two_versions, capsys):
    """The champion's scenario data hashes as it did at training: no alert; a champion trained on other data
    (its run's data.hash differs from what the data hashes to now): the alert, with both hashes."""
    client = mlflow.MlflowClient()
    run_id = client.get_model_version(NAME, _aliases()["champion"]).run_id
    now = client.get_run(run_id).data.tags["data.hash"]
    only_stale = ["+rules.low_accuracy.enabled=false", "+rules.failed_runs.enabled=false"]

    def stale():
        assert cli.main(["alerts", "list", "--json", "--no-record", *only_stale]) == 0
        return [a for a in json.loads(capsys.readouterr().out)["open"] if a["rule"] == "stale_champion"]

    assert stale() == []
    client.set_tag(run_id, "data.hash", "0" * 64)
    try:
        [alert] = stale()
        assert alert["evidence"] == {"data_hash_then": "0" * 64, "data_hash_now": now}
        assert "trained on data that changed since" in alert["message"]
    finally:
        client.set_tag(run_id, "data.hash", now)


@pytest.mark.parametrize("text, value, champion, passes", [
    ("det.mAP50>=champion-0.005", 0.796, 0.8, True),
    ("det.mAP50>=champion-0.005", 0.794, 0.8, False),
    ("sys.latency_p95_ms<=champion*1.10", 10.9, 10.0, True),
    ("sys.latency_p95_ms<=champion*1.10", 11.1, 10.0, False),
    ("mot.hota>champion", 0.5, 0.5, False),
    ("det.mAP50 >= champion + 0.01", 0.82, 0.8, True),
])
def test_relative_gates(text, value, champion, passes):
    gate = gates.parse_gate(text)
    evidence = {"candidate": {gate.metric: value}, "champion": {gate.metric: champion}}
    if passes:
        gates.check("m", "2", [gate], {}, evidence)
    else:
        with pytest.raises(RegistryError, match="refused to promote version 2 of m"):
            gates.check("m", "2", [gate], {}, evidence)


@pytest.mark.parametrize("text, interval, passes", [
    ("det.mAP50>=champion-0.005", {"low": -0.004, "high": 0.01, "ratio": False}, True),
    ("det.mAP50>=champion-0.005", {"low": -0.006, "high": 0.01, "ratio": False}, False),
    ("sys.latency_p95_ms<=champion*1.10", {"low": 0.95, "high": 1.08, "ratio": True}, True),
    ("sys.latency_p95_ms<=champion*1.10", {"low": 0.95, "high": 1.12, "ratio": True}, False),
])
def test_relative_gates_pass_on_the_pessimistic_end(text, interval, passes):
    """The candidate equals the champion on the point estimate; whether the gate holds is the interval's call."""
    gate = gates.parse_gate(text)
    evidence = {"candidate": {gate.metric: 10.0}, "champion": {gate.metric: 10.0}, "intervals": {gate.metric: interval}}
    if passes:
        [line] = gates.check("m", "2", [gate], {}, evidence)
        assert "pessimistic end of its 95 % interval" in line
    else:
        with pytest.raises(RegistryError, match="pessimistic end"):
            gates.check("m", "2", [gate], {}, evidence)


def test_per_class_gates_read_as_written_and_suggest_the_class():
    metrics = {"det.op.recall.helmet": 0.92, "det.op.recall.vest": 0.8, "det.mAP50": 0.9}
    gates.check("m", "2", [gates.parse_gate("det.op.recall.helmet>=0.9")], metrics)
    with pytest.raises(RegistryError, match="det.op.recall.helmet is 0.9200, needs >= 0.9500"):
        gates.check("m", "2", [gates.parse_gate("det.op.recall.helmet>=0.95")], metrics)
    with pytest.raises(RegistryError, match=r"\(did you mean det.op.recall.helmet\?\)"):
        gates.check("m", "2", [gates.parse_gate("det.op.recall.helmett>=0.9")], metrics)


def test_bad_gates_say_what_to_write():
    for text in ("det.mAP50>=champ-0.1", "det.mAP50>=champion/2", "det.mAP50"):
        with pytest.raises(RegistryError, match="champion\\[\\+-\\*\\]NUMBER"):
            gates.parse_gate(text)
    with pytest.raises(RegistryError, match="has no metric 'mot.hota'"):
        gates.check("m", "2", [gates.parse_gate("mot.hota>=champion")], {},
                    {"candidate": {"det.mAP50": 0.5}, "champion": {"det.mAP50": 0.5}})
