"""promote / rollback / re-promote against a real sqlite registry: exact alias positions after each step."""

from __future__ import annotations

import json
import multiprocessing

import mlflow
import pytest

from gfcore import cli
from gfcore.core.errors import RegistryError
from gfcore.registry import lifecycle

NAME = "acme.north-p1.dock.ppe"


@pytest.fixture
def new_version(mlflow_store, tmp_path):
    """Register a version whose run scored `mAP50`; the newest version is the candidate, as after train."""
    client = mlflow.MlflowClient()
    client.create_registered_model(NAME, tags={"gf.path": "acme/north-p1/dock/ppe", "site.customer": "acme",
                                               "task.type": "ppe"})

    def make(map50: float) -> str:
        with mlflow.start_run() as run:
            mlflow.log_metrics({"det.mAP50": map50, "det.mAP50_95": map50 / 2})
        mv = client.create_model_version(NAME, str(tmp_path), run_id=run.info.run_id)
        client.set_registered_model_alias(NAME, "candidate", mv.version)
        return str(mv.version)

    return make


def aliases() -> dict[str, str]:
    return {k: str(v) for k, v in mlflow.MlflowClient().get_registered_model(NAME).aliases.items()}


def test_promote_rollback_repromote_sequence(new_version):
    v1 = new_version(0.6)
    lifecycle.promote(NAME)
    assert aliases() == {"champion": v1}

    v2 = new_version(0.8)
    assert aliases() == {"champion": v1, "candidate": v2}
    lifecycle.promote(NAME, requires=["det.mAP50>=0.7"])
    assert aliases() == {"champion": v2, "rollback": v1}
    tags = mlflow.MlflowClient().get_model_version(NAME, v2).tags
    assert tags["gf.promoted_from"] == v1 and tags["gf.gates"] == "det.mAP50>=0.7" and "gf.promoted_at" in tags

    lifecycle.rollback(NAME)
    assert aliases() == {"champion": v1, "candidate": v2}

    lifecycle.promote(NAME)  # the candidate again, after the fix
    assert aliases() == {"champion": v2, "rollback": v1}

    v3 = new_version(0.9)
    lifecycle.promote(NAME, version=v3)
    assert aliases() == {"champion": v3, "rollback": v2}


def test_promoting_a_named_version_keeps_the_candidate(new_version):
    v1, v2 = new_version(0.5), new_version(0.7)
    lifecycle.promote(NAME, version=v1)
    assert aliases() == {"champion": v1, "candidate": v2}


def test_promoting_the_champion_changes_nothing(new_version):
    v1 = new_version(0.5)
    lifecycle.promote(NAME)
    assert lifecycle.promote(NAME, version=v1)["changed"] is False
    assert aliases() == {"champion": v1}


def test_a_failing_gate_refuses_with_the_figures(new_version):
    v1 = new_version(0.6)
    lifecycle.promote(NAME)
    new_version(0.65)
    before = aliases()
    with pytest.raises(RegistryError, match=r"det.mAP50 is 0.6500, needs >= 0.7.*Aliases are unchanged"):
        lifecycle.promote(NAME, requires=["det.mAP50>=0.7", "det.mAP50_95>0.1"])
    assert aliases() == before and before["champion"] == v1


@pytest.mark.parametrize("call, message", [
    (lambda: lifecycle.promote("nope"), "no registered model named 'nope'"),
    (lambda: lifecycle.promote(NAME, version="99"), "has no version '99'"),
    (lambda: lifecycle.promote(NAME, requires=["det.nothing>=1"]), "has no metric 'det.nothing'"),
    (lambda: lifecycle.promote(NAME, requires=["det.mAP50 => 1"]), "is not of the form METRIC OP NUMBER"),
    (lambda: lifecycle.promote(NAME, requires=["det.mAP50>=high"]), "is not of the form METRIC OP NUMBER"),
    (lambda: lifecycle.rollback(NAME), "has no rollback version"),
    (lambda: lifecycle.set_alias(NAME, "latest", "1"), "reserved by MLflow"),
    (lambda: lifecycle.set_alias(NAME, "v3", "1"), "reserved by MLflow"),
    (lambda: lifecycle.set_alias(NAME, "champion", "1"), "managed by GuardianFlow"),
    (lambda: lifecycle.list_versions("nope"), "no registered model"),
])
def test_bad_requests_leave_aliases_unchanged(new_version, call, message):
    new_version(0.5)
    before = aliases()
    with pytest.raises(RegistryError, match=message):
        call()
    assert aliases() == before


def test_promote_with_no_candidate(new_version):
    new_version(0.5)
    lifecycle.promote(NAME)
    with pytest.raises(RegistryError, match="has no candidate to promote"):
        lifecycle.promote(NAME)


def test_custom_alias(new_version):
    v1 = new_version(0.5)
    lifecycle.set_alias(NAME, "edge-box-3", v1)
    assert aliases()["edge-box-3"] == v1


def _promote_in_process(uri: str, version: str, lock_dir: str, queue) -> None:
    import os

    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["GF_LOCK_DIR"] = lock_dir
    mlflow.set_tracking_uri(uri)
    try:
        lifecycle.promote(NAME, version=version)
        queue.put("ok")
    except Exception as exc:  # report, the parent asserts
        queue.put(repr(exc))


def test_concurrent_promotions_lose_nothing(new_version, mlflow_store, tmp_path, monkeypatch):
    monkeypatch.setenv("GF_LOCK_DIR", str(tmp_path / "locks"))
    v1 = new_version(0.5)
    lifecycle.promote(NAME)
    for _ in range(3):
        a, b = new_version(0.6), new_version(0.7)
        champion_before = aliases()["champion"]
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        procs = [ctx.Process(target=_promote_in_process, args=(mlflow_store, v, str(tmp_path / "locks"), queue))
                 for v in (a, b)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert sorted(queue.get(timeout=5) for _ in procs) == ["ok", "ok"]
        now = aliases()
        # Serialized: one became champion, and the other is its rollback; nothing points elsewhere.
        assert {now["champion"], now["rollback"]} == {a, b}, (champion_before, now)
    assert v1 not in aliases().values()


def test_cli_tables_and_json(new_version, capsys):
    v1 = new_version(0.6)
    assert cli.main(["promote", NAME]) == 0
    new_version(0.7)
    capsys.readouterr()
    assert cli.main(["models", "--json"]) == 0
    [model] = json.loads(capsys.readouterr().out)
    assert model["name"] == NAME and model["aliases"]["champion"] == v1
    assert model["champion_metrics"]["det.mAP50"] == 0.6
    assert cli.main(["models", "--customer", "acme"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mAP50, mAP50-95, p50 ms (batch-1 latency): the champion's")
    assert lines[1].split()[:4] == ["name", "champion", "candidate", "rollback"]
    assert lines[2].split()[:3] == [NAME, v1, "2"]
    assert cli.main(["models", "--customer", "other"]) == 0
    assert "no registered models" in capsys.readouterr().out
    assert cli.main(["versions", NAME, "--json"]) == 0
    versions = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in versions] == ["2", "1"] and versions[1]["aliases"] == ["champion"]
    assert cli.main(["promote", NAME, "--require", "det.mAP50>=0.9"]) == 2
    assert "refused to promote" in capsys.readouterr().err
