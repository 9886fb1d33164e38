"""A dataset version's manifest: every file with its sha256 and size (label files also with their boxes per class),
the images and boxes of each split and class, and the data yaml. The version id is derived from the content (the
files' hashes and the yaml), so pushing identical data gives the version that already exists."""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
import time
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from gfcore.core.errors import DataError
from gfcore.data.hashing import IMAGE_SUFFIXES
from gfcore.data.layout import collect

FORMAT = 1
ID_LENGTH = 12  # hex digits of the content hash that name a version (48 bits: no clash among a dataset's versions)


def class_names(spec: dict[str, Any]) -> list[str]:
    names = spec.get("names")
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    return [str(n) for n in names or []]


def version_id(yaml_text: str, files: dict[str, dict[str, Any]]) -> str:
    content = {"yaml": yaml_text, "files": {rel: entry["sha256"] for rel, entry in files.items()}}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:ID_LENGTH]


def digest(body: bytes) -> str:
    """The manifest digest a run records: the sha256 of the manifest as stored."""
    return hashlib.sha256(body).hexdigest()


def scan(data_yaml: Path, name: str) -> tuple[dict[str, Any], dict[str, Path]]:
    """(the manifest of the dataset of `data_yaml` as version of `name`, {relative path: local file}); a folder
    that is not a YOLO dataset is refused with the file and the reason."""
    from tqdm import tqdm

    files, spec = collect(data_yaml)
    names = class_names(spec)
    if not names:
        raise DataError(f"{data_yaml}: `names` lists no classes; a YOLO data yaml names each class.")
    entries: dict[str, dict[str, Any]] = {}
    for rel, path in tqdm(files.items(), desc=f"hash {name}", unit="file", leave=False, mininterval=1):
        data = path.read_bytes()
        entry: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        if path.suffix == ".txt" and "labels" in PurePosixPath(rel).parts:
            entry["boxes"] = _boxes(data, path, names)
        entries[rel] = entry
    text = yaml.safe_dump(spec, sort_keys=False)  # as text: JSON would turn `names: {0: a}` into {"0": "a"}
    manifest = {
        "format": FORMAT,
        "name": name,
        "version": version_id(text, entries),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "created_by": f"{getpass.getuser()}@{socket.gethostname()}",
        "source": str(data_yaml.resolve()),
        "yaml_name": data_yaml.name,
        "yaml": text,
        "classes": names,
        "splits": split_summary(spec, entries, names),
        "files": entries,
        "bytes": sum(e["size"] for e in entries.values()),
    }
    return manifest, files


def split_summary(spec: dict[str, Any], files: dict[str, dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Per split: images, images without boxes, and boxes per class."""
    out = {}
    for split, folders in _split_folders(spec).items():
        images = [rel for rel in files if _under(rel, folders) and PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES]
        boxes: Counter[str] = Counter({n: 0 for n in names})
        empty = 0
        for rel in images:
            counts = files.get(label_of(rel), {}).get("boxes", {})
            boxes.update(counts)
            empty += not counts
        out[split] = {"images": len(images), "background": empty, "boxes": dict(boxes)}
    return out


def label_of(image_rel: str) -> str:
    """The label file of an image (Ultralytics' convention: the last `images` folder becomes `labels`)."""
    parts = list(PurePosixPath(image_rel).parts)
    if "images" in parts:
        parts[len(parts) - 1 - parts[::-1].index("images")] = "labels"
    return str(PurePosixPath(*parts).with_suffix(".txt"))


def totals(manifest: dict[str, Any]) -> tuple[int, dict[str, int]]:
    """(images, boxes per class) over all splits."""
    boxes: Counter[str] = Counter()
    for split in manifest["splits"].values():
        boxes.update(split["boxes"])
    return sum(s["images"] for s in manifest["splits"].values()), {n: boxes[n] for n in manifest["classes"]}


def _split_folders(spec: dict[str, Any]) -> dict[str, list[str]]:
    out = {}
    for split in ("train", "val", "test"):
        value = spec.get(split)
        if value:
            out[split] = [str(v).strip("/") for v in (value if isinstance(value, list) else [value])]
    return out


def _under(rel: str, folders: list[str]) -> bool:
    return any(f in (".", "") or rel == f or rel.startswith(f + "/") for f in folders)


def _boxes(data: bytes, path: Path, names: list[str]) -> dict[str, int]:
    """Boxes per class name of one YOLO label file; a line that is not `class x y w h` (or a polygon) is refused."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a YOLO label file (it is not text).") from None
    counts: Counter[str] = Counter()
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            cls, coords = int(fields[0]), [float(v) for v in fields[1:]]
        except ValueError:
            raise DataError(f"{path}:{number}: {line.strip()!r} is not a YOLO label line (class x y w h, numbers)."
                            ) from None
        if not 0 <= cls < len(names):
            raise DataError(f"{path}:{number}: class {cls} is not one of the yaml's {len(names)} classes "
                            f"(0..{len(names) - 1}: {', '.join(names)}).")
        if len(coords) < 4 or (len(coords) > 4 and len(coords) % 2):
            raise DataError(f"{path}:{number}: {len(coords)} coordinates; a YOLO label line has 4 (a box) or an "
                            "even number (a polygon).")
        counts[names[cls]] += 1
    return dict(counts)
