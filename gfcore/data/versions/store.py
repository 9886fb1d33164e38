"""Immutable dataset versions on S3 (`guardianflow data push DATA_YAML NAME`).

Layout under the store (`s3://BUCKET/PREFIX/`, the local stack's bucket by default, $GF_DATA_STORE or
`data.store` to change it):

    objects/sha256/ab/abcd...            every file once, named by its content's sha256
    NAME/versions/VERSION.json           one manifest per version (gfcore.data.versions.manifest), written last
    NAME/aliases/ALIAS.json              {"version": VERSION, ...}: `latest` moves with each push

A push uploads only the files the store lacks and writes the manifest after them, so an interrupted push leaves
no version; nothing a push does changes or deletes an existing version. A fetch is cached by version: a second
one reads nothing from S3.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gfcore.core.errors import ConfigError, DataError
from gfcore.data import s3 as s3data
from gfcore.data.cached import MANIFEST as CACHE_MANIFEST
from gfcore.data.cached import build_once
from gfcore.data.versions import manifest as mf

STORE_ENV = "GF_DATA_STORE"
DEFAULT_STORE = "s3://mlflow/datasets"  # beside the MLflow artifacts in the local stack's bucket
LATEST = "latest"
WORKERS = 8  # parallel transfers: many small files, each a round trip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ID = re.compile(rf"^[0-9a-f]{{4,{mf.ID_LENGTH}}}$")


@dataclass(frozen=True)
class Store:
    bucket: str
    prefix: str  # "" or ends with "/"

    @classmethod
    def at(cls, uri: str | None = None) -> Store:
        """The store at `uri`, else $GF_DATA_STORE, else the local stack's bucket."""
        uri = uri or os.environ.get(STORE_ENV) or DEFAULT_STORE
        if not s3data.is_s3(uri):
            raise ConfigError(f"the dataset store {uri!r} is not an s3:// URI: set data.store (or {STORE_ENV}) to "
                              "s3://BUCKET/PREFIX.")
        bucket, prefix = s3data.split_uri(uri)
        return cls(bucket, prefix.strip("/") + "/" if prefix.strip("/") else "")

    @classmethod
    def of_manifest(cls, uri: str) -> tuple[Store, str]:
        """(the store, the dataset name) of a version's manifest URI (what a run records as `data.uri`)."""
        bucket, key = s3data.split_uri(uri)
        folder, _, _ = key.rpartition("/versions/")
        prefix, _, name = folder.rpartition("/")
        if not name:
            raise ConfigError(f"{uri!r} is not a dataset version's manifest (s3://BUCKET/PREFIX/NAME/versions/ID.json).")
        return cls(bucket, f"{prefix}/" if prefix else ""), name

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def object_key(self, sha: str) -> str:
        return f"{self.prefix}objects/sha256/{sha[:2]}/{sha}"

    def manifest_key(self, name: str, version: str) -> str:
        return f"{self.prefix}{name}/versions/{version}.json"

    def alias_key(self, name: str, alias: str) -> str:
        return f"{self.prefix}{name}/aliases/{alias}.json"

    def manifest_uri(self, name: str, version: str) -> str:
        return f"s3://{self.bucket}/{self.manifest_key(name, version)}"


@dataclass(frozen=True)
class Copy:
    """A version on this machine: what a run trains on and records."""

    name: str
    version: str
    digest: str  # the manifest's sha256
    uri: str  # the manifest's s3:// URI: where the version can be fetched again
    data_yaml: Path


def check_name(what: str, value: str) -> None:
    if not _NAME.match(value or ""):
        raise ConfigError(f"{what} {value!r}: use letters, digits, '.', '-' and '_', starting with a letter or digit.")
    if what == "dataset name" and value == "objects":
        raise ConfigError("dataset name 'objects' is where the store keeps every file's content: pick another name.")


def push(data_yaml: Path, name: str, store: Store, aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    """Store the dataset of `data_yaml` as a version of `name` (the existing one when the content is the same) and
    point `latest` and `aliases` at it; returns the version and what was uploaded."""
    from tqdm import tqdm

    check_name("dataset name", name)
    for alias in aliases:
        _check_alias(alias)
    manifest, files = mf.scan(data_yaml, name)
    version = manifest["version"]
    s3 = s3data.client()
    where = store.manifest_uri(name, version)
    existing = _read(s3, store, store.manifest_key(name, version), where)
    uploaded = {"files": 0, "bytes": 0}
    if existing is None:
        stored = _stored_objects(s3, store)
        todo: dict[str, Path] = {}
        for rel, entry in manifest["files"].items():
            if entry["sha256"] not in stored:
                todo.setdefault(entry["sha256"], files[rel])
        uploaded = {"files": len(todo), "bytes": sum(p.stat().st_size for p in todo.values())}
        with tqdm(total=uploaded["bytes"], unit="B", unit_scale=True, desc=f"push {name}@{version}",
                  disable=not todo) as bar, ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda item: _upload(s3, store, *item, bar), todo.items()))
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        _put(s3, store, store.manifest_key(name, version), body, where)  # last: the version exists from here on
    else:
        body = existing
    moved = [a for a in (LATEST, *aliases) if _set_alias(s3, store, name, a, version)]
    return {"name": name, "version": version, "new": existing is None, "uri": where, "digest": mf.digest(body),
            "uploaded": uploaded, "files": len(manifest["files"]), "bytes": manifest["bytes"],
            "aliases": [a for a in (LATEST, *aliases)], "aliases_moved": moved}


