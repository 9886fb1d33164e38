"""DVC-tracked datasets read at a git revision (gfcore.data.dvc) against the stack's SeaweedFS as the DVC remote:
real git, real DVC, real S3. Two revisions give two copies, each with what was committed; a cached copy is used
without the remote; each thing that can be wrong is one clear error with nothing left in the cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from gfcore.config import compose, to_typed
from gfcore.core.errors import ConfigError, DataError
from gfcore.data import dvc
from gfcore.data.dataset import resolve_dataset
from tests.conftest import run_cli, run_entrypoint, runs_of
from tests.data import dvc_repo
from tests.stack.servers import stack_missing

pytestmark = pytest.mark.skipif(bool(stack_missing()) and not os.environ.get("GF_REQUIRE_STACK"),
                                reason=f"needs {' and '.join(stack_missing())}")

YAML = "datasets/yard/data.yaml"
BUCKET = "dvc-data"


@pytest.fixture(scope="module")
def stack(stack_pool):
    with stack_pool.shared() as running:
        yield running


@pytest.fixture(scope="module")
def demo_yaml() -> Path:
    cfg = to_typed(compose(["scenario=smoke"]))
    return resolve_dataset(cfg.data, cfg.task).data_yaml


@pytest.fixture(scope="module")
def repo(stack, demo_yaml, tmp_path_factory):
    """The yard dataset at two pushed revisions: `first`, and HEAD `second` with one label box dropped; the
    label files' texts at each."""
    root = dvc_repo.make_repo(tmp_path_factory.mktemp("dvc") / "repo", demo_yaml, BUCKET)
    first = dvc_repo.git(root, "rev-parse", "HEAD").strip()
    before = _labels(root / "datasets/yard")
    second = dvc_repo.commit_label_change(root)
    return {"root": root, "first": first, "second": second, "labels": {first: before, second: _labels(
        root / "datasets/yard")}}


def _labels(folder: Path) -> dict[str, str]:
    return {f.relative_to(folder / "labels").as_posix(): f.read_text() for f in sorted((folder / "labels").rglob("*.txt"))}


def _cached(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "dvc").iterdir()) if (cache / "dvc").is_dir() else []


def test_two_revisions_cached_and_located(repo, demo_yaml, tmp_path, monkeypatch):
    root, first, second = repo["root"], repo["first"], repo["second"]
    assert dvc.locate(str(root / YAML), None) == (str(root), YAML)
    assert dvc.locate(str(root / "datasets"), None) == (str(root), "datasets"), "any path inside the work tree"
    assert dvc.locate(str(demo_yaml), None) is None and dvc.locate(str(tmp_path / "x/data.yaml"), None) is None
    assert dvc.locate(YAML, str(root)) == (str(root), YAML)
    shutil.rmtree(root / ".dvc" / "cache")  # the data now comes from the remote only

    cache = tmp_path / "cache"
    old = dvc.fetch(*dvc.locate(str(root / YAML), None), first, cache)
    new = dvc.fetch(str(root), YAML, None, cache)  # HEAD, resolved to its sha
    assert (old.rev, new.rev) == (first, second) and old.hash != new.hash
    assert old.uri == f"git+{root}#{YAML}@{first}" and dvc.parse_uri(old.uri) == (str(root), YAML, first)
    pairs = {name: _md5(dvc_repo.git(root, "show", f"{first}:datasets/yard/{name}.dvc")) for name in ("images",
                                                                                                      "labels")}
    assert old.hash == hashlib.sha256(json.dumps(sorted(pairs.items())).encode()).hexdigest(), "documented hash"
    for copy in (old, new):
        folder = copy.data_yaml.parent
        assert _labels(folder) == repo["labels"][copy.rev], "what was committed at that revision"
        assert len(list((folder / "images/train").glob("*.png"))) == len(list((demo_yaml.parent / "images/train")
                                                                              .glob("*.png")))
        spec = _yaml(copy.data_yaml)
        assert spec["path"] == str(folder) and spec["names"] == _yaml(demo_yaml)["names"]
    assert not (root / ".dvc" / "cache").exists(), "DVC read the remote without filling the repo's cache"

    # With refused keys a fetch that needs the remote fails, and one whose copy is cached does not touch it.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-key")
    with pytest.raises(DataError, match="refused the credentials"):
        dvc.fetch(str(root), YAML, first, tmp_path / "other")
    assert _cached(tmp_path / "other") == []
    assert dvc.fetch(str(root), YAML, first, cache) == old and len(_cached(cache)) == 2
    monkeypatch.undo()

    # The same revision through a git URL (DVC clones it) is the same copy.
    by_url = dvc.fetch(f"file://{root}", YAML, "main", cache)
    assert (by_url.rev, by_url.hash, by_url.data_yaml, by_url.repo) == (second, new.hash, new.data_yaml,
                                                                       f"file://{root}")


