"""YOLO datasets in a DVC-tracked git repository, read at a git revision through DVC's Python API
(`dvc.api.DVCFileSystem`): `data.path` inside a local work tree whose root has `.dvc/`, or `data.repo` (a git URL
or a local repository) with `data.path` relative to it; `data.rev` is a branch, tag or sha (default HEAD, never the
uncommitted workspace).

The data comes from the repository's DVC cache or its default remote and is copied once into
`$GF_CACHE_DIR/dvc/`, keyed by content: a second fetch of the same revision reads git (a URL is cloned again) but
downloads no data. The copy is built in a temporary folder renamed into place. The run records the commit sha, DVC's hash of the data and `git+REPO#PATH@SHA`
(`DvcCopy.uri`), which is enough to fetch exactly the same files again on another machine: that is why a
repository without a committed default remote, or whose remote lacks the data (no `dvc push`), is refused even
when this machine's DVC cache has the data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from gfcore.core.errors import ConfigError, DataError
from gfcore.data.cached import build_once
from gfcore.data.layout import relative_yaml

INSTALL = "pip install 'guardianflow[dvc]'"


@dataclass(frozen=True)
class DvcCopy:
    """A local copy of a DVC-tracked dataset and what names it exactly."""

    data_yaml: Path  # the copy's yaml, its `path:` the copy's folder (what Ultralytics is given)
    repo: str  # an absolute local path, or the git URL as given
    path: str  # the yaml's path inside the repository (posix)
    rev: str  # the full commit sha the revision resolved to
    hash: str  # see `_data_hash`

    @property
    def uri(self) -> str:
        """`git+REPO#PATH@SHA`: fetch it again with `fetch(*parse_uri(uri), cache_root)`."""
        return f"git+{self.repo}#{self.path}@{self.rev}"


def parse_uri(uri: str) -> tuple[str, str, str]:
    """(repo, path, rev) of a `DvcCopy.uri`."""
    body, _, rev = uri.removeprefix("git+").rpartition("@")
    repo, _, path = body.partition("#")
    if not (uri.startswith("git+") and repo and path and rev):
        raise ConfigError(f"{uri!r} is not a DVC data URI; it reads git+REPO#PATH@REVISION.")
    return repo, path, rev


def locate(path: str, repo: str | None) -> tuple[str, str] | None:
    """(repo, path inside it) when the dataset is a DVC one: `repo` given (then `path` is relative to it), or `path` a
    local path inside a git work tree whose root has a `.dvc/` folder; None otherwise (a plain local dataset).
    Only the file system is read (no git, no DVC), so a plain dataset costs nothing."""
    if repo:
        inner = PurePosixPath(str(path or "").replace("\\", "/"))
        if not path or inner.is_absolute() or ".." in inner.parts:
            raise ConfigError(f"data.path={path}: with data.repo set, data.path is the yaml's path inside the "
                              "repository (relative, e.g. datasets/yard/data.yaml).")
        local = Path(repo).expanduser()
        return (str(local.resolve()) if local.is_dir() else repo), inner.as_posix()
    if not path or "://" in str(path):
        return None
    local = Path(path).expanduser().resolve()
    for folder in local.parents:
        if (folder / ".git").exists():  # a folder (a clone) or a file (a worktree): the work tree's root
            return (str(folder), local.relative_to(folder).as_posix()) if (folder / ".dvc").is_dir() else None
    return None


def fetch(repo: str, path: str, rev: str | None, cache_root: Path) -> DvcCopy:
    """Resolve `rev` (None: HEAD) to a commit sha, and copy the dataset of the yaml at `path` (the yaml's folder:
    the yaml, images/ and labels/ of each split) into `cache_root / "dvc" / <key>`; a copy already there is used
    as is (a second fetch downloads nothing). Every failure found before the download is one clear error."""
    with _opened(repo, rev) as fs:
        sha = fs.repo.get_rev()
        at = f"{path} in {repo} at {rev or 'HEAD'} ({sha[:12]})"
        if not fs.isfile(path):
            raise DataError(f"there is no {at}: check data.path (relative to the repository's root) and data.rev "
                            f"(`git ls-tree -r --name-only {sha[:12]}` in the repository lists what is there).")
        folder = PurePosixPath(path).parent.as_posix().removeprefix(".")
        outs = _outs(fs, folder)
        if not outs:
            raise DataError(f"{at}: nothing under {folder or 'the root'} is DVC-tracked, so it is not a DVC dataset "
                            "(files only in git are not fetched through DVC). `dvc add` its images/ and labels/ "
                            "folders, commit and `dvc push`, or point data.path at a plain local copy.")
        remote = _remote(fs, at)
        spec = relative_yaml(fs.read_text(path), at, "a DVC dataset names its splits relative to the yaml (drop "
                             "`path:` or make it `.`), so any clone can read it.")
        data_hash = _data_hash(outs)
        key = _cache_key(fs, folder, data_hash)
        target = cache_root / "dvc" / key
        name = PurePosixPath(path).name

        def build(tmp: Path) -> dict:
            _on_remote(fs, remote, outs, at)
            _download(fs, folder, tmp / "data", at)
            spec["path"] = str(target / "data" / str(spec.get("path") or "."))  # where the copy will be
            (tmp / "data" / name).write_text(yaml.safe_dump(spec, sort_keys=False))
            return {"source": f"git+{repo}#{path}@{sha}", "rev": sha, "hash": data_hash, "remote": remote[1],
                    "outs": dict(outs)}

        copy = build_once(target, build, f"the DVC dataset {at}")
    return DvcCopy(data_yaml=copy / "data" / name, repo=repo, path=path, rev=sha, hash=data_hash)


# -- helpers -------------------------------------------------------------------------------------------------


@contextmanager
def _opened(repo: str, rev: str | None):
    """DVC's file system of `repo` at `rev`. A local repository is read at HEAD when no revision is given (DVC
    would read its workspace); a URL is cloned by DVC into a temporary folder, removed afterwards (DVC keeps its
    clones process-wide, so fetches of URLs are not for parallel threads of one process). DVC logs warnings
    through its `dvc` logger and may send analytics: neither belongs in a training's output."""
    try:
        from dvc.api import DVCFileSystem
        from dvc.exceptions import DvcException
        from dvc.repo.open_repo import clean_repos
        from dvc.scm import RevError
    except ImportError:
        raise ConfigError(f"{repo} is a DVC repository; reading a dataset tracked there needs DVC: {INSTALL}.") from None
    local = os.path.isdir(repo)
    if not local and ":" not in repo:  # neither a folder nor a URL (https://, file://, git@host:path)
        raise ConfigError(f"data.repo={repo}: no such folder; set it to a git repository (a local folder or a URL).")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    logger, level = logging.getLogger("dvc"), logging.getLogger("dvc").level
    logger.setLevel(logging.ERROR)
    fs = DVCFileSystem(repo, rev=rev or ("HEAD" if local else None))
    try:
        try:
            fs.repo  # noqa: B018 (opens the repository: clones a URL, resolves the revision)
        except RevError:
            raise DataError(f"there is no revision {rev or 'HEAD'!r} in {repo}: set data.rev to one of its branches, "
                            "tags or commits (`git log --oneline --all` lists them).") from None
        except DvcException as exc:
            raise DataError(f"cannot open the repository {repo}: {exc}. Set data.repo to a git repository (a URL "
                            "or a local folder) with DVC initialised.") from None
        try:
            yield fs
        except DvcException as exc:  # a .dvc file or dvc.yaml of that revision that DVC cannot read
            raise DataError(f"DVC cannot read {repo} at {rev or 'HEAD'}: {exc}. Fix the repository (`dvc status` "
                            "there) or choose another data.rev.") from None
    finally:
        fs.close()
        if not local:
            clean_repos()
        logger.setLevel(level)


