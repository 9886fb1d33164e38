"""Hand-made MOTChallenge sequences whose metrics can be worked out on paper."""

from __future__ import annotations

from pathlib import Path

from gfcore.mot.files import write_seqinfo


def box(x: float, y: float = 10, w: float = 20, h: float = 30) -> str:
    return f"{x:g},{y:g},{w:g},{h:g}"


def write_seq(gt_dir: Path, pred_dir: Path | None, name: str, gt: list[str], pred: list[str] | None,
              length: int = 10) -> None:
    folder = gt_dir / name
    (folder / "gt").mkdir(parents=True)
    write_seqinfo(folder, name, length, 200, 100, 10, ".jpg")
    (folder / "gt" / "gt.txt").write_text("".join(f"{line}\n" for line in gt))
    if pred_dir is not None and pred is not None:
        pred_dir.mkdir(parents=True, exist_ok=True)
        (pred_dir / f"{name}.txt").write_text("".join(f"{line}\n" for line in pred))


def gt_line(t: int, track: int, x: float, cls: int = 1, zero_marked: bool = False) -> str:
    return f"{t},{track},{box(x)},{0 if zero_marked else 1},{cls},1.0"


def pred_line(t: int, track: int, x: float, conf: float = 0.9) -> str:
    return f"{t},{track},{box(x)},{conf},-1,-1,-1"


def write_frames(folder: Path, length: int, ext: str = ".jpg") -> None:
    """Plain noise frames 1..length, 200x100, so trackers have something to read."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    (folder / "img1").mkdir(parents=True, exist_ok=True)
    for t in range(1, length + 1):
        cv2.imwrite(str(folder / "img1" / f"{t:06d}{ext}"), rng.integers(0, 255, (100, 200, 3), dtype=np.uint8))
