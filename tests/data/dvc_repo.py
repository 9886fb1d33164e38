"""DVC-tracked git repositories for the tests, built the way a user would: the dataset's yaml in git, its images/
and labels/ folders `dvc add`ed, the default remote S3 (the stack's SeaweedFS), everything committed and pushed.
Setup only: real `git` and `python -m dvc` in subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

DATASET = Path("datasets") / "yard"  # where the dataset goes inside the repository
QUIET = {"DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}


def git(repo: Path, *args: str) -> str:
    return _run(repo, "git", *args)


def dvc(repo: Path, *args: str) -> str:
    return _run(repo, sys.executable, "-m", "dvc", *args)


def init_repo(folder: Path) -> Path:
    """An empty git repository with DVC initialised, its own committer, one first commit."""
    folder.mkdir(parents=True, exist_ok=True)
    git(folder, "init", "-q", "-b", "main")
    git(folder, "config", "user.name", "GuardianFlow tests")
    git(folder, "config", "user.email", "tests@guardianflow.invalid")
    dvc(folder, "init", "-q")
    git(folder, "commit", "-q", "-m", "dvc init")
    return folder


def add_dataset(repo: Path, dataset_yaml: Path, push: bool = True) -> Path:
    """Copy the YOLO dataset of `dataset_yaml` (the yaml, its images/ and labels/) into `repo/datasets/yard/`, its
    yaml without `path:` (so the splits are read relative to it), `dvc add` the two folders, commit (and push)."""
    spec = yaml.safe_load(dataset_yaml.read_text())
    root = Path(spec.pop("path", None) or dataset_yaml.parent)
    target = repo / DATASET
    target.mkdir(parents=True, exist_ok=True)
    for folder in ("images", "labels"):
        shutil.copytree(root / folder, target / folder, ignore=shutil.ignore_patterns("*.cache"))
    (target / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    dvc(repo, "add", "-q", str(DATASET / "images"), str(DATASET / "labels"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the yard dataset")
    if push:
        dvc(repo, "push", "-q")
    return target / "data.yaml"


def make_repo(folder: Path, dataset_yaml: Path, bucket: str) -> Path:
    """A git repository at `folder` with the dataset under datasets/yard/, its default DVC remote `storage` =
    s3://BUCKET/dvcstore at MLFLOW_S3_ENDPOINT_URL (committed, as a team shares it; the keys stay in the
    environment, where s3fs reads them), pushed; the bucket is created when missing."""
    import boto3

    endpoint = os.environ["MLFLOW_S3_ENDPOINT_URL"]
    s3 = boto3.session.Session().client("s3", endpoint_url=endpoint)
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    repo = init_repo(folder)
    dvc(repo, "remote", "add", "-d", "storage", f"s3://{bucket}/dvcstore")
    dvc(repo, "remote", "modify", "storage", "endpointurl", endpoint)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "DVC remote: storage")
    add_dataset(repo, dataset_yaml)
    return repo


def commit_label_change(repo: Path, push: bool = True) -> str:
    """Drop the last box of the first non-empty train label file, `dvc add`, commit (and push); the new sha."""
    labels = repo / DATASET / "labels"
    changed = next(f for f in sorted((labels / "train").glob("*.txt")) if f.read_text().strip())
    lines = changed.read_text().splitlines()
    changed.unlink()  # `dvc add` may have linked it to the cache: write a new file, never into the cached one
    changed.write_text("".join(f"{line}\n" for line in lines[:-1]))
    dvc(repo, "add", "-q", str(DATASET / "labels"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"labels: drop a box of {changed.name}")
    if push:
        dvc(repo, "push", "-q")
    return git(repo, "rev-parse", "HEAD").strip()


def _run(cwd: Path, *cmd: str) -> str:
    done = subprocess.run(cmd, cwd=cwd, env={**os.environ, **QUIET}, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed in {cwd} ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout
