"""The files of a YOLO dataset on disk: what `data push` stores (each split's images and their labels, and the data
yaml with paths relative to it)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from gfcore.core.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


def labels_of(images: Path) -> Path:
    """Ultralytics' convention: the labels of `.../images/...` are in `.../labels/...`."""
    parts = list(images.parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        parts[i] = "labels"
        return Path(*parts)
    return images.parent / "labels"


def collect(data_yaml: Path) -> tuple[dict[str, Path], dict[str, Any]]:
    """({path relative to the dataset's folder: file}, the yaml with relative paths and no `path`) of a YOLO data
    yaml; a split outside the dataset's folder, a yaml without `names` or without images is refused."""
    if not data_yaml.is_file():
        raise ConfigError(f"{data_yaml}: no such data yaml.")
    try:
        spec = yaml.safe_load(data_yaml.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"{data_yaml} is not a YOLO data yaml: it does not parse ({exc}).") from None
    if not isinstance(spec, dict) or "names" not in spec:
        raise DataError(f"{data_yaml} is not a YOLO data yaml: it has no `names` (the class names).")
    root = Path(spec.get("path") or ".")
    root = (root if root.is_absolute() else data_yaml.parent / root).resolve()
    files: dict[str, Path] = {}
    relative: dict[str, Any] = {}
    for split in SPLITS:
        if not spec.get(split):
            continue
        entries = spec[split] if isinstance(spec[split], list) else [spec[split]]
        rels = []
        for entry in entries:
            local = (root / entry).resolve()
            if not local.is_relative_to(root):
                raise DataError(f"{data_yaml}: the {split} split {entry!r} is outside the dataset's folder {root}; "
                                "a pushed dataset keeps every split under one folder.")
            if not local.exists():
                raise DataError(f"{data_yaml}: the {split} split {entry!r} does not exist ({local}).")
            rels.append(local.relative_to(root).as_posix())
            for folder in (local, labels_of(local)):
                if folder.is_dir():
                    files.update({f.relative_to(root).as_posix(): f for f in sorted(folder.rglob("*"))
                                  if f.is_file() and f.suffix != ".cache"})
                elif folder.is_file():
                    files[folder.relative_to(root).as_posix()] = folder
        relative[split] = rels if isinstance(spec[split], list) else rels[0]
    if not files:
        raise DataError(f"{data_yaml}: no image files under its splits; nothing to push.")
    return files, {k: v for k, v in spec.items() if k != "path"} | relative  # no `path`: read relative to the yaml


def relative_yaml(text: str, at: str, advice: str, within: str = "the yaml's folder") -> dict[str, Any]:
    """A data yaml read from elsewhere (S3, a git revision), checked to name its splits relative to itself: a path
    outside its folder could not be fetched with it. `advice` says how to fix one that does."""
    spec = yaml.safe_load(text) or {}
    if not isinstance(spec, dict) or "names" not in spec:
        raise DataError(f"{at} is not a YOLO data yaml (it has no `names`).")
    entries = [spec.get("path") or "."] + [e for s in SPLITS for e in (spec.get(s) if isinstance(spec.get(s), list)
                                                                         else [spec.get(s)]) if e]
    for entry in entries:
        p = PurePosixPath(str(entry))
        if p.is_absolute() or ".." in p.parts or "://" in str(entry):
            raise DataError(f"{at}: {entry!r} points outside {within}; {advice}")
    return spec
