"""Dataset versions on the local stack's S3 (SeaweedFS): `data push` stores content-addressed, immutable versions
(identical content is one version and uploads nothing), `data diff` names what changed, a run pinned to a version
trains on it and records it, and `reproduce` fetches that version again after a newer one became `latest`."""

from __future__ import annotations

import json
import os
import shutil

import mlflow
import pytest
import yaml

from gfcore import cli
from gfcore.config import compose, to_container, to_typed
from gfcore.core.errors import ConfigError, DataError
from gfcore.data import s3 as s3data
from gfcore.data.dataset import resolve_dataset
from gfcore.data.versions import store as versions
from gfcore.orchestration import reproduce
from tests.conftest import run_cli, run_entrypoint, runs_of
from tests.stack.servers import stack_missing

pytestmark = pytest.mark.skipif(bool(stack_missing()) and not os.environ.get("GF_REQUIRE_STACK"),
                                reason=f"needs {' and '.join(stack_missing())}")

S3_KEYS = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.fixture(scope="module")
def stack(stack_pool):
    with stack_pool.shared() as running:
        yield running


@pytest.fixture
def s3_env(stack, monkeypatch, tmp_path):
    """This process and the processes it starts see the stack's S3 (not its tracking server) and a cache of their
    own."""
    for key in S3_KEYS:
        monkeypatch.setenv(key, stack["env"][key])
    monkeypatch.setenv("GF_DATA_STORE", "s3://mlflow/test-datasets")
    monkeypatch.setenv("GF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _cli_json(*args: str, capsys) -> dict:
    capsys.readouterr()
    assert cli.main(["data", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _counting_client(monkeypatch) -> list[str]:
    """Every object key this process writes to S3 (boto3's own event hooks on a real client)."""
    written: list[str] = []
    real = s3data.client

    def client():
        c = real()
        for op in ("PutObject", "CreateMultipartUpload"):
            c.meta.events.register(f"provide-client-params.s3.{op}", lambda params, **_: written.append(params["Key"]))
        return c

    monkeypatch.setattr(s3data, "client", client)
    return written


@pytest.fixture(scope="module")
def pushed(stack, tmp_path_factory):
    """The smoke set pushed as yard v1, and v2 with one label file changed (one box dropped): their ids and the
    local folders."""
    mp = pytest.MonkeyPatch()
    for key in S3_KEYS:
        mp.setenv(key, stack["env"][key])
    mp.setenv("GF_DATA_STORE", "s3://mlflow/test-datasets")
    cfg = to_typed(compose(["scenario=smoke"]))
    demo = resolve_dataset(cfg.data, cfg.task)
    v1_dir = tmp_path_factory.mktemp("yard-v1")
    shutil.copytree(demo.root / "images", v1_dir / "images")
    shutil.copytree(demo.root / "labels", v1_dir / "labels")
    (v1_dir / "data.yaml").write_text("train: images/train\nval: images/val\ntest: images/test\n"
                                      "names: {0: helmet, 1: vest}\n")
    v2_dir = tmp_path_factory.mktemp("yard-v2")
    shutil.copytree(v1_dir, v2_dir, dirs_exist_ok=True)
    changed = next(p for p in sorted((v2_dir / "labels" / "train").glob("*.txt")) if len(p.read_text().split("\n")) > 2)
    lines = changed.read_text().splitlines()
    dropped = ["helmet", "vest"][int(lines[0].split()[0])]
    changed.write_text("\n".join(lines[1:]) + "\n")
    try:
        first = versions.push(v1_dir / "data.yaml", "yard", versions.Store.at())
        yield {"v1": first["version"], "v1_digest": first["digest"], "v1_dir": v1_dir, "v2_dir": v2_dir,
               "changed": changed.relative_to(v2_dir).as_posix(), "dropped": dropped}
    finally:
        mp.undo()


def test_push_twice_is_one_version_and_a_changed_label_is_a_new_one(pushed, s3_env, capsys, monkeypatch, tmp_path):
    written = _counting_client(monkeypatch)
    again = _cli_json("push", str(pushed["v1_dir"] / "data.yaml"), "yard", capsys=capsys)
    assert again["version"] == pushed["v1"] and not again["new"]
    assert again["uploaded"] == {"files": 0, "bytes": 0} and written == [], "identical content: nothing uploaded"

    v2 = _cli_json("push", str(pushed["v2_dir"] / "data.yaml"), "yard", "--alias", "audited-2026-q4", capsys=capsys)
    assert v2["new"] and v2["version"] != pushed["v1"]
    blobs = [k for k in written if "/objects/" in k]
    assert v2["uploaded"]["files"] == 1 and len(blobs) == 1, "only the changed label file is new content"
    assert written[-1].endswith("aliases/audited-2026-q4.json") and \
        written.index(next(k for k in written if k.endswith(f"versions/{v2['version']}.json"))) > written.index(blobs[0]), \
        "the manifest is written after the files it lists"

    listed = _cli_json("versions", "yard", capsys=capsys)
    assert [v["version"] for v in listed] == [pushed["v1"], v2["version"]]
    assert listed[1]["aliases"] == ["audited-2026-q4", "latest"] and listed[0]["aliases"] == []
    assert listed[0]["boxes"][pushed["dropped"]] == listed[1]["boxes"][pushed["dropped"]] + 1

    d = _cli_json("diff", f"yard@{pushed['v1']}", "yard@latest", capsys=capsys)
    assert d["images"]["added"] == [] and d["images"]["removed"] == []
    [change] = d["images"]["changed"]
    assert change["label"] == pushed["changed"] and change["what"] == "labels"
    assert change["boxes"] == {pushed["dropped"]: -1}
    assert d["boxes"][pushed["dropped"]]["removed"] == 1 and d["boxes"][pushed["dropped"]]["added"] == 0
    assert d["boxes"][pushed["dropped"]]["after"] == d["boxes"][pushed["dropped"]]["before"] - 1
    assert cli.main(["data", "diff", f"yard@{pushed['v1'][:6]}", "yard@audited-2026-q4"]) == 0
    text = capsys.readouterr().out
    assert pushed["changed"] in text and f"{pushed['dropped']} -1" in text, text

    # `get` writes a version out; its files are the ones pushed.
    assert cli.main(["data", "get", f"yard@{pushed['v1']}", "-o", str(tmp_path / "got")]) == 0
    assert (tmp_path / "got" / pushed["changed"]).read_text() == (pushed["v1_dir"] / pushed["changed"]).read_text()
    got = yaml.safe_load((tmp_path / "got" / "data.yaml").read_text())
    assert got == yaml.safe_load((pushed["v1_dir"] / "data.yaml").read_text())


def test_runs_resolve_aliases_and_a_cached_version_needs_no_s3(pushed, s3_env, monkeypatch):
    latest = versions.resolve("yard", "latest", versions.Store.at())
    cfg = to_typed(compose(["scenario=smoke", "data=versioned", "data.name=yard"]))
    info = resolve_dataset(cfg.data, cfg.task)
    assert info.pin.version == latest != pushed["v1"], "`latest` is the newest push"
    pinned = to_typed(compose(["scenario=smoke", "data=versioned", "data.name=yard", f"data.version={pushed['v1']}"]))
    first = resolve_dataset(pinned.data, pinned.task)
    assert first.pin.digest == pushed["v1_digest"] and first.data_yaml.is_relative_to(s3_env / "versions" / "yard")
    local = resolve_dataset(to_typed(compose(["scenario=smoke", "data=yolo", "data.name=yard",
                                              f"data.path={pushed['v1_dir'] / 'data.yaml'}"])).data, pinned.task)
    assert first.hash == local.hash and first.counts == local.counts, "the copy is the data that was pushed"
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:9")  # S3 gone: a cached version is enough
    assert resolve_dataset(pinned.data, pinned.task).pin == first.pin


def test_bad_input_is_refused_before_anything_is_stored(pushed, s3_env, tmp_path, capsys, monkeypatch):
    store = versions.Store.at()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "data.yaml").write_text("train: images\n")
    with pytest.raises(DataError, match="has no `names`"):
        versions.push(tmp_path / "bad" / "data.yaml", "yard", store)
    broken = tmp_path / "broken"
    shutil.copytree(pushed["v1_dir"], broken)
    label = sorted((broken / "labels" / "val").glob("*.txt"))[0]
    label.write_text("7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=rf"{label.name}:1: class 7 is not one of the yaml's 2 classes"):
        versions.push(broken / "data.yaml", "yard", store)
    with pytest.raises(ConfigError, match="there is no dataset 'yrad'.*it holds .*yard"):
        versions.resolve("yrad", "latest", store)
    with pytest.raises(ConfigError, match=rf"yard has no version or alias 'v9'.*Versions: .*{pushed['v1']}"):
        versions.resolve("yard", "v9", store)
    assert cli.main(["data", "alias", "yard@0000000000ab", "gold"]) == 2
    assert "no version or alias '0000000000ab'" in capsys.readouterr().err
    assert "gold" not in versions.aliases("yard", store)

    # `reproduce` of a run whose version is gone refuses before anything starts, naming it and where it looked.
    logged = to_container(compose(["scenario=smoke", "data=versioned", "data.name=yard"]))
    uri = store.manifest_uri("yard", "0000deadbeef")
    with pytest.raises(DataError, match=rf"run r1 trained on yard@0000deadbeef \({uri}\), which cannot be fetched: "
                                        rf"yard has no version or alias '0000deadbeef' in s3://mlflow/test-datasets"):
        reproduce._pin_data("r1", {"data.version": "0000deadbeef", "data.uri": uri}, logged)
    # A run that read a plain folder is reproduced on what the folder holds now, with a note saying so.
    logged = to_container(compose(["scenario=smoke", "data=yolo", "data.name=yard",
                                   f"data.path={pushed['v1_dir'] / 'data.yaml'}"]))
    capsys.readouterr()
    reproduce._pin_data("r2", {"data.hash": "0" * 64}, logged)
    note = capsys.readouterr().err
    assert "is not a pinned version (push it with `guardianflow data push`)" in note and "results may differ" in note

    # An interrupted push leaves no version: the files it sent wait, unlisted, for the next push.
    before = [v["version"] for v in versions.versions("yard", store)]
    shutil.copytree(pushed["v1_dir"], tmp_path / "v3")
    for p in sorted((tmp_path / "v3" / "labels" / "test").glob("*.txt"))[:3]:
        p.write_text(p.read_text() + "0 0.5 0.5 0.2 0.2\n")
    real = s3data.client

    def failing():
        c = real()
        calls = []

        def refuse(params, **_):
            calls.append(params["Key"])
            if len(calls) >= 2:
                raise KeyboardInterrupt
        c.meta.events.register("provide-client-params.s3.PutObject", refuse)
        return c

    monkeypatch.setattr(s3data, "client", failing)
    with pytest.raises(KeyboardInterrupt):
        versions.push(tmp_path / "v3" / "data.yaml", "yard", store)
    assert [v["version"] for v in versions.versions("yard", store)] == before
    monkeypatch.setattr(s3data, "client", real)
    done = versions.push(tmp_path / "v3" / "data.yaml", "yard", store)
    assert done["new"] and done["uploaded"]["files"] == 3 - 1, "the file sent before the stop is not sent again"


@pytest.mark.slow
def test_a_run_pinned_to_version_1_and_its_reproduction_train_on_version_1(pushed, s3_env, mlflow_store, tmp_path,
                                                                           capsys):
    newest = versions.push(pushed["v2_dir"] / "data.yaml", "yard", versions.Store.at())["version"]
    assert newest != pushed["v1"] and versions.resolve("yard", "latest", versions.Store.at()) == newest
    proc = run_entrypoint(["guardianflow.train", "scenario=smoke", "train.epochs=1", "data=versioned",
                           "data.name=yard", f"data.version={pushed['v1']}"], mlflow_store, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = runs_of(mlflow_store)
    tags = run.data.tags
    uri = f"s3://mlflow/test-datasets/yard/versions/{pushed['v1']}.json"
    assert tags["data.version"] == pushed["v1"] and tags["data.digest"] == pushed["v1_digest"]
    assert tags["data.uri"] == uri
    assert {json.loads(i.dataset.source)["uri"] for i in run.inputs.dataset_inputs} == {uri}
    client = mlflow.MlflowClient()
    [mv] = client.search_model_versions(f"run_id='{run.info.run_id}'")
    assert mv.tags["data.version"] == pushed["v1"] and mv.tags["data.digest"] == pushed["v1_digest"]
    assert f"yard@{pushed['v1']}" in mv.description and uri in mv.description

    # Reproduced on a machine that has neither version: it fetches version 1, not `latest`.
    shutil.rmtree(s3_env)
    proc = run_cli(mlflow_store, "reproduce", run.info.run_id)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"reproducing on the same data: yard@{pushed['v1']}" in proc.stderr
    again = [r for r in runs_of(mlflow_store) if r.data.tags.get("gf.reproduced_from") == run.info.run_id]
    assert len(again) == 1 and again[0].data.tags["data.digest"] == pushed["v1_digest"]
    assert again[0].data.tags["data.hash"] == tags["data.hash"]
    assert sorted(p.name for p in (s3_env / "versions" / "yard").iterdir()) == [pushed["v1"]]

    # The champion trained on version 1 while `latest` is newer: the fleet summary, the stale_champion alert and
    # the data_changed trigger name both versions and what changed; the retrain would train on the newer one.
    client.set_registered_model_alias(mv.name, "champion", mv.version)
    summary = _cli_json_of(capsys, "metrics", "summary")
    [row] = [r for r in summary if r["model"] == mv.name]
    change = f"images +0 -0, 1 changed; boxes {pushed['dropped']} -1"
    assert row["data"] == f"yard@{pushed['v1']}" and row["data_newer"] == f"yard@{newest}: {change}"
    alerts = _cli_json_of(capsys, "alerts", "list", "--no-record", "+rules.low_accuracy.enabled=false",
                          "+rules.failed_runs.enabled=false")
    [stale] = [a for a in alerts["open"] if a["rule"] == "stale_champion"]
    assert stale["evidence"]["data_then"] == f"yard@{pushed['v1']}"
    assert stale["evidence"]["data_now"] == f"yard@{newest} (latest)" and stale["evidence"]["data_diff"] == change
    assert f"trained on yard@{pushed['v1']}; newer: yard@{newest} (latest): {change}" in stale["message"]
    decisions = _cli_json_of(capsys, "optimize", "check", "+triggers.low_accuracy.enabled=false",
                             "+triggers.new_candidate.enabled=false")["decisions"]
    [retrain] = [d for d in decisions if d["trigger"] == "data_changed"]
    assert retrain["evidence"]["data_version_now"] == newest and f"(yard@{newest} (latest))" in retrain["action"]


def _cli_json_of(capsys, *args: str):
    capsys.readouterr()
    assert cli.main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)
