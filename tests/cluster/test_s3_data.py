"""Datasets on S3 against the local stack's SeaweedFS: `data push`, a download that is cached by the objects'
ETags, lineage that names the S3 URI, and the errors (missing bucket, wrong keys, a yaml pointing outside its
prefix) with nothing half-written in the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import mlflow
import pytest

from gfcore import cli
from gfcore.config import compose, to_typed
from gfcore.core.errors import DataError
from gfcore.data import s3 as s3data
from gfcore.data.dataset import resolve_dataset
from tests.stack.servers import local_stack, stack_missing

pytestmark = pytest.mark.skipif(bool(stack_missing()) and not os.environ.get("GF_REQUIRE_STACK"),
                                reason=f"needs {' and '.join(stack_missing())}")

URI = "s3://datasets/yard/data.yaml"
ON_S3 = ["scenario=smoke", "data=yolo", f"data.path={URI}", "data.name=yard"]


@pytest.fixture(scope="module")
def stack():
    with local_stack() as running:
        yield running


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _s3():
    """A client with this stack's keys (boto3's default session would keep the first keys it read)."""
    return boto3.session.Session().client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"])


def _demo_yaml() -> Path:
    return resolve_dataset(to_typed(compose(["scenario=smoke"])).data, to_typed(compose(["scenario=smoke"])).task
                           ).data_yaml


def _downloads(client) -> list[str]:
    """A real client that records each object it downloads (boto3's own event hooks)."""
    got: list[str] = []
    client.meta.events.register("provide-client-params.s3.GetObject", lambda params, **_: got.append(params["Key"]))
    return got


def test_push_download_once_and_lineage(stack, cache, capsys, monkeypatch):
    demo = _demo_yaml()
    code = cli.main(["data", "push", str(demo), "s3://datasets/yard/"])
    assert code == 2 and "the bucket does not exist" in capsys.readouterr().err, "no bucket yet"
    _s3().create_bucket(Bucket="datasets")
    assert cli.main(["data", "push", str(demo), "s3://datasets/yard/"]) == 0
    assert "data.path=s3://datasets/yard/data.yaml" in capsys.readouterr().out
    keys = {o["Key"] for o in _s3().list_objects_v2(Bucket="datasets")["Contents"]}
    assert "yard/data.yaml" in keys and any(k.startswith("yard/labels/train/") for k in keys)
    pushed = _s3().get_object(Bucket="datasets", Key="yard/data.yaml")["Body"].read().decode()
    assert "path:" not in pushed and "images/train" in pushed, "paths relative to the yaml"

    # First use downloads into the cache; the copy hashes as the local set does.
    client = s3data.client()
    got = _downloads(client)
    monkeypatch.setattr(s3data, "client", lambda: client)
    cfg = to_typed(compose(ON_S3))
    info = resolve_dataset(cfg.data, cfg.task)
    local = resolve_dataset(to_typed(compose(["scenario=smoke", "data=yolo", f"data.path={demo}"])).data, cfg.task)
    assert info.hash == local.hash and info.counts == local.counts and info.source == URI
    empty = sum(o["Size"] == 0 for o in _s3().list_objects_v2(Bucket="datasets", Prefix="yard/")["Contents"])
    assert info.data_yaml.is_relative_to(cache / "s3" / "datasets") and len(got) == len(keys) + 1 - empty, \
        "every object once (empty label files need no request), and the yaml to check it"
    # A rerun with unchanged objects lists the prefix and downloads nothing.
    got.clear()
    assert resolve_dataset(cfg.data, cfg.task).data_yaml == info.data_yaml and got == []
    # A changed object is a new copy.
    _s3().put_object(Bucket="datasets", Key="yard/labels/train/extra.txt", Body=b"")
    assert resolve_dataset(cfg.data, cfg.task).data_yaml != info.data_yaml

    # Training on it (against the stack's server) records the S3 URI as the dataset's source.
    from gfcore.jobs.train import train

    train(to_typed(compose([*ON_S3, "train.epochs=1", "registry.register=false"])))
    exp = mlflow.get_experiment_by_name("demo/local-plant1/yard")
    [run] = mlflow.MlflowClient().search_runs([exp.experiment_id], "tags.`exp.type` = 'train'", max_results=1)
    sources = {json.loads(d.dataset.source)["uri"] for d in run.inputs.dataset_inputs}
    assert {d.dataset.source_type for d in run.inputs.dataset_inputs} == {"s3"}
    assert "s3://datasets/yard/images/train" in sources and run.data.tags["data.hash"]


def test_bad_s3_data_is_refused_and_nothing_is_cached(stack, cache, monkeypatch):
    s3 = _s3()
    if "Buckets" not in s3.list_buckets() or "datasets" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="datasets")
    s3.put_object(Bucket="datasets", Key="escape/data.yaml", Body=b"train: ../yard/images/train\nval: images/val\n"
                                                                   b"names: {0: helmet, 1: vest}\n")
    task = to_typed(compose(["scenario=smoke"])).task

    def resolve(path):
        return resolve_dataset(to_typed(compose(["scenario=smoke", "data=yolo", f"data.path={path}"])).data, task)

    with pytest.raises(DataError, match="points outside the yaml's prefix"):
        resolve("s3://datasets/escape/data.yaml")
    with pytest.raises(DataError, match="the bucket does not exist"):
        resolve("s3://no-such-bucket/yard/data.yaml")
    with pytest.raises(DataError, match="there is no s3://datasets/nothing/data.yaml"):
        resolve("s3://datasets/nothing/data.yaml")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-key")
    with pytest.raises(DataError, match="refused the credentials"):
        resolve(URI)
    leftovers = [p for p in (cache / "s3").rglob("*")] if (cache / "s3").exists() else []
    assert not [p for p in leftovers if p.is_file()], f"half-written: {leftovers}"
