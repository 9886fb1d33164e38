"""The fleet summary over real smoke runs: a train, an OpenVINO int8 quant, an infer of the variant, and promotion
of both, checked against what those runs recorded."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from gfcore.config import compose, to_typed
from gfcore.fleet import queries
from gfcore.fleet.export import export
from tests.conftest import runs_of

BASE = "demo.local-plant1.yard.ppe"


def test_summary_matches_the_runs(trained_store, tmp_path):
    from gfcore.jobs.infer import infer
    from gfcore.jobs.quant import quant
    from gfcore.registry import lifecycle

    [train] = [r for r in runs_of(trained_store) if r.data.tags["exp.type"] == "train"]
    quant(to_typed(compose(["scenario=smoke", "backend=openvino_int8", f"quant.source_run_id={train.info.run_id}",
                            "backend.calibration_size=8"])))
    [q] = [r for r in runs_of(trained_store) if r.data.tags["exp.type"] == "quant"]
    infer(to_typed(compose(["scenario=smoke", f"infer.source_run_id={q.info.run_id}", "infer.batch_sizes=[1]"])))
    [i] = [r for r in runs_of(trained_store) if r.data.tags["exp.type"] == "infer"]
    lifecycle.promote(BASE)
    lifecycle.promote(f"{BASE}__openvino_int8")

    [row] = queries.summary()
    assert (row.site, row.task, row.model, row.champion, row.candidate) == ("demo/local-plant1/yard", "ppe", BASE,
                                                                           "1", None)
    assert row.det_mAP50 == pytest.approx(train.data.metrics["det.mAP50"], abs=1e-5)
    assert row.det_mAP50_95 == pytest.approx(train.data.metrics["det.mAP50_95"], abs=1e-5)
    assert row.eval_split == "test" and row.deployed == "__openvino_int8"
    assert row.latency_p50_ms == pytest.approx(q.data.metrics["sys.latency_p50_ms"], rel=1e-5)
    assert row.latency_p95_ms == pytest.approx(q.data.metrics["sys.latency_p95_ms"], rel=1e-5)
    assert row.hota == i.data.metrics["mot.hota"] and row.idf1 == i.data.metrics["mot.idf1"]
    assert row.runs == 3 and row.failed_runs == 0

    [runs_file] = export(tmp_path, "parquet")
    frame = pd.read_parquet(runs_file).set_index("run_id")
    for run in (train, q, i):
        for key in ("det.mAP50", "sys.latency_p50_ms"):
            assert frame.loc[run.info.run_id, key] == pytest.approx(run.data.metrics[key]), key
    assert frame.loc[q.info.run_id, "eval_split"] == "test" and frame.loc[i.info.run_id, "backend"] == "openvino"
    assert mlflow.MlflowClient().get_registered_model(BASE).aliases["champion"] == 1
