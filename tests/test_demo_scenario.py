"""The `demo` preset does what the README promises: det.mAP50 >= 0.5 within 5 minutes on 2 CPU cores."""

from __future__ import annotations

import time

import pytest

from tests.conftest import run_entrypoint, runs_of


@pytest.mark.slow
def test_demo_trains_to_a_useful_model_in_five_minutes(mlflow_store, tmp_path):
    start = time.monotonic()
    proc = run_entrypoint(["entrypoints.train"], mlflow_store, tmp_path, timeout=900)
    wall = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = runs_of(mlflow_store)
    assert run.data.tags["gf.scenario"] == "demo"
    print(f"demo: wall {wall:.0f}s, det.mAP50 {run.data.metrics['det.mAP50']:.3f}, "
          f"det.mAP50_95 {run.data.metrics['det.mAP50_95']:.3f}")
    assert run.data.metrics["det.mAP50"] >= 0.5
    assert wall <= 300, f"the demo took {wall:.0f}s"