def datasets(store: Store) -> list[str]:
    s3 = s3data.client()
    page = s3data.call(lambda: s3.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix, Delimiter="/"), store.uri)
    found = [p["Prefix"][len(store.prefix):].rstrip("/") for p in page.get("CommonPrefixes", [])]
    return sorted(n for n in found if n != "objects")


def versions(name: str, store: Store) -> list[dict[str, Any]]:
    """Every version of `name`, oldest first: id, when and by whom, images, boxes, size, its aliases."""
    s3 = s3data.client()
    listed = s3data.listing(s3, store.bucket, f"{store.prefix}{name}/versions/", store.uri)
    if not listed:
        _unknown_dataset(name, store)
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases(name, store).items():
        by_version.setdefault(version, []).append(alias)
    out = []
    for key in listed:
        version = key.removesuffix(".json")
        body = _read(s3, store, store.manifest_key(name, version), store.manifest_uri(name, version))
        if body is None:
            continue
        m = json.loads(body)
        images, boxes = mf.totals(m)
        out.append({"version": version, "created": m["created"], "created_by": m.get("created_by", ""),
                    "images": images, "boxes": boxes, "files": len(m["files"]), "bytes": m["bytes"],
                    "splits": {s: v["images"] for s, v in m["splits"].items()},
                    "aliases": sorted(by_version.get(version, [])), "digest": mf.digest(body)})
    return sorted(out, key=lambda v: v["created"])


def aliases(name: str, store: Store) -> dict[str, str]:
    s3 = s3data.client()
    out = {}
    for key in s3data.listing(s3, store.bucket, f"{store.prefix}{name}/aliases/", store.uri):
        body = _read(s3, store, store.alias_key(name, key.removesuffix(".json")), store.uri)
        if body is not None:
            out[key.removesuffix(".json")] = json.loads(body)["version"]
    return out


def resolve(name: str, ref: str | None, store: Store) -> str:
    """The version id that `ref` (an alias, a version id or a unique prefix of one; `latest` when None) names."""
    ref = ref or LATEST
    s3 = s3data.client()
    if not _ID.match(ref) or ref == LATEST:
        body = _read(s3, store, store.alias_key(name, ref), store.uri)
        if body is not None:
            return json.loads(body)["version"]
    listed = [k.removesuffix(".json") for k in
              s3data.listing(s3, store.bucket, f"{store.prefix}{name}/versions/", store.uri)]
    if not listed:
        _unknown_dataset(name, store)
    matches = [v for v in listed if v.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    known = aliases(name, store)
    if len(matches) > 1:
        raise ConfigError(f"{name}@{ref} is ambiguous: it starts {', '.join(matches)}; give more digits.")
    raise ConfigError(f"{name} has no version or alias {ref!r} in {store.uri}. Versions: {', '.join(listed)}; "
                      f"aliases: {', '.join(f'{a} -> {v}' for a, v in sorted(known.items())) or 'none'} "
                      f"(`guardianflow data versions {name}`).")


def read_manifest(name: str, version: str, store: Store) -> tuple[dict[str, Any], str]:
    """(manifest, digest) of a version."""
    s3 = s3data.client()
    body = _read(s3, store, store.manifest_key(name, version), store.manifest_uri(name, version))
    if body is None:
        raise DataError(f"{name}@{version} is not in {store.uri} (looked for {store.manifest_uri(name, version)}): "
                        f"`guardianflow data versions {name}` lists the versions there.")
    return json.loads(body), mf.digest(body)


def set_alias(name: str, alias: str, ref: str, store: Store) -> str:
    """Point `alias` at the version `ref` names (which must exist); returns that version."""
    _check_alias(alias)
    version = resolve(name, ref, store)
    read_manifest(name, version, store)
    _set_alias(s3data.client(), store, name, alias, version)
    return version


def fetch(name: str, ref: str | None, store: Store, cache_root: Path) -> Copy:
    """The version `ref` of `name` on this machine, downloaded once per version into `cache_root/versions/`. A
    version id already cached is used without asking S3."""
    if ref and re.fullmatch(rf"[0-9a-f]{{{mf.ID_LENGTH}}}", ref):
        done = cache_root / "versions" / name / ref / CACHE_MANIFEST
        if done.is_file():
            return _copy_of(done.parent)
    version = resolve(name, ref, store)
    target = cache_root / "versions" / name / version
    if (target / CACHE_MANIFEST).is_file():
        return _copy_of(target)
    manifest, manifest_digest = read_manifest(name, version, store)

    def build(tmp: Path) -> dict:
        _materialize(manifest, store, tmp, f"{name}@{version}")
        spec = dict(yaml.safe_load(manifest["yaml"]), path=str(target))  # where the copy will be once renamed into place
        (tmp / manifest["yaml_name"]).write_text(yaml.safe_dump(spec, sort_keys=False))
        return {"name": name, "version": version, "digest": manifest_digest, "yaml_name": manifest["yaml_name"],
                "uri": store.manifest_uri(name, version), "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ")}

    return _copy_of(build_once(target, build, f"the dataset version {name}@{version}"))


