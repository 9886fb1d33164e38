"""Ultralytics trainer callbacks that turn its per-epoch figures into GuardianFlow's metric names.

They know nothing of MLflow: they call `log(metrics, step)`, which the caller points at the run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gfcore.core import interrupts
from gfcore.core.vocabulary import DET, DET_F1, DET_MAP50, DET_MAP50_95, DET_PRECISION, DET_RECALL, VAL

# Ultralytics' detection metric keys -> DESIGN.md section 3 names.
_DET_KEYS = {
    "metrics/precision(B)": DET_PRECISION,
    "metrics/recall(B)": DET_RECALL,
    "metrics/mAP50(B)": DET_MAP50,
    "metrics/mAP50-95(B)": DET_MAP50_95,
}


def detection_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """det.* from Ultralytics' validator results, with det.f1 from precision and recall."""
    out = {name: float(raw[key]) for key, name in _DET_KEYS.items() if key in raw}
    p, r = out.get(DET_PRECISION), out.get(DET_RECALL)
    if p is not None and r is not None:
        out[DET_F1] = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return out


def epoch_metrics(det: dict[str, float]) -> dict[str, float]:
    """Per-epoch detection figures are validation-split figures: `det.mAP50` -> `val.mAP50`. The plain `det.*`
    names belong to the run's headline (best.pt on registry.eval_split), so the two never share a chart."""
    return {f"{VAL}{k[len(DET):]}" if k.startswith(DET) else k: v for k, v in det.items()}


def loss_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """`train/box_loss` -> `train.box_loss`, `val/cls_loss` -> `val.cls_loss`, `lr/pg0` -> `lr.pg0`."""
    return {key.replace("/", ".", 1): float(v) for key, v in raw.items()
            if key.startswith(("train/", "val/", "lr/"))}


def stop_if_signalled(trainer: Any) -> None:
    """A stop (SIGTERM, Ctrl-C) whose exception Ultralytics swallowed (its TryExcept around plots swallows every
    exception) ends the training at the next batch, epoch end or its end, before the work after it."""
    interrupts.raise_if_stopped()


class EpochLogger:
    """Logs every epoch at `step=epoch` (1-based, as in results.csv) in one call: `val.*` figures, losses, lrs.

    Ultralytics runs `on_fit_epoch_end` once more after training, for its final validation of best.pt;
    no `on_train_epoch_end` precedes that call, which is how it is told apart. It is not logged (the chart
    shows epochs 1..N only): GuardianFlow evaluates best.pt itself, on registry.eval_split. Its figures are
    kept in `final`.
    """

    def __init__(self, log: Callable[[dict[str, float], int], None], logged_through: int = 0):
        self.log = log
        self.final: dict[str, float] = {}
        self.epochs_logged = 0
        self._trained_epoch = False
        # A resumed run: epochs 1..logged_through are in its history already (from before the crash), so a
        # checkpoint older than the history re-trains them without logging any step twice.
        self.logged_through = logged_through

    def attach(self, model: Any) -> None:
        model.add_callback("on_train_epoch_end", self.on_train_epoch_end)
        model.add_callback("on_fit_epoch_end", self.on_fit_epoch_end)
        for event in ("on_train_batch_end", "on_fit_epoch_end", "on_train_end"):
            model.add_callback(event, stop_if_signalled)

    def on_train_epoch_end(self, trainer: Any) -> None:
        self._trained_epoch = True

    def on_fit_epoch_end(self, trainer: Any) -> None:
        step = trainer.epoch + 1
        det = detection_metrics(trainer.metrics)
        self.final = det  # until a final evaluation replaces it
        if not self._trained_epoch:  # Ultralytics' final validation of best.pt
            return
        self._trained_epoch = False
        if step > self.logged_through:
            self.log({**epoch_metrics(det), **loss_metrics(trainer.label_loss_items(trainer.tloss, prefix="train")),
                      **loss_metrics(trainer.metrics), **loss_metrics(trainer.lr)}, step)
        self.epochs_logged = step


def results_rows(table: dict[str, list[Any]]) -> dict[int, dict[str, float]]:
    """Ultralytics' results table (results.csv as a checkpoint's `train_results`: column -> values) as
    {epoch: the figures EpochLogger logs for it}; the same names, so an epoch a crash kept out of the run's
    history (checkpoint saved, metrics not yet logged) can be logged from its checkpoint."""
    epochs = table.get("epoch") or []
    rows: dict[int, dict[str, float]] = {}
    for i, epoch in enumerate(epochs):
        raw = {key.strip(): values[i] for key, values in table.items() if i < len(values) and values[i] is not None}
        rows[int(epoch)] = {**epoch_metrics(detection_metrics(raw)), **loss_metrics(raw)}
    return rows


class CheckpointKeeper:
    """Hands Ultralytics' checkpoints to `keep(path)` every `every` epochs, right after it saved them: best.pt when
    it changed since last handed over, then last.pt (the resume point). `every=0`: never."""

    def __init__(self, keep: Callable[[Path], None], every: int):
        self.keep = keep
        self.every = every
        self._best_mtime: float | None = None

    def attach(self, model: Any) -> None:
        if self.every > 0:
            model.add_callback("on_model_save", self.on_model_save)

    def on_model_save(self, trainer: Any) -> None:
        if (trainer.epoch + 1) % self.every:
            return
        best, last = Path(trainer.best), Path(trainer.last)
        if best.is_file() and best.stat().st_mtime != self._best_mtime:
            self._best_mtime = best.stat().st_mtime
            self.keep(best)
        if last.is_file():
            self.keep(last)
