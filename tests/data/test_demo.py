"""The synthetic demo set: deterministic, cached, valid YOLO, hashed by content."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gfcore.config.schema import DataConfig, DataKind, DemoDataConfig, TaskConfig, TaskType
from gfcore.core.errors import DataError
from gfcore.data.dataset import resolve_dataset
from gfcore.data.demo import ensure_demo_dataset

SMALL = DemoDataConfig(train_images=6, val_images=3, test_images=3, image_size=64, max_people=2, seed=3)
PPE = TaskConfig(type=TaskType.ppe, classes=["helmet", "vest"])


def test_layout_and_labels(tmp_path):
    root = ensure_demo_dataset(SMALL, tmp_path)
    for split, n in (("train", 6), ("val", 3), ("test", 3)):
        images = sorted((root / "images" / split).glob("*.png"))
        assert len(images) == n
        assert len(list((root / "labels" / split).glob("*.txt"))) == n
    lines = [ln.split() for f in (root / "labels" / "train").glob("*.txt") for ln in f.read_text().splitlines()]
    assert lines, "the figures carry labelled helmets and vests"
    for cls, *box in lines:
        assert cls in {"0", "1"} and all(0.0 <= float(v) <= 1.0 for v in box)
    assert {ln[0] for ln in lines} == {"0", "1"}


def test_deterministic_across_cache_folders(tmp_path):
    a = ensure_demo_dataset(SMALL, tmp_path / "a")
    b = ensure_demo_dataset(SMALL, tmp_path / "b")
    ha, hb = (json.loads((p / "manifest.json").read_text())["hash"] for p in (a, b))
    assert ha == hb
    assert (a / "images/train/000000.png").read_bytes() == (b / "images/train/000000.png").read_bytes()


def test_reused_not_regenerated(tmp_path):
    first = ensure_demo_dataset(SMALL, tmp_path)
    stamp = (first / "images/train/000000.png").stat().st_mtime_ns
    assert ensure_demo_dataset(SMALL, tmp_path) == first
    assert (first / "images/train/000000.png").stat().st_mtime_ns == stamp


def test_settings_are_the_cache_key(tmp_path):
    other = DemoDataConfig(**{**SMALL.__dict__, "seed": 4})
    a, b = ensure_demo_dataset(SMALL, tmp_path), ensure_demo_dataset(other, tmp_path)
    assert a != b
    assert json.loads((a / "manifest.json").read_text())["hash"] != json.loads((b / "manifest.json").read_text())["hash"]


def test_resolve_demo_gives_hash_and_counts(tmp_path):
    info = resolve_dataset(DataConfig(kind=DataKind.demo, demo=SMALL, cache_dir=str(tmp_path)), PPE)
    assert info.names == ["helmet", "vest"] and info.counts == {"train": 6, "val": 3, "test": 3}
    assert len(info.hash) == 64 and info.data_yaml.is_file()


def test_resolving_twice_keeps_the_hash_after_ultralytics_caches(tmp_path):
    cfg = DataConfig(kind=DataKind.demo, demo=SMALL, cache_dir=str(tmp_path))
    first = resolve_dataset(cfg, PPE)
    (first.root / "labels" / "train.cache").write_bytes(b"ultralytics label cache")
    assert resolve_dataset(cfg, PPE).hash == first.hash


def _yolo_set(tmp_path: Path, images: bool = True, names=("helmet", "vest")) -> Path:
    src = ensure_demo_dataset(SMALL, tmp_path / "src")
    root = tmp_path / "site"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        if images:
            for img in (src / "images" / split).glob("*.png"):
                (root / "images" / split / img.name).write_bytes(img.read_bytes())
                lbl = src / "labels" / split / f"{img.stem}.txt"
                (root / "labels" / split / lbl.name).write_text(lbl.read_text())
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: {list(names)}\n")
    return yaml


def test_yolo_dataset_on_disk_is_hashed_and_cached(tmp_path):
    yaml = _yolo_set(tmp_path)
    cfg = DataConfig(kind=DataKind.yolo, name="site", path=str(yaml), cache_dir=str(tmp_path / "cache"))
    info = resolve_dataset(cfg, PPE)
    assert info.counts == {"train": 6, "val": 3} and len(info.hash) == 64
    assert resolve_dataset(cfg, PPE).hash == info.hash
    label = next((yaml.parent / "labels" / "train").glob("*.txt"))
    label.write_text("0 0.5 0.5 0.1 0.1\n")
    assert resolve_dataset(cfg, PPE).hash != info.hash, "a changed label changes the hash"


def test_missing_data_yaml(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        resolve_dataset(DataConfig(kind=DataKind.yolo, path=str(tmp_path / "nope.yaml")), PPE)


def test_data_yaml_without_images(tmp_path):
    yaml = _yolo_set(tmp_path, images=False)
    with pytest.raises(DataError, match="no images"):
        resolve_dataset(DataConfig(kind=DataKind.yolo, path=str(yaml), cache_dir=str(tmp_path)), PPE)


def test_classes_must_match_the_task(tmp_path):
    yaml = _yolo_set(tmp_path, names=("person", "vest"))
    with pytest.raises(DataError, match="do not match task.classes"):
        resolve_dataset(DataConfig(kind=DataKind.yolo, path=str(yaml), cache_dir=str(tmp_path)), PPE)


def test_demo_info_equals_ultralytics_check_of_its_yaml(tmp_path):
    """The demo set is described from its own layout (no Ultralytics import): the same as checking its yaml."""
    from gfcore.data import dataset

    info = resolve_dataset(DataConfig(kind=DataKind.demo, demo=SMALL, cache_dir=str(tmp_path)), PPE)
    checked = dataset._from_yaml(info.data_yaml, info.name, data_hash=info.hash)
    assert info == checked
    assert info.counts == {"train": 6, "val": 3, "test": 3}