def _outs(fs: Any, folder: str) -> dict[str, str]:
    """{path relative to `folder`: md5} of the DVC outputs at or under `folder`, or the one enclosing it."""
    root = PurePosixPath("/" + folder)
    found: dict[str, str] = {}
    for out in fs.repo.index.outs:
        out_path, value = PurePosixPath(out.fs_path), out.hash_info.value if out.hash_info else None
        if value and out_path.is_relative_to(root):
            found[out_path.relative_to(root).as_posix()] = value
        elif value and root.is_relative_to(out_path):
            return {".": value}  # the whole folder is inside one tracked folder
    return found


def _data_hash(outs: dict[str, str]) -> str:
    """DVC's own md5 of the tracked folder (e.g. `...e8427e.dir`) when one output holds the dataset; with several
    (images/ and labels/ added apart), the sha256 of the JSON list of their sorted [path under the yaml's folder,
    md5] pairs. Either way it changes exactly when the DVC-tracked content changes."""
    if len(outs) == 1:
        return next(iter(outs.values()))
    return hashlib.sha256(json.dumps(sorted(outs.items())).encode()).hexdigest()


def _cache_key(fs: Any, folder: str, data_hash: str) -> str:
    """The copy's folder name: the data hash and a digest of the git-tracked files beside it (the yaml itself),
    so a revision that only edits the yaml (renamed classes) gets a copy of its own."""
    git = fs.repo.fs.fs  # scmrepo's fsspec file system of the commit; its entries carry git's blob ids
    found = git.find("/" + folder, detail=True) if folder else git.find("/", maxdepth=1, detail=True)
    blobs = sorted((name, info["sha"]) for name, info in found.items())
    return f"{data_hash.removesuffix('.dir')}-{hashlib.sha256(json.dumps(blobs).encode()).hexdigest()[:12]}"


