"""A registry with one real, trained (smoke) model, shared by the registry tests of a module."""

from __future__ import annotations

import mlflow
import pytest

from gfcore.config import compose, to_typed
from gfcore.train import train

NAME = "demo.local-plant1.yard.ppe"


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory):
    """A sqlite store in which `train` (smoke) registered version 1 of the demo model."""
    path = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{path / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    train(to_typed(compose(["scenario=smoke", "train.epochs=1"])))
    yield uri
    mlflow.set_tracking_uri(None)
    mp.undo()
