"""YOLO datasets on S3 (the stack's SeaweedFS or any S3 endpoint): `data.path=s3://BUCKET/PREFIX/data.yaml` is
downloaded once per content into `$GF_CACHE_DIR/s3/`, and `guardianflow data push` uploads one.

The endpoint and keys are the ones MLflow's S3 artifact store uses: MLFLOW_S3_ENDPOINT_URL (else boto3's own
AWS_ENDPOINT_URL or AWS), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. A copy is keyed by the objects' keys, sizes
and ETags under the yaml's prefix, so a rerun with unchanged objects lists the prefix and downloads nothing; each
download is checked against its size and, for single-part uploads, its MD5 (the ETag); the copy is built in a
temporary folder and renamed into place, so a failure leaves nothing half-written in the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from gfcore.core.errors import ConfigError, DataError
from gfcore.data.cached import build_once
from gfcore.data.layout import collect, relative_yaml


def is_s3(path: str | None) -> bool:
    return bool(path) and str(path).startswith("s3://")


def split_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> (bucket, some/key)."""
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ConfigError(f"{uri!r} names no bucket: write s3://BUCKET/PREFIX/data.yaml.")
    return bucket, key


def client() -> Any:
    import boto3

    # A session of its own reads the keys from the environment now (boto3's default session keeps the first ones).
    s3 = boto3.session.Session().client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None)
    s3.meta.events.register("before-send.s3.PutObject", _close_after_empty)
    return s3


def _close_after_empty(request: Any, **_: Any) -> None:
    """An empty object (a label file of an image without objects) is sent on a connection of its own. SeaweedFS
    answers an empty PUT in a way that leaves a kept-alive connection unreadable: the next request on it waits for
    the full read timeout (measured: 8 s with an 8 s timeout, 60 s with boto3's default, for every file that
    follows an empty one)."""
    if str(request.headers.get("Content-Length", "")).strip() in ("0", "b'0'"):
        request.headers["Connection"] = "close"


def fetch(uri: str, cache_root: Path) -> Path:
    """The local data yaml of the dataset at `uri`, downloading what is not cached yet."""
    bucket, key = split_uri(uri)
    if not key.endswith((".yaml", ".yml")):
        raise ConfigError(f"data.path={uri!r}: point it at the dataset's yaml, s3://BUCKET/PREFIX/data.yaml.")
    prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    s3 = client()
    objects = listing(s3, bucket, prefix, uri)
    yaml_name = key[len(prefix):]
    if yaml_name not in objects:
        raise DataError(f"there is no {uri}: {len(objects)} object(s) under s3://{bucket}/{prefix}; upload the "
                        "dataset with `guardianflow data push DATA_YAML s3://BUCKET/PREFIX/`.")
    fingerprint = hashlib.sha256(json.dumps(sorted(objects.items())).encode()).hexdigest()[:16]
    target = cache_root / "s3" / bucket / f"{prefix.strip('/').replace('/', '__') or '_root'}-{fingerprint}"

    def build(tmp: Path) -> dict:
        text = get_bytes(s3, bucket, key, uri).decode()
        spec = relative_yaml(text, uri, "a dataset on S3 must name its splits relative to the "
                             "yaml (push it with `guardianflow data push`).", "the yaml's prefix")
        _download(s3, bucket, prefix, objects, tmp, uri)
        spec["path"] = str(target)  # where the copy will be once renamed into place
        (tmp / yaml_name).write_text(yaml.safe_dump(spec, sort_keys=False))
        return {"source": uri, "objects": len(objects), "bytes": sum(size for _, size in objects.values()),
                "fingerprint": fingerprint}

    return build_once(target, build, f"the S3 dataset {uri}") / yaml_name