@pytest.fixture(scope="module")
def other(stack, demo_yaml, tmp_path_factory):
    """A second repository: `unpushed` (a remote, the data never pushed), `no_remote` (the remote removed),
    `git_only` (a dataset folder committed to git, not to DVC)."""
    root = dvc_repo.init_repo(tmp_path_factory.mktemp("dvc") / "other")
    dvc_repo.dvc(root, "remote", "add", "-d", "storage", f"s3://{BUCKET}/never-pushed")
    dvc_repo.dvc(root, "remote", "modify", "storage", "endpointurl", os.environ["MLFLOW_S3_ENDPOINT_URL"])
    dvc_repo.add_dataset(root, demo_yaml, push=False)
    revs = {"unpushed": dvc_repo.git(root, "rev-parse", "HEAD").strip()}
    dvc_repo.dvc(root, "remote", "remove", "storage")
    dvc_repo.git(root, "commit", "-qam", "no remote")
    revs["no_remote"] = dvc_repo.git(root, "rev-parse", "HEAD").strip()
    plain = root / "plain"
    shutil.copytree(demo_yaml.parent / "labels", plain / "labels")  # in git, not in DVC
    (plain / "data.yaml").write_text("train: images/train\nnames:\n  0: helmet\n  1: vest\n")
    dvc_repo.git(root, "add", "-A")
    dvc_repo.git(root, "commit", "-qm", "a git-only folder")
    revs["git_only"] = dvc_repo.git(root, "rev-parse", "HEAD").strip()
    return root, revs


@pytest.mark.parametrize("case, error, says", [
    ("bad_rev", DataError, r"there is no revision 'no-such-branch' in .*: set data.rev"),
    ("missing_path", DataError, r"there is no datasets/nope/data.yaml in .* at main \(\w{12}\)"),
    ("git_only", DataError, r"nothing under plain is DVC-tracked, so it is not a DVC dataset"),
    ("no_remote", ConfigError, r"no default DVC remote committed at that revision.*dvc remote add -d NAME"),
    ("unpushed", DataError, r"is not on the DVC remote s3://dvc-data/never-pushed; `dvc push` was probably not run"),
    ("no_dvc", ConfigError, r"needs DVC: pip install 'guardianflow\[dvc\]'"),
])
def test_errors_are_clear_and_cache_stays_empty(repo, other, case, error, says, tmp_path, monkeypatch):
    root, revs = other
    cache = tmp_path / "cache"
    where = {"bad_rev": (repo["root"], YAML, "no-such-branch"), "missing_path": (repo["root"], "datasets/nope/"
                                                                                 "data.yaml", "main"),
             "git_only": (root, "plain/data.yaml", revs["git_only"]), "no_remote": (root, YAML, revs["no_remote"]),
             "unpushed": (root, YAML, revs["unpushed"]), "no_dvc": (root, YAML, None)}[case]
    if case == "no_dvc":
        monkeypatch.setitem(sys.modules, "dvc.api", None)  # what `import dvc.api` meets where DVC is not installed
    with pytest.raises(error, match=says):
        dvc.fetch(str(where[0]), where[1], where[2], cache)
    assert _cached(cache) == [] and not list(cache.glob("dvc/.tmp-*")), "nothing half-written"


def _md5(dvc_file: str) -> str:
    import yaml

    return yaml.safe_load(dvc_file)["outs"][0]["md5"]


def _yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


@pytest.mark.slow
def test_runs_at_two_revisions_record_two_hashes_and_reproduce_reads_the_first(repo, mlflow_store, tmp_path,
                                                                              monkeypatch):
    """`data.path` inside the repository: a run at `data.rev` (the first commit) and one at HEAD record their commits
    and DVC hashes; `reproduce` of the first, after its data left this machine, trains on the first commit again."""
    root, first, second = repo["root"], repo["first"], repo["second"]
    monkeypatch.setenv("GF_CACHE_DIR", str(tmp_path / "cache"))
    base = ["guardianflow.train", "scenario=smoke", "train.epochs=1", "registry.register=false", "data=yolo",
            "data.name=yard", f"data.path={root / YAML}"]
    for label, extra in (("first", [f"data.rev={first}"]), ("head", [])):
        proc = run_entrypoint([*base, *extra], mlflow_store, tmp_path / label)
        assert proc.returncode == 0, proc.stderr[-3000:]
    old, new = runs_of(mlflow_store)
    assert (old.data.tags["data.rev"], new.data.tags["data.rev"]) == (first, second)
    assert old.data.tags["data.digest"] != new.data.tags["data.digest"]
    assert old.data.tags["data.hash"] != new.data.tags["data.hash"]
    assert old.data.tags["data.uri"] == f"git+{root}#{YAML}@{first}"
    [source] = {json.loads(i.dataset.source)["uri"] for i in old.inputs.dataset_inputs}
    assert source == old.data.tags["data.uri"]

    shutil.rmtree(tmp_path / "cache")
    proc = run_cli(mlflow_store, "reproduce", old.info.run_id)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"reproducing on the same data: {root / YAML} at git {first[:12]}" in proc.stderr
    [again] = [r for r in runs_of(mlflow_store) if r.data.tags.get("gf.reproduced_from") == old.info.run_id]
    assert again.data.tags["data.rev"] == first and again.data.tags["data.digest"] == old.data.tags["data.digest"]
    assert again.data.tags["data.hash"] == old.data.tags["data.hash"]
