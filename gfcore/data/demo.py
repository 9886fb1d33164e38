"""The built-in synthetic `demo` dataset: generated once per settings into a cache folder, then reused.

Layout (YOLO): images/{train,val,test}/NNNNNN.png, labels/{split}/NNNNNN.txt, data.yaml, and a
manifest.json holding the settings and the content hash. Generation writes into a temporary folder
and renames it into place, so parallel jobs (sweeps) never see a half-written set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gfcore.core import paths
from gfcore.data import synthetic
from gfcore.data.cached import MANIFEST, build_once
from gfcore.data.hashing import hash_yolo_dataset

if TYPE_CHECKING:
    from gfcore.config.schema import DemoDataConfig

# Bump when the renderer changes what it draws: the cache key includes it.
GENERATOR_VERSION = 2
SPLITS = ("train", "val", "test")


def _still_settings(settings: DemoDataConfig) -> dict:
    # The sequences are generated (and cached) apart, so their settings do not key the still images.
    return {k: v for k, v in asdict(settings).items() if k not in ("sequences", "sequence_frames")}


def settings_key(settings: DemoDataConfig) -> str:
    blob = json.dumps({"generator": GENERATOR_VERSION, **_still_settings(settings)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ensure_demo_dataset(settings: DemoDataConfig, cache_dir: str | Path | None = None) -> Path:
    """Return the folder of the demo set for `settings`, generating it on first use."""
    root = Path(cache_dir) if cache_dir else paths.cache_dir()
    target = root / "data" / f"demo-{settings_key(settings)}"
    if (target / MANIFEST).is_file():
        return target

    def build(tmp: Path) -> dict:
        _generate(settings, tmp)
        return {"settings": _still_settings(settings), "generator": GENERATOR_VERSION,
                "hash": hash_yolo_dataset(tmp, names=synthetic.CLASS_NAMES)}

    build_once(target, build, "the demo dataset")
    # data.yaml carries an absolute path, so it is written for the final location.
    _write_data_yaml(target)
    return target


def demo_manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def _write_data_yaml(folder: Path) -> None:
    import yaml

    data_yaml = folder / "data.yaml"
    content = {"path": str(folder.resolve()), "train": "images/train", "val": "images/val", "test": "images/test",
               "names": dict(enumerate(synthetic.CLASS_NAMES))}
    if not data_yaml.is_file() or yaml.safe_load(data_yaml.read_text()) != content:
        data_yaml.write_text(yaml.safe_dump(content, sort_keys=False))


def _generate(settings: DemoDataConfig, out: Path) -> None:
    import cv2
    from tqdm import tqdm

    counts = {"train": settings.train_images, "val": settings.val_images, "test": settings.test_images}
    total = sum(counts.values())
    with tqdm(total=total, desc="demo data", unit="img", disable=total < 100) as bar:
        for split_idx, split in enumerate(SPLITS):
            (out / "images" / split).mkdir(parents=True)
            (out / "labels" / split).mkdir(parents=True)
            for i in range(counts[split]):
                rng = np.random.default_rng([settings.seed, split_idx, i])
                img, lines = render_image(rng, settings.image_size, settings.max_people)
                cv2.imwrite(str(out / "images" / split / f"{i:06d}.png"), img)
                (out / "labels" / split / f"{i:06d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
                bar.update()


def render_image(rng: np.random.Generator, size: int, max_people: int) -> tuple[np.ndarray, list[str]]:
    """One still image with 1..max_people figures, and its YOLO label lines."""
    img = synthetic.background(rng, size)
    n = int(rng.integers(1, max_people + 1))
    # Draw far (small, high) figures first so nearer ones occlude them, as in a real scene.
    placements = sorted(
        ((float(rng.uniform(0.35, 0.8)) * size, float(rng.uniform(0.1, 0.9)) * size) for _ in range(n)),
        key=lambda p: p[0],
    )
    drawn = []  # (box, pixels of the box right after it was drawn)
    for height, x in placements:
        y = min(size - 1.0, height + rng.uniform(0.0, size - height))
        for box in synthetic.draw_figure(img, synthetic.Figure.random(rng, x, y, height)):
            drawn.append((box, synthetic.crop(img, box[1:]).copy()))
    # A part mostly hidden by a nearer figure is not labelled: nobody could see it either.
    boxes = [box for box, before in drawn if before.size and (synthetic.crop(img, box[1:]) == before).all(axis=-1).mean() >= 0.5]
    return img, synthetic.yolo_label_lines(boxes, size, size)

