"""A scenario's own tags (`exp.tags`) on a real train run (smoke, one epoch) and its registered version, and
`guardianflow metrics summary|trend|export --tag K=V` narrowed by them."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from gfcore.cli import main
from gfcore.fleet import queries
from tests.conftest import run_entrypoint, runs_of, smoke_versions

BASE = "demo.local-plant1.yard.ppe"


@pytest.fixture(scope="module")
def tagged_store(tmp_path_factory):
    """Version 1 untagged (the session's first version), version 2 trained with the scenario's own tags and
    promoted to champion."""
    from gfcore.registry import lifecycle

    with smoke_versions(tmp_path_factory, "exp-tags", seeds=(0, 1),
                        later=["exp.tags={purpose: baseline, ticket: SAFE-123}"]) as uri:
        lifecycle.promote(BASE)
        yield uri


def _runs(uri):
    return {r.data.tags.get("purpose", "-"): r for r in runs_of(uri) if r.data.tags["exp.type"] == "train"}


def test_the_train_run_and_its_version_carry_the_scenario_tags(tagged_store):
    runs = _runs(tagged_store)
    tagged, plain = runs["baseline"], runs["-"]
    assert tagged.data.tags["ticket"] == "SAFE-123" and tagged.data.params["exp.tags.purpose"] == "baseline"
    assert "ticket" not in plain.data.tags
    client = mlflow.MlflowClient()
    v2, v1 = client.get_model_version(BASE, "2"), client.get_model_version(BASE, "1")
    assert v2.run_id == tagged.info.run_id
    assert (v2.tags["purpose"], v2.tags["ticket"]) == ("baseline", "SAFE-123") and "purpose" not in v1.tags
    # A champion carries a tag on its version or, where the version has none of that name, on its run.
    client.set_tag(plain.info.run_id, "reviewed", "yes")
    assert queries.carries(client, v2, {"purpose": "baseline", "ticket": "SAFE-123"})
    assert queries.carries(client, v1, {"reviewed": "yes"}) and not queries.carries(client, v1, {"purpose": "baseline"})
    assert not queries.carries(client, v2, {"purpose": "baseline", "ticket": "SAFE-999"})


def _json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_metrics_commands_filter_by_tag(tagged_store, capsys, tmp_path):
    tagged = _runs(tagged_store)["baseline"]
    [row] = _json(capsys, "metrics", "summary", "--tag", "purpose=baseline", "--tag", "ticket=SAFE-123", "--json")
    assert (row["model"], row["champion"], row["runs"]) == (BASE, "2", 1)  # only the tagged run counted
    [everything] = _json(capsys, "metrics", "summary", "--json")
    assert everything["runs"] == 2
    assert _json(capsys, "metrics", "summary", "--tag", "purpose=other", "--json") == []

    trend = _json(capsys, "metrics", "trend", "--tag", "ticket=SAFE-123", "--json")
    assert sum(r["runs"] for r in trend) == 1
    assert trend[-1]["last"] == pytest.approx(tagged.data.metrics["det.mAP50"])
    assert sum(r["runs"] for r in _json(capsys, "metrics", "trend", "--json")) == 2

    [runs_file] = _json(capsys, "metrics", "export", "-o", str(tmp_path), "--format", "csv", "--tag",
                        "purpose=baseline", "--json")
    assert list(pd.read_csv(runs_file)["run_id"]) == [tagged.info.run_id]

    assert main(["metrics", "trend", "--tag", "purpose"]) == 2
    assert "--tag 'purpose': give a tag as NAME=VALUE" in capsys.readouterr().err


@pytest.mark.slow  # a pipeline of five runs, three of them child `mlflow run` processes: about 45 s here
def test_a_pipeline_its_steps_and_the_variant_carry_the_scenario_tags(mlflow_store, tmp_path):
    """The parent, each child `mlflow run` step (given the user's overrides in one parameter) and each version the
    steps register: train's and quant's."""
    proc = run_entrypoint(["guardianflow.full_pipeline", "scenario=smoke", "train.epochs=1",
                           "pipeline.quant_backends=[onnx_fp32]", "infer.tracking.enabled=false",
                           "exp.tags={purpose: baseline, ticket: SAFE-123}", "+exp.tags.owner=kim"],
                          mlflow_store, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_of(mlflow_store)
    assert sorted(r.data.tags["exp.type"] for r in runs) == ["infer", "infer", "pipeline", "quant", "train"]
    for run in runs:
        assert (run.data.tags["purpose"], run.data.tags["ticket"], run.data.tags["owner"]) == \
            ("baseline", "SAFE-123", "kim"), run.info.run_name
    client = mlflow.MlflowClient()
    for name in (BASE, f"{BASE}__onnx_fp32"):
        [version] = client.search_model_versions(f"name='{name}'")
        assert (version.tags["purpose"], version.tags["owner"]) == ("baseline", "kim"), name
