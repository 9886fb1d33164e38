"""This folder's training (train.py) behind GuardianFlow's trainer interface, so it runs inside the `train`
entry point and is logged like GuardianFlow's own trainer:

    python -m guardianflow.train train.trainer=gf_trainer:PPETrainer \
        train.code_path=examples/legacy_experiments/donghwa-entec-ppe
"""
from pathlib import Path

from train import train

# Ultralytics' metric keys -> GuardianFlow's names
NAMES = {"metrics/precision(B)": "det.precision", "metrics/recall(B)": "det.recall",
         "metrics/mAP50(B)": "det.mAP50", "metrics/mAP50-95(B)": "det.mAP50_95"}


class PPETrainer:
    def __init__(self, ctx):
        self.ctx = ctx
        self.best_weights = None

    def train(self):
        def on_fit_epoch_end(trainer):
            if trainer.epoch + 1 > self.ctx.epochs:  # Ultralytics' own final validation: GuardianFlow does its own
                return
            metrics = {NAMES.get(k, k.replace("/", ".")): v for k, v in trainer.metrics.items()}
            metrics.update({f"train.{k.split('/')[-1]}": v for k, v in trainer.label_loss_items(trainer.tloss).items()})
            metrics.update({f"lr.{k.split('/')[-1]}": v for k, v in trainer.lr.items()})
            self.ctx.on_epoch(trainer.epoch + 1, metrics)

        trainer = train(str(self.ctx.data_yaml), self.ctx.epochs, self.ctx.batch, self.ctx.imgsz,
                        project=str(self.ctx.out_dir), callbacks={"on_fit_epoch_end": on_fit_epoch_end})
        self.best_weights = Path(trainer.best)
