"""Content hashes of YOLO datasets: the run's `data.hash` and the digest of its MLflow dataset input."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

IMAGE_SUFFIXES = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp", ".dng", ".mpo", ".heic"}


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def label_file(image: Path) -> Path:
    """Ultralytics' convention: the last `images` folder in the path becomes `labels`, suffix `.txt`."""
    parts = list(image.parts)
    idx = len(parts) - 1 - parts[::-1].index("images") if "images" in parts else None
    if idx is None:
        return image.with_suffix(".txt")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def hash_files(files: Iterable[Path], base: Path, extra: bytes = b"") -> str:
    """sha256 over (relative path, content) of each file, in sorted order; missing files count as absent."""
    digest = hashlib.sha256(extra)
    for f in sorted(set(files)):
        if not f.is_file():
            continue
        digest.update(str(f.relative_to(base) if f.is_relative_to(base) else f).encode())
        digest.update(b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def hash_yolo_dataset(root: Path, image_dirs: Iterable[Path] | None = None, names: Iterable[str] = ()) -> str:
    """Hash every image under `image_dirs` (default: root/images) with its label file and the class names.

    Ultralytics' `*.cache` files and the data yaml (which holds absolute paths) are left out, so the
    hash depends only on what a model learns from.
    """
    dirs = list(image_dirs) if image_dirs is not None else [root / "images"]
    images = [img for d in dirs for img in image_files(d)]
    files = images + [label_file(img) for img in images]
    return hash_files(files, root, extra="\n".join(names).encode())