def push(data_yaml: Path, dest: str) -> dict[str, Any]:
    """Upload the dataset of `data_yaml` (its splits' images and labels) under `dest`, with a yaml whose paths are
    relative; returns where and how much."""
    from tqdm import tqdm

    bucket, prefix = split_uri(dest)
    prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    files, out = collect(data_yaml)
    s3 = client()
    listing(s3, bucket, prefix, dest, max_keys=1)  # a missing bucket or refused keys fail before any upload
    total = sum(f.stat().st_size for f in files.values())
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"push to s3://{bucket}/{prefix}") as bar:
        for rel, path in files.items():
            call(lambda: s3.upload_file(str(path), bucket, prefix + rel, Callback=bar.update), dest)
    body = yaml.safe_dump(out, sort_keys=False).encode()
    call(lambda: s3.put_object(Bucket=bucket, Key=prefix + data_yaml.name, Body=body), dest)
    return {"uri": f"s3://{bucket}/{prefix}{data_yaml.name}", "files": len(files) + 1, "bytes": total + len(body)}


def split_source(source: str, root: Path, folder: Path) -> str:
    """The S3 URI of a split folder of a cached copy (its lineage source)."""
    base = source.rsplit("/", 1)[0]
    try:
        return f"{base}/{folder.resolve().relative_to(root.resolve()).as_posix()}"
    except ValueError:
        return base


# -- helpers -------------------------------------------------------------------------------------------------


def listing(s3: Any, bucket: str, prefix: str, uri: str, max_keys: int | None = None) -> dict[str, tuple[str, int]]:
    """{key relative to prefix: (ETag, size)} of every object under the prefix."""
    out: dict[str, tuple[str, int]] = {}
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        page = call(lambda: s3.list_objects_v2(**kwargs, **({"MaxKeys": max_keys} if max_keys else {})), uri)
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix):]] = (obj["ETag"].strip('"'), int(obj["Size"]))
        if max_keys or not page.get("IsTruncated"):
            return out
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def get_bytes(s3: Any, bucket: str, key: str, uri: str) -> bytes:
    return call(lambda: s3.get_object(Bucket=bucket, Key=key)["Body"].read(), uri)


def _download(s3: Any, bucket: str, prefix: str, objects: dict[str, tuple[str, int]], into: Path, uri: str) -> None:
    from tqdm import tqdm

    with tqdm(total=sum(size for _, size in objects.values()), unit="B", unit_scale=True,
              desc=f"download {uri.rsplit('/', 1)[0]}") as bar:
        for rel, (etag, size) in sorted(objects.items()):
            local = into / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            if size == 0:  # nothing to fetch: the listing says it all (and an empty GET spoils SeaweedFS' connection)
                local.touch()
            else:
                call(lambda: s3.download_file(bucket, prefix + rel, str(local), Callback=bar.update), uri)
            got = local.stat().st_size
            if got != size or ("-" not in etag and hashlib.md5(local.read_bytes()).hexdigest() != etag):
                raise DataError(f"s3://{bucket}/{prefix}{rel} arrived changed ({got} of {size} bytes, or its MD5 is "
                                "not its ETag); nothing was cached: run again.")


def call(fn: Any, uri: str) -> Any:
    """An S3 call, its failures as one clear error naming what to check."""
    from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or "AWS"
    try:
        return fn()
    except (S3UploadFailedError, S3TransferFailedError) as exc:  # boto3's transfers wrap the server's answer
        raise DataError(f"{uri}: a transfer to or from S3 at {endpoint} failed ({exc}); nothing was recorded as "
                        "done: run it again.") from None
    except NoCredentialsError:
        raise DataError(f"{uri}: no S3 credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
                        "MLFLOW_S3_ENDPOINT_URL for a non-AWS endpoint such as the stack's SeaweedFS).") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise DataError(f"{uri}: the bucket does not exist at {endpoint}; create it or fix the URI.") from None
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden"):
            raise DataError(f"{uri}: {endpoint} refused the credentials ({code}); check AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY.") from None
        raise DataError(f"{uri}: S3 at {endpoint} answered {code or exc}.") from None
    except BotoCoreError as exc:
        raise DataError(f"{uri}: cannot reach S3 at {endpoint}: {exc}. Check MLFLOW_S3_ENDPOINT_URL.") from None
