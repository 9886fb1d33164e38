"""Ultralytics' detection validation, keeping what each image contributed (gfcore.verdicts.images.ImageResults).

The validator already matches each image's predictions to its labels at the ten IoU thresholds; this subclass keeps
those matches per image instead of only their pooled curve, and matches once more among the predictions at or above
the site's operating confidence (a label taken by a discarded low-confidence box must count as found by a kept one).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gfcore.verdicts.images import ImageResults


def validator_class(names: list[str], op_conf: float) -> type:
    """A DetectionValidator subclass whose `metrics.per_image` holds the ImageResults of the run."""
    from ultralytics.models.yolo.detect import DetectionValidator

    class PerImageValidator(DetectionValidator):
        def init_metrics(self, model: Any) -> None:
            super().init_metrics(model)
            self.per_image = ImageResults(names=list(names), op_conf=op_conf)
            self.metrics.per_image = self.per_image

        def _process_batch(self, preds: dict[str, Any], batch: dict[str, Any]) -> dict[str, Any]:
            from ultralytics.utils.metrics import box_iou

            out = super()._process_batch(preds, batch)
            conf, cls = preds["conf"].cpu().numpy(), preds["cls"].cpu().numpy()
            keep = conf >= op_conf
            op_tp = np.zeros(int(keep.sum()), dtype=bool)
            if keep.any() and batch["cls"].shape[0]:
                iou = box_iou(batch["bboxes"], preds["bboxes"][keep])
                op_tp = self.match_predictions(preds["cls"][keep], batch["cls"], iou).cpu().numpy()[:, 0]
            self.per_image.add(str(batch.get("im_file", len(self.per_image))), out["tp"], conf, cls,
                               batch["cls"].cpu().numpy(), op_tp)
            return out

    return PerImageValidator
