"""Short synthetic video sequences for tracking, in MOTChallenge layout.

People walk across a fixed site backdrop at different depths; pairs walk towards each other at about
the same depth, so they cross and one hides the other for a while. Every helmet and vest is a tracked
object with its own id. Ground-truth rows are `frame,id,x,y,w,h,1,class,visibility`: class 1 (the
evaluated object) when at least half of the part is visible, class 8 (distractor) when a nearer
figure hides most of it, so a tracker is neither rewarded nor punished for what nobody could see.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gfcore.core import paths
from gfcore.data import synthetic
from gfcore.data.cached import MANIFEST, build_once
from gfcore.mot.files import write_seqinfo

if TYPE_CHECKING:
    from gfcore.config.schema import DemoDataConfig

SEQUENCES_VERSION = 1
FRAME_RATE = 10
EVALUATED, DISTRACTOR = 1, 8  # TrackEval's MOTChallenge class ids
MIN_VISIBLE = 0.5


@dataclass
class Walker:
    figure: synthetic.Figure
    vx: float  # pixels per frame
    phase: float  # of the small up-and-down bob of a walking gait


def sequences_key(settings: DemoDataConfig) -> str:
    blob = json.dumps({"version": SEQUENCES_VERSION, "seed": settings.seed, "size": settings.image_size,
                       "people": settings.max_people, "sequences": settings.sequences,
                       "frames": settings.sequence_frames}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ensure_demo_sequences(settings: DemoDataConfig, cache_dir: str | Path | None = None) -> Path | None:
    """The folder holding the demo sequences (one subfolder each), generated on first use; None if none asked."""
    if settings.sequences < 1:
        return None
    root = Path(cache_dir) if cache_dir else paths.cache_dir()
    target = root / "data" / f"demo-seq-{sequences_key(settings)}"
    if (target / MANIFEST).is_file():
        return target

    def build(tmp: Path) -> dict:
        for i in range(settings.sequences):
            rng = np.random.default_rng([settings.seed, 1000 + i])
            write_sequence(tmp / f"demo-{i + 1:02d}", rng, settings.image_size, settings.sequence_frames,
                           settings.max_people)
        return {"version": SEQUENCES_VERSION, "hash": hash_sequences(tmp)}

    return build_once(target, build, "the demo sequences")


def hash_sequences(folder: Path) -> str:
    """Content hash of every sequence's seqinfo, ground truth and frames."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def write_sequence(folder: Path, rng: np.random.Generator, size: int, frames: int, max_people: int) -> None:
    import cv2

    (folder / "img1").mkdir(parents=True)
    (folder / "gt").mkdir()
    walkers = _walkers(rng, size, frames, max(2, max_people))
    backdrop = synthetic.background(rng, size).astype(np.float32)
    rows = []
    for t in range(1, frames + 1):
        noise = rng.normal(0.0, 4.0, size=backdrop.shape).astype(np.float32)
        img = np.clip(backdrop + noise, 0, 255).astype(np.uint8)
        for track, cls, box, visible in _render(img, walkers, t):
            x1, y1 = max(0.0, box[0]), max(0.0, box[1])
            x2, y2 = min(float(size), box[2]), min(float(size), box[3])
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue  # out of the frame
            mot_class = EVALUATED if visible >= MIN_VISIBLE else DISTRACTOR
            rows.append(f"{t},{track},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,{mot_class},{visible:.3f}")
        cv2.imwrite(str(folder / "img1" / f"{t:06d}.png"), img)
    (folder / "gt" / "gt.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
    write_seqinfo(folder, folder.name, frames, size, size, FRAME_RATE, ".png")


def _walkers(rng: np.random.Generator, size: int, frames: int, people: int) -> list[Walker]:
    """Pairs at about the same depth walking towards each other, meeting mid-sequence."""
    walkers = []
    for i in range(people):
        if i % 2 == 0:
            height = float(rng.uniform(0.4, 0.75)) * size
            foot = min(size - 1.0, height + float(rng.uniform(0.0, size - height)))
            meet = float(rng.uniform(0.3, 0.7)) * size
            speed = float(rng.uniform(0.5, 1.0)) * size / frames
        else:  # the partner: a little nearer or farther, from the other side
            height *= float(rng.uniform(0.85, 1.15))
            foot = min(size - 1.0, foot + float(rng.uniform(-0.05, 0.05)) * size)
        direction = 1.0 if i % 2 == 0 else -1.0
        vx = direction * speed * float(rng.uniform(0.8, 1.2))
        x0 = meet - vx * frames / 2  # both reach `meet` half way through
        fig = synthetic.Figure.random(rng, x0, foot, height)
        fig.helmet, fig.vest = fig.helmet or i % 2 == 0, fig.vest or i % 2 == 1  # every walker wears something
        walkers.append(Walker(figure=fig, vx=vx, phase=float(rng.uniform(0, 2 * np.pi))))
    return walkers


def _render(img: np.ndarray, walkers: list[Walker], t: int) -> list[tuple[int, int, tuple, float]]:
    """Draw frame t far-to-near; return (track id, class, box, visible fraction) per drawn part."""
    drawn = []
    order = sorted(range(len(walkers)), key=lambda i: walkers[i].figure.height)
    for i in order:
        w = walkers[i]
        fig = w.figure
        placed = synthetic.Figure(**{**fig.__dict__, "x": fig.x + w.vx * t,
                                     "y": fig.y + 0.01 * fig.height * np.sin(w.phase + t)})
        for cls, *box in synthetic.draw_figure(img, placed):
            drawn.append((2 * i + cls + 1, cls, tuple(box), synthetic.crop(img, box).copy()))
    out = []
    for track, cls, box, before in drawn:
        visible = float((synthetic.crop(img, box) == before).all(axis=-1).mean()) if before.size else 0.0
        out.append((track, cls, box, visible))
    return out

