"""A version's backend and precision are tagged `backend.name` / `backend.precision`, as on runs; versions registered
before that spelling (`backend` / `precision`) still read the same, against a real sqlite registry."""

from __future__ import annotations

import mlflow

from gfcore import cli
from gfcore.core.vocabulary import VERSION_BACKEND, VERSION_PRECISION, version_tag
from gfcore.registry import lifecycle

NAME = "acme.north-p1.dock.ppe__openvino_int8"


def test_old_and_new_spellings_read_alike(mlflow_store, tmp_path, capsys):
    client = mlflow.MlflowClient()
    client.create_registered_model(NAME)
    with mlflow.start_run() as run:
        pass
    old = client.create_model_version(NAME, str(tmp_path), run_id=run.info.run_id,
                                      tags={"backend": "onnx", "precision": "fp16"})  # as stores written before hold
    new = client.create_model_version(NAME, str(tmp_path), run_id=run.info.run_id,
                                      tags={"backend.name": "openvino", "backend.precision": "int8"})
    assert (VERSION_BACKEND, VERSION_PRECISION) == ("backend.name", "backend.precision")

    by_version = {v.version: (v.backend, v.precision) for v in lifecycle.list_versions(NAME)}
    assert by_version == {str(old.version): ("onnx", "fp16"), str(new.version): ("openvino", "int8")}
    stored = client.get_model_version(NAME, str(old.version)).tags
    assert (version_tag(stored, VERSION_BACKEND), version_tag(stored, VERSION_PRECISION)) == ("onnx", "fp16")
    assert version_tag({}, VERSION_BACKEND) is None and version_tag(None, VERSION_PRECISION) is None

    capsys.readouterr()
    assert cli.main(["versions", NAME]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.split() and line.split()[0].isdigit()}
    assert {"onnx", "fp16"} <= set(rows[str(old.version)]) and {"openvino", "int8"} <= set(rows[str(new.version)])
