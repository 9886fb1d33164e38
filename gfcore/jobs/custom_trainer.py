"""Graduating an old folder: its own training code runs inside the `train` entry point and logs exactly like
the built-in trainer, through a small interface chosen by config:

    train.trainer=gf_trainer:PPETrainer  train.code_path=examples/legacy_experiments/donghwa-entec-ppe

The class is built with a `TrainContext` and must offer

    train() -> None        trains; calls ctx.on_epoch(epoch, metrics) once per epoch (1-based), with
                           GuardianFlow's names where it can (det.mAP50, train.box_loss, lr.pg0, ...);
                           per-epoch det.* figures are validation figures and are logged as val.*
    best_weights: Path     after train(): the best checkpoint, a .pt that Ultralytics loads

GuardianFlow then evaluates best_weights on registry.eval_split (the run's headline det.* and latency, as
for its own trainer), logs weights, results and plots from ctx.out_dir, and registers the model.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore.core.errors import ConfigError, TrainingError
from gfcore.yolo.callbacks import epoch_metrics
from gfcore.yolo.training import GF_TRAIN_KEYS, TrainResult

if TYPE_CHECKING:
    from gfcore.config.schema import Config

log = logging.getLogger(__name__)


@dataclass
class TrainContext:
    data_yaml: Path  # the scenario's dataset (YOLO data yaml)
    classes: list[str]
    imgsz: int
    device: str
    epochs: int
    batch: int
    seed: int
    out_dir: Path  # write weights, results.csv and plots here
    params: dict[str, Any]  # the whole train section (Ultralytics' names, train.extra merged in)
    on_epoch: Callable[[int, dict[str, float]], None]


def load_trainer_class(spec: str, code_path: str | None) -> type:
    """`module:Class`, imported with `code_path` first on sys.path; checked for the interface."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ConfigError(f"train.trainer={spec!r}: write it as module:Class, e.g. gf_trainer:PPETrainer.")
    if code_path:
        folder = Path(code_path).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(f"train.code_path={code_path}: no such folder.")
        sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"train.trainer={spec}: cannot import {module_name} ({exc}); set train.code_path to the "
                          "folder that holds it.") from None
    cls = getattr(module, class_name, None)
    if cls is None or not callable(getattr(cls, "train", None)):
        raise ConfigError(f"train.trainer={spec}: {module_name} has no class {class_name} with a train() method.")
    return cls


def train_with_folder_code(cfg: Config, data_yaml: Path, out_dir: Path, names: list[str],
                           log_metrics: Callable[[dict[str, float], int], None]) -> Any:
    """Run the folder's trainer, then evaluate its best weights like the built-in trainer; a TrainResult."""
    cls = load_trainer_class(cfg.train.trainer, cfg.train.code_path)
    epochs_seen: list[int] = []

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        if not 1 <= int(epoch) <= cfg.train.epochs:  # only epochs 1..N belong in the history
            log.warning("%s reported epoch %s outside 1..%d; ignored", cfg.train.trainer, epoch, cfg.train.epochs)
            return
        epochs_seen.append(int(epoch))
        log_metrics(epoch_metrics({k: float(v) for k, v in metrics.items() if v is not None}), int(epoch))

    params = {k: v for k, v in asdict(cfg.train).items() if k != "extra" and k not in GF_TRAIN_KEYS}
    ctx = TrainContext(data_yaml=data_yaml, classes=names, imgsz=cfg.model.imgsz, device=cfg.backend.device,
                       epochs=cfg.train.epochs, batch=cfg.train.batch, seed=cfg.train.seed, out_dir=out_dir,
                       params={**params, **cfg.train.extra}, on_epoch=on_epoch)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = cls(ctx)
    trainer.train()
    best = Path(getattr(trainer, "best_weights", "") or "")
    if not best.is_file():
        raise TrainingError(f"{cfg.train.trainer} finished without a best_weights file (got {best or 'nothing'}): "
                            "set self.best_weights to the best checkpoint in train().")
    weights = out_dir / "weights"
    weights.mkdir(exist_ok=True)
    if best.resolve() != (weights / "best.pt").resolve():
        shutil.copy2(best, weights / "best.pt")
    epochs = max(epochs_seen) if epochs_seen else cfg.train.epochs
    # The headline figures of best.pt are measured by the train entry point, as for its own trainer.
    return TrainResult(save_dir=out_dir, best=weights / "best.pt", last=weights / "best.pt", final={},
                       per_class={}, epochs=epochs, batch=cfg.train.batch)
