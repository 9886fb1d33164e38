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

    # The registered candidate finds helmets and vests at the default threshold.
    import mlflow
    import pandas as pd

    from gfcore.config import compose, to_typed
    from gfcore.data.dataset import resolve_dataset
    from gfcore.registry.pyfunc import encode_image

    cfg = to_typed(compose())
    images = sorted(resolve_dataset(cfg.data, cfg.task).splits["test"][0].glob("*.png"))[:8]
    model = mlflow.pyfunc.load_model("models:/demo.local-plant1.yard.ppe@candidate")
    out = model.predict(pd.DataFrame({"image": [encode_image(p) for p in images]}))
    assert set(out["class_name"]) == {"helmet", "vest"} and out["confidence"].min() >= 0.25
