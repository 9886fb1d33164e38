"""The `data` section: where a scenario's images come from (the synthetic demo set or a YOLO dataset)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from gfcore.config.enums import DataKind
from gfcore.core.errors import ConfigError


@dataclass
class DemoDataConfig:
    """Settings of the synthetic demo set; each distinct setting is generated once and cached."""

    train_images: int = 200
    val_images: int = 60
    test_images: int = 60
    image_size: int = 160
    max_people: int = 3
    seed: int = 0
    # Short video sequences for tracking (MOTChallenge layout), generated apart from the still images.
    sequences: int = 3
    sequence_frames: int = 40

    def __post_init__(self) -> None:
        if self.sequences < 0 or (self.sequences and self.sequence_frames < 2):
            raise ConfigError("data.demo.sequences must be >= 0 and data.demo.sequence_frames at least 2.")
        if min(self.train_images, self.val_images, self.test_images) < 1:
            raise ConfigError("data.demo needs at least one image in each split (train_images, val_images, "
                              "test_images).")
        if self.image_size < 32 or self.max_people < 1:
            raise ConfigError("data.demo.image_size must be at least 32 and data.demo.max_people at least 1.")


@dataclass
class DataConfig:
    kind: DataKind = DataKind.demo
    name: str = "demo"  # the dataset's name in MLflow's dataset lineage; with kind=versioned, in the store
    # YOLO data yaml, required when kind=yolo: a local path, s3://BUCKET/PREFIX/data.yaml, or a path inside a
    # DVC-tracked git repository (relative to data.repo when that is set)
    path: Optional[str] = None
    repo: Optional[str] = None  # a DVC-tracked git repository (git URL or local path) that data.path is in
    rev: Optional[str] = None  # its git revision (branch, tag, commit); default the checked-out commit
    store: Optional[str] = None  # kind=versioned: s3://BUCKET/PREFIX of the versions; default $GF_DATA_STORE
    # Video sequences for tracking, MOTChallenge layout (<seq>/gt/gt.txt, seqinfo.ini, img1/); the demo
    # kind generates its own.
    sequences_dir: Optional[str] = None
    # kind=versioned: the version id or alias to train on (`latest` when left out), resolved when the run
    # starts; otherwise a free-form label, recorded as given
    version: str = "v1"
    cache_dir: Optional[str] = None  # where generated data lives; default $GF_CACHE_DIR or ~/.cache/guardianflow
    demo: DemoDataConfig = field(default_factory=DemoDataConfig)

    def __post_init__(self) -> None:
        if self.kind == DataKind.yolo and not self.path:
            raise ConfigError("data.kind=yolo needs data.path: the path of a YOLO data yaml "
                              "(e.g. data.path=/data/site/data.yaml), or use data=demo for the synthetic set.")
        if self.kind == DataKind.versioned and (self.path or self.repo):
            raise ConfigError("data.kind=versioned reads a pushed version (data.name, data.version); data.path and "
                              "data.repo belong to data=yolo. Drop them, or use data=yolo.")
        if (self.repo or self.rev) and self.kind != DataKind.yolo:
            raise ConfigError("data.repo and data.rev name a DVC-tracked dataset: use them with data=yolo and "
                              "data.path (the yaml inside the repository).")
        if self.rev and str(self.path or "").startswith("s3://"):
            raise ConfigError("data.rev is a git revision of a DVC-tracked repository; an s3:// data.path has "
                              "none. Push versions with `guardianflow data push` and use data=versioned instead.")
