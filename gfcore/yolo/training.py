"""Training with Ultralytics: the argument set, the per-epoch callbacks and the out-of-memory retry."""

from __future__ import annotations

import difflib
import gc
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore.core.errors import ConfigError, TrainingError
from gfcore.yolo.callbacks import CheckpointKeeper, EpochLogger
from gfcore.yolo.model import build_model

if TYPE_CHECKING:
    from gfcore.config.schema import Config, TrainConfig

log = logging.getLogger(__name__)

# Arguments GuardianFlow sets from other parts of the config: naming them in train.extra is a mistake.
_OWNED_ELSEWHERE = {"model": "model.architecture", "data": "data.path", "imgsz": "model.imgsz",
                    "device": "backend.device", "project": "(set by GuardianFlow)", "name": "(set by GuardianFlow)",
                    "exist_ok": "(set by GuardianFlow)", "mode": "(set by GuardianFlow)",
                    "task": "task.type", "half": "backend.precision", "int8": "backend.precision"}
# TrainConfig's keys that are GuardianFlow's own, not Ultralytics' train arguments.
GF_TRAIN_KEYS = ("min_batch", "trainer", "code_path", "checkpoint_every", "resume_run_id")


@dataclass
class TrainResult:
    save_dir: Path
    best: Path
    last: Path
    final: dict[str, float]  # det.* of the final evaluation (best.pt)
    per_class: dict[str, float]  # det.ap50_95.{class}
    epochs: int  # epochs trained
    batch: int  # the batch size that trained
    oom_retries: list[str] = field(default_factory=list)


def check_train_args(train: TrainConfig) -> None:
    """Every `train.extra` key must be an Ultralytics train argument that GuardianFlow does not set itself."""
    from ultralytics.utils import DEFAULT_CFG_KEYS

    own = set(asdict(train)) - {"extra", *GF_TRAIN_KEYS}
    for key in train.extra:
        if key in own:
            raise ConfigError(f"train.extra.{key} duplicates train.{key}: set train.{key}={train.extra[key]} instead.")
        if key in _OWNED_ELSEWHERE:
            raise ConfigError(f"train.extra.{key} is set by GuardianFlow from {_OWNED_ELSEWHERE[key]}: "
                              "change it there instead.")
        if key not in DEFAULT_CFG_KEYS:
            close = difflib.get_close_matches(key, list(DEFAULT_CFG_KEYS), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"train.extra.{key} is not an Ultralytics train argument.{hint} The valid names are "
                              "those of Ultralytics' default.yaml (e.g. mixup, degrees, hsv_h, label_smoothing).")


def ultralytics_args(cfg: Config, data_yaml: Path, project: Path, batch: int) -> dict[str, Any]:
    """The keyword arguments of `YOLO.train` for this scenario."""
    train = asdict(cfg.train)
    extra = train.pop("extra")
    for own in GF_TRAIN_KEYS:  # GuardianFlow's, not Ultralytics'
        train.pop(own)
    return {**train, **extra, "batch": batch, "data": str(data_yaml), "imgsz": cfg.model.imgsz,
            "device": cfg.backend.device, "project": str(project), "name": "train", "exist_ok": True}


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def train_yolo(cfg: Config, data_yaml: Path, project: Path, log_metrics: Callable[[dict[str, float], int], None],
               on_retry: Callable[[int, int, int, BaseException], None] | None = None,
               keep_checkpoint: Callable[[Path], None] | None = None) -> TrainResult:
    """Train a fresh model; on out-of-memory retry with half the batch, down to `train.min_batch`. Every
    `train.checkpoint_every` epochs the checkpoints just saved go to `keep_checkpoint` (an upload)."""
    batch, retries = cfg.train.batch, []
    while True:
        model = build_model(cfg.model)
        epoch_logger = EpochLogger(log_metrics)
        epoch_logger.attach(model)
        if keep_checkpoint is not None:
            CheckpointKeeper(keep_checkpoint, cfg.train.checkpoint_every).attach(model)
        try:
            _fit(model, ultralytics_args(cfg, data_yaml, project, batch))
            break
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            smaller = batch // 2
            if batch == -1 or smaller < cfg.train.min_batch:
                raise TrainingError(
                    f"out of memory at batch {batch}, and half of it is below train.min_batch="
                    f"{cfg.train.min_batch}: lower model.imgsz, pick a smaller model, or use a larger device."
                ) from exc
            retries.append(f"batch {batch} -> {smaller}")
            log.warning("out of memory at batch %d, retrying with batch %d", batch, smaller)
            if on_retry:
                on_retry(len(retries), batch, smaller, exc)
            batch = smaller
            _free_accelerator_memory()

    return _result(model.trainer, epoch_logger, batch, retries)


def resume_yolo(cfg: Config, data_yaml: Path, checkpoint: Path, save_dir: Path,
                log_metrics: Callable[[dict[str, float], int], None], logged_through: int,
                keep_checkpoint: Callable[[Path], None] | None = None) -> TrainResult:
    """Continue an interrupted training from its checkpoint (Ultralytics' resume: the model, optimizer, EMA and
    epoch of last.pt, with the arguments it was started with), writing into `save_dir`. Epochs up to
    `logged_through` are in the run's history already and are not logged again."""
    from ultralytics import YOLO

    model = YOLO(str(checkpoint))
    epoch_logger = EpochLogger(log_metrics, logged_through)
    epoch_logger.attach(model)
    if keep_checkpoint is not None:
        CheckpointKeeper(keep_checkpoint, cfg.train.checkpoint_every).attach(model)
    # `data` and `save_dir` as they are on this machine (the checkpoint's own may be another machine's paths).
    _fit(model, {"resume": True, "data": str(data_yaml), "save_dir": str(save_dir), "device": cfg.backend.device})
    return _result(model.trainer, epoch_logger, int(model.trainer.args.batch), [])


def _result(trainer: Any, epoch_logger: EpochLogger, batch: int, retries: list[str]) -> TrainResult:
    best, last = Path(trainer.best), Path(trainer.last)
    return TrainResult(
        save_dir=Path(trainer.save_dir),
        best=best if best.is_file() else last,  # a resume elsewhere whose epochs never beat the checkpoint's best
        last=last,
        final=epoch_logger.final,
        per_class=_per_class_ap(trainer),
        epochs=epoch_logger.epochs_logged,
        batch=batch,
        oom_retries=retries,
    )


def write_results_csv(path: Path, table: dict[str, list[Any]]) -> None:
    """Ultralytics' results.csv from a checkpoint's `train_results`, so that a resumed training appends to the
    rows of exactly the epochs its checkpoint holds (no row of an epoch the crash cut short)."""
    if not table.get("epoch"):
        return
    cols = list(table)
    lines = [",".join(cols)]
    for i in range(len(table["epoch"])):
        lines.append(",".join(f"{table[c][i]:.6g}" if isinstance(table[c][i], (int, float)) else str(table[c][i])
                              for c in cols))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _fit(model: Any, args: dict[str, Any]) -> None:
    """The one call into Ultralytics' training (a seam for tests that inject failures)."""
    model.train(**args)


def _per_class_ap(trainer: Any) -> dict[str, float]:
    metrics = getattr(getattr(trainer, "validator", None), "metrics", None)
    if metrics is None or not len(metrics.box.ap_class_index):
        return {}
    names = trainer.data["names"]
    return {f"det.ap50_95.{names[int(c)]}": float(ap) for c, ap in zip(metrics.box.ap_class_index, metrics.box.ap)}


def _free_accelerator_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
