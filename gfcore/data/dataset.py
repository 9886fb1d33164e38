"""Resolve a scenario's data section into a checked YOLO dataset, before any run exists."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from gfcore.config.schema import DataConfig, DataKind, TaskConfig
from gfcore.core import paths
from gfcore.core.errors import ConfigError, DataError
from gfcore.core.vocabulary import DATA_DIGEST, DATA_REV, DATA_URI, DATA_VERSION
from gfcore.data import demo, dvc
from gfcore.data import s3 as s3data
from gfcore.data.hashing import IMAGE_SUFFIXES, hash_yolo_dataset, image_files, label_file
from gfcore.data.versions import store as versions


@dataclass(frozen=True)
class DataPin:
    """What makes a run's data fetchable again: a pushed version (its id, manifest digest and manifest URI) or a
    DVC-tracked dataset (its git commit, DVC's hash and git+REPO#PATH@REV)."""

    digest: str
    uri: str
    version: str | None = None  # a pushed version's id
    rev: str | None = None  # a DVC dataset's git commit

    def tags(self) -> dict[str, str]:
        out = {DATA_DIGEST: self.digest, DATA_URI: self.uri}
        if self.version:
            out[DATA_VERSION] = self.version
        if self.rev:
            out[DATA_REV] = self.rev
        return out


@dataclass
class DatasetInfo:
    name: str
    data_yaml: Path  # what Ultralytics is given as `data=`
    root: Path
    names: list[str]
    hash: str
    # split -> image folders (or list files) and their image count
    splits: dict[str, list[Path]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    source: str | None = None  # where the data comes from when not this machine: its s3:// yaml URI
    pin: DataPin | None = None  # set when the data can be fetched again exactly (a pushed version, a DVC revision)

    @property
    def digest(self) -> str:
        return self.hash[:16]

    def example_image(self) -> Path | None:
        """One image of the test split (else val), e.g. for a model's input example."""
        for split in ("test", "val"):
            for folder in self.splits.get(split, []):
                if folder.is_dir():
                    images = image_files(folder)
                    if images:
                        return images[0]
        return None


def resolve_dataset(cfg: DataConfig, task: TaskConfig) -> DatasetInfo:
    """The dataset of `cfg`: demo data is generated on first use; a YOLO yaml is checked and hashed."""
    if cfg.kind == DataKind.demo:
        info = _demo(demo.ensure_demo_dataset(cfg.demo, cfg.cache_dir), cfg.name)
    elif cfg.kind == DataKind.versioned:  # a pushed version, downloaded once per version (gfcore.data.versions)
        copy = versions.fetch(cfg.name, cfg.version, versions.Store.at(cfg.store), _cache(cfg))
        info = _from_yaml(copy.data_yaml, cfg.name, data_hash=None, cache_dir=cfg.cache_dir)
        info.source = copy.uri
        info.pin = DataPin(digest=copy.digest, uri=copy.uri, version=copy.version)
    elif str(cfg.path).startswith("s3://"):  # downloaded once per content (gfcore.data.s3)
        local = s3data.fetch(cfg.path, _cache(cfg))
        info = _from_yaml(local, cfg.name, data_hash=None, cache_dir=cfg.cache_dir)
        info.source = cfg.path
    elif located := dvc.locate(cfg.path, cfg.repo):  # a DVC-tracked dataset at a git revision (gfcore.data.dvc)
        got = dvc.fetch(*located, cfg.rev, _cache(cfg))
        info = _from_yaml(got.data_yaml, cfg.name, data_hash=None, cache_dir=cfg.cache_dir)
        info.source = got.uri
        info.pin = DataPin(digest=got.hash, uri=got.uri, rev=got.rev)
    else:
        if cfg.rev:
            raise ConfigError(f"data.rev={cfg.rev} is a git revision, but data.path={cfg.path} is not in a "
                              "DVC-tracked git repository (no .dvc/ folder at the root of its git work tree): "
                              "drop data.rev, or set data.repo to the repository.")
        info = _from_yaml(Path(cfg.path).expanduser(), cfg.name, data_hash=None, cache_dir=cfg.cache_dir)
    if list(task.classes) != info.names:
        raise DataError(
            f"the dataset's classes {info.names} (in {info.data_yaml}) do not match task.classes "
            f"{list(task.classes)}: set task.classes to the dataset's names, in the same order."
        )
    return info


def _cache(cfg: DataConfig) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else paths.cache_dir()


def split_images(dataset: DatasetInfo, split: str, key: str) -> list[Path]:
    """The image files of a split; `key` names the setting that chose it, for the error."""
    images = [img for folder in dataset.splits.get(split, []) if folder.is_dir() for img in image_files(folder)]
    if not images:
        raise ConfigError(f"{key}={split}: the dataset {dataset.data_yaml} has no images in its {split} split; "
                        "calibration and measurement need real images (add them or pick another split).")
    return images


def sequences_folder(cfg: DataConfig) -> Path | None:
    """Where the scenario's video sequences are (MOTChallenge layout): data.sequences_dir, else the demo's own."""
    if cfg.sequences_dir:
        folder = Path(cfg.sequences_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data.sequences_dir={cfg.sequences_dir}: no such folder. Point it at a folder of "
                            "MOTChallenge sequences (<seq>/gt/gt.txt, <seq>/seqinfo.ini, <seq>/img1/).")
        return folder
    if cfg.kind == DataKind.demo:
        from gfcore.data.sequences import ensure_demo_sequences

        return ensure_demo_sequences(cfg.demo, cfg.cache_dir)
    return None


def _demo(root: Path, name: str) -> DatasetInfo:
    """The demo set, read from the layout it is generated with: the same DatasetInfo Ultralytics' check of its
    yaml gives (a test holds them equal), without importing Ultralytics, torch and OpenCV in a process that
    may only need to decide that a step is cached."""
    splits = {split: [root / "images" / split] for split in demo.SPLITS}
    return DatasetInfo(name=name, data_yaml=(root / "data.yaml").resolve(), root=root.resolve(),
                       names=list(demo.synthetic.CLASS_NAMES), hash=demo.demo_manifest(root)["hash"],
                       splits=splits, counts={split: _count_images(p) for split, [p] in splits.items()})


def _from_yaml(data_yaml: Path, name: str, data_hash: str | None, cache_dir: str | None = None) -> DatasetInfo:
    if not data_yaml.is_file():
        raise DataError(f"the data yaml {data_yaml} does not exist: set data.path to a YOLO data yaml "
                        "(with path, train, val and names), or use data=demo for the synthetic set.")
    from ultralytics.data.utils import check_det_dataset

    try:
        parsed = check_det_dataset(str(data_yaml), autodownload=False)
    except Exception as exc:  # Ultralytics raises several types, all with a message
        raise DataError(f"the data yaml {data_yaml} is not a usable YOLO dataset: {exc}") from exc

    splits: dict[str, list[Path]] = {}
    counts: dict[str, int] = {}
    for split in ("train", "val", "test"):
        entries = parsed.get(split)
        if not entries:
            continue
        paths = [Path(p) for p in (entries if isinstance(entries, list) else [entries])]
        splits[split] = paths
        counts[split] = sum(_count_images(p) for p in paths)
    for split in ("train", "val"):
        if not counts.get(split):
            raise DataError(f"the {split} split of {data_yaml} has no images (looked in "
                            f"{', '.join(map(str, splits.get(split, []))) or 'nothing listed'}): check the "
                            "paths in the yaml and that the images are there.")
    names = [parsed["names"][i] for i in sorted(parsed["names"])]
    root = Path(parsed["path"])
    image_dirs = [p for paths in splits.values() for p in paths if p.is_dir()]
    if data_hash is None:
        data_hash = _cached_hash(root, image_dirs, names, cache_dir)
    return DatasetInfo(name=name, data_yaml=data_yaml.resolve(), root=root, names=names, hash=data_hash,
                       splits=splits, counts=counts)


def _count_images(path: Path) -> int:
    if path.is_dir():
        return sum(1 for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if path.is_file() and path.suffix == ".txt":  # a list of image paths, one per line
        return sum(1 for line in path.read_text().splitlines() if line.strip())
    return 0


def _cached_hash(root: Path, image_dirs: list[Path], names: list[str], cache_dir: str | None) -> str:
    """Content hash of a dataset on disk, cached by the files' paths, sizes and modification times."""
    stats = hashlib.sha256("\n".join(names).encode())
    for img in (img for d in sorted(image_dirs) for img in image_files(d)):
        for p in (img, label_file(img)):
            st = p.stat() if p.is_file() else None
            stats.update(f"{p}\0{st and st.st_size}\0{st and st.st_mtime_ns}\n".encode())
    key = stats.hexdigest()
    cache = Path(cache_dir) if cache_dir else paths.cache_dir()
    entry = cache / "hashes" / f"{key}.json"
    if entry.is_file():
        return json.loads(entry.read_text())["hash"]
    value = hash_yolo_dataset(root, image_dirs, names)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"hash": value, "root": str(root)}))
        tmp.replace(entry)
    except OSError:
        pass  # a read-only cache only costs the next run a rehash
    return value
