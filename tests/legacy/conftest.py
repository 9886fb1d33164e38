"""A copy of the example old experiment folders and the project's registry, so wrapped scripts write there."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import REPO


@pytest.fixture
def legacy_tree(tmp_path):
    shutil.copytree(REPO / "examples" / "legacy_experiments", tmp_path / "examples" / "legacy_experiments",
                    ignore=shutil.ignore_patterns("runs", "weights", "__pycache__", "*.onnx", "results*", "plots",
                                                  "eval.json"))
    shutil.copy(REPO / "experiments_registry.yaml", tmp_path / "registry.yaml")
    return tmp_path