def _remote(fs: Any, at: str) -> tuple[str, str]:
    """(name, url) of the default remote committed at that revision: the only place another machine can fetch the
    data from. (DVC itself, for a local repository, uses the workspace's default remote, else the local cache.)"""
    conf = fs.repo.config.load_one("repo")
    name = conf.get("core", {}).get("remote")
    url = conf.get("remote", {}).get(name, {}).get("url") if name else None
    if not url:
        raise ConfigError(f"{at}: the repository has no default DVC remote committed at that revision, so no "
                          "other machine could fetch this dataset. Add one and push: `dvc remote add -d NAME "
                          "s3://BUCKET/PREFIX`, commit .dvc/config, `dvc push`.")
    return name, url


def _on_remote(fs: Any, remote: tuple[str, str], outs: dict[str, str], at: str) -> None:
    """Each output's object on the remote (a folder's `.dir` listing is pushed after its files), before any
    download: missing means `dvc push` was not run."""
    name, url = remote
    try:
        odb = fs.repo.cloud.get_remote_odb(name)
        for rel, value in outs.items():
            try:
                odb.fs.info(odb.oid_to_path(value))
            except FileNotFoundError:
                raise DataError(f"{at}: {rel} ({value}) is not on the DVC remote {url}; `dvc push` was probably not "
                                "run for that revision. Push it from a machine that has the data.") from None
    except DataError:
        raise
    except PermissionError as exc:
        raise DataError(f"{at}: the DVC remote {url} refused the credentials ({exc}); check AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY (or the remote's own credentials in .dvc/config.local).") from None
    except Exception as exc:  # noqa: BLE001 (botocore, aiohttp, DVC: each its own; all mean the same to a user)
        if type(exc).__name__ == "RemoteMissingDepsError":  # e.g. dvc without dvc-s3
            raise ConfigError(f"{at}: DVC cannot read the remote {url} without its {exc.protocol} support: "
                              f"{INSTALL}.") from None
        raise DataError(f"{at}: cannot reach the DVC remote {url}: {exc}. Check its endpointurl in .dvc/config "
                        "and the network.") from None


def _download(fs: Any, folder: str, into: Path, at: str) -> None:
    """The yaml's folder into `into`, each DVC-tracked file checked against its md5."""
    from fsspec.callbacks import TqdmCallback

    bar = TqdmCallback(tqdm_kwargs={"desc": f"dvc get {folder or '/'}", "unit": "file"})
    try:
        got = fs._get(folder or "/", str(into), recursive=True, callback=bar)
    except Exception as exc:  # noqa: BLE001 (the remote or the disk failed midway: nothing is cached)
        raise DataError(f"{at}: the download from the DVC remote failed: {exc}. Nothing was cached: run again; "
                        "if it persists, check that `dvc push` was run for that revision.") from None
    for _, dest, info in got:
        entry = (info or {}).get("dvc_info", {}).get("entry")
        if entry is not None and entry.hash_info and entry.hash_info.name == "md5":
            if hashlib.md5(Path(dest).read_bytes()).hexdigest() != entry.hash_info.value:
                raise DataError(f"{at}: {dest} arrived changed (its MD5 is not DVC's); nothing was cached: run again.")