def get(name: str, ref: str | None, store: Store, out: Path) -> tuple[str, Path]:
    """Write the version into the folder `out` (its yaml with relative paths); returns (version, the yaml)."""
    version = resolve(name, ref, store)
    manifest, _ = read_manifest(name, version, store)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty: `data get` writes a version into a new or empty folder.")
    out.mkdir(parents=True, exist_ok=True)
    _materialize(manifest, store, out, f"{name}@{version}")
    data_yaml = out / manifest["yaml_name"]
    data_yaml.write_text(manifest["yaml"])
    return version, data_yaml


# -- helpers -------------------------------------------------------------------------------------------------


def _copy_of(folder: Path) -> Copy:
    meta = json.loads((folder / CACHE_MANIFEST).read_text())
    return Copy(meta["name"], meta["version"], meta["digest"], meta["uri"], folder / meta["yaml_name"])


def _check_alias(alias: str) -> None:
    check_name("alias", alias)
    if _ID.match(alias):
        raise ConfigError(f"alias {alias!r} looks like a version id; pick a name with a letter that is not a-f, "
                          "e.g. audited-2026-q4.")


def _unknown_dataset(name: str, store: Store) -> None:
    known = datasets(store)
    raise ConfigError(f"there is no dataset {name!r} in {store.uri}; "
                      + (f"it holds {', '.join(known)}." if known else
                         "it holds none yet: `guardianflow data push DATA_YAML NAME` stores one."))


def _stored_objects(s3: Any, store: Store) -> set[str]:
    prefix = f"{store.prefix}objects/sha256/"
    return {key.rsplit("/", 1)[-1] for key in s3data.listing(s3, store.bucket, prefix, store.uri)}


def _upload(s3: Any, store: Store, sha: str, path: Path, bar: Any) -> None:
    key = store.object_key(sha)
    s3data.call(lambda: s3.upload_file(str(path), store.bucket, key, Callback=bar.update), f"s3://{store.bucket}/{key}")


def _put(s3: Any, store: Store, key: str, body: bytes, where: str) -> None:
    s3data.call(lambda: s3.put_object(Bucket=store.bucket, Key=key, Body=body), where)


def _read(s3: Any, store: Store, key: str, where: str) -> bytes | None:
    """An object's bytes, None when it does not exist."""
    from botocore.exceptions import ClientError

    def get() -> bytes | None:
        try:
            return s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    return s3data.call(get, where)


def _set_alias(s3: Any, store: Store, name: str, alias: str, version: str) -> bool:
    """Point the alias at `version`; False when it already did."""
    key = store.alias_key(name, alias)
    body = _read(s3, store, key, store.uri)
    if body is not None and json.loads(body)["version"] == version:
        return False
    record = {"version": version, "set": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _put(s3, store, key, json.dumps(record).encode(), store.uri)
    return True


def _materialize(manifest: dict[str, Any], store: Store, into: Path, what: str) -> None:
    """Every file of the manifest under `into`, each checked against its sha256."""
    from tqdm import tqdm

    s3 = s3data.client()
    first: dict[str, str] = {}  # sha -> the first file with that content: later ones are copies of it
    for rel, entry in sorted(manifest["files"].items()):
        first.setdefault(entry["sha256"], rel)

    def one(rel: str) -> None:
        entry = manifest["files"][rel]
        local = into / rel
        local.parent.mkdir(parents=True, exist_ok=True)
        if entry["size"] == 0:  # nothing to fetch (and an empty GET spoils SeaweedFS' kept-alive connection)
            local.touch()
            return
        key = store.object_key(entry["sha256"])
        # One GET per file (download_file would HEAD first for the size, which the manifest already holds).
        data = s3data.call(lambda: s3.get_object(Bucket=store.bucket, Key=key)["Body"].read(), what)
        local.write_bytes(data)
        bar.update(len(data))
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise DataError(f"s3://{store.bucket}/{key} ({rel} of {what}) arrived changed: its sha256 is not the "
                            "manifest's; nothing was kept: run again, or push the version again if it persists.")

    with tqdm(total=sum(e["size"] for rel, e in manifest["files"].items() if first[e["sha256"]] == rel),
              unit="B", unit_scale=True, desc=f"fetch {what}") as bar, ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, [rel for rel, e in manifest["files"].items() if first[e["sha256"]] == rel]))
    for rel, entry in manifest["files"].items():
        if first[entry["sha256"]] != rel:
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(into / first[entry["sha256"]], into / rel)
