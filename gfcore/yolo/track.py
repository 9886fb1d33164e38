"""Ultralytics multi-object tracking (ByteTrack or BoT-SORT) over a MOTChallenge sequence's frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gfcore.mot.files import SeqInfo, check_frames, write_tracks

TRACKER_FILES = {"bytetrack": "bytetrack.yaml", "botsort": "botsort.yaml"}  # Ultralytics' own configs


def track_sequence(model: Any, seq: SeqInfo, out_file: Path, tracker: str, imgsz: int, device: str,
                   conf: float | None, iou: float, progress: Any = None) -> int:
    """Track every frame of `seq` in order with a fresh tracker; write `out_file`; return the rows written."""
    check_frames(seq)
    frames = [seq.frame_path(t) for t in range(1, seq.length + 1)]
    rows = []
    # A fresh tracker for each sequence, kept across its frames: with persist=False Ultralytics would reset
    # the tracker whenever the source path changes, i.e. on every image file of a sequence.
    if getattr(model, "predictor", None) is not None and hasattr(model.predictor, "trackers"):
        del model.predictor.trackers
    results = model.track(source=[str(f) for f in frames], stream=True, persist=True,
                          tracker=TRACKER_FILES[tracker], imgsz=imgsz, device=device, conf=conf, iou=iou,
                          verbose=False)
    for frame, result in enumerate(results, 1):
        boxes = result.boxes
        if boxes is not None and boxes.id is not None:
            for (x1, y1, x2, y2), track, score in zip(boxes.xyxy.tolist(), boxes.id.tolist(), boxes.conf.tolist()):
                rows.append((frame, int(track), x1, y1, x2 - x1, y2 - y1, score))
        if progress is not None:
            progress()
    return write_tracks(out_file, rows)
