"""Procedural rendering of people-like figures with helmet- and vest-like parts.

The renderer is shared by the still-image demo set and the short video sequences: a scene is a
background plus a list of `Figure`s, each drawn at any position and scale, so a sequence only has to
move figures between frames and re-render.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Class ids of the demo `ppe` task, in the order of its class names.
HELMET, VEST = 0, 1
CLASS_NAMES = ("helmet", "vest")

_HELMET_COLOURS = ((0, 215, 255), (255, 255, 255), (0, 140, 255), (40, 40, 220))  # BGR: yellow, white, orange, red
_VEST_COLOURS = ((0, 120, 255), (60, 255, 200), (0, 230, 255))  # fluorescent orange, lime, yellow
_SHIRT_COLOURS = ((110, 60, 30), (90, 90, 90), (40, 60, 90), (70, 40, 40), (30, 30, 30))  # dull blue, grey, brown ...
_SKIN_COLOURS = ((140, 170, 220), (90, 120, 170), (60, 80, 120))
_HAIR_COLOURS = ((20, 20, 20), (30, 50, 80), (60, 60, 60))


@dataclass
class Figure:
    """One person: `x`, `y` the centre of the feet, `height` in pixels, appearance fixed at creation."""

    x: float
    y: float
    height: float
    helmet: bool
    vest: bool
    helmet_colour: tuple[int, int, int]
    top_colour: tuple[int, int, int]
    skin_colour: tuple[int, int, int]
    hair_colour: tuple[int, int, int]

    @classmethod
    def random(cls, rng: np.random.Generator, x: float, y: float, height: float) -> Figure:
        helmet, vest = bool(rng.random() < 0.65), bool(rng.random() < 0.6)
        pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
        return cls(
            x=x,
            y=y,
            height=height,
            helmet=helmet,
            vest=vest,
            helmet_colour=pick(_HELMET_COLOURS),
            top_colour=pick(_VEST_COLOURS) if vest else pick(_SHIRT_COLOURS),
            skin_colour=pick(_SKIN_COLOURS),
            hair_colour=pick(_HAIR_COLOURS),
        )


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A site-like backdrop: a vertical gradient, a few machine- or pipe-like blocks and sensor noise."""
    import cv2

    top, bottom = rng.integers(60, 200, size=3), rng.integers(40, 160, size=3)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    img = (top * (1 - ramp) + bottom * ramp).repeat(size, axis=1).astype(np.float32)
    for _ in range(int(rng.integers(2, 6))):
        x1, y1 = (int(v) for v in rng.integers(0, size, size=2))
        w, h = (int(v) for v in rng.integers(size // 10, size // 2, size=2))
        colour = tuple(int(c) for c in rng.integers(30, 220, size=3))
        cv2.rectangle(img, (x1, y1), (x1 + w, y1 + h), colour, thickness=-1)
    img += rng.normal(0.0, 6.0, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def draw_figure(img: np.ndarray, fig: Figure) -> list[tuple[int, float, float, float, float]]:
    """Draw `fig` onto `img` in place; return its labelled parts as (class_id, x1, y1, x2, y2) in pixels."""
    import cv2

    h = fig.height
    head_r = 0.09 * h
    head_c = (fig.x, fig.y - h + 2.2 * head_r)
    torso = (fig.x - 0.17 * h, head_c[1] + head_r + 0.02 * h, fig.x + 0.17 * h, fig.y - 0.45 * h)
    legs_w = max(1, int(0.08 * h))
    thick = max(1, int(0.07 * h))
    boxes: list[tuple[int, float, float, float, float]] = []

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round(x)), int(round(y))

    # Legs and arms first so the torso and vest cover their joints.
    for dx in (-0.08 * h, 0.08 * h):
        cv2.line(img, pt(fig.x + dx, torso[3]), pt(fig.x + dx * 1.3, fig.y), (50, 40, 35), legs_w)
    for side in (-1, 1):
        shoulder = (fig.x + side * 0.17 * h, torso[1] + 0.03 * h)
        cv2.line(img, pt(*shoulder), pt(shoulder[0] + side * 0.1 * h, torso[3]), fig.top_colour, thick)
    cv2.rectangle(img, pt(torso[0], torso[1]), pt(torso[2], torso[3]), fig.top_colour, thickness=-1)
    if fig.vest:
        # Reflective bands are what makes a vest a vest.
        for frac in (0.45, 0.75):
            yb = torso[1] + frac * (torso[3] - torso[1])
            cv2.line(img, pt(torso[0], yb), pt(torso[2], yb), (210, 210, 210), max(1, int(0.03 * h)))
        boxes.append((VEST, torso[0], torso[1], torso[2], torso[3]))

    cv2.circle(img, pt(*head_c), int(round(head_r)), fig.skin_colour, thickness=-1)
    if fig.helmet:
        brim_y = head_c[1] - 0.1 * head_r
        axes = pt(head_r * 1.25, head_r * 1.1)
        cv2.ellipse(img, pt(head_c[0], brim_y), axes, 0, 180, 360, fig.helmet_colour, thickness=-1)
        cv2.line(img, pt(head_c[0] - head_r * 1.45, brim_y), pt(head_c[0] + head_r * 1.45, brim_y), fig.helmet_colour,
                 max(1, int(0.02 * h)))
        boxes.append((HELMET, head_c[0] - head_r * 1.45, brim_y - head_r * 1.1, head_c[0] + head_r * 1.45,
                      brim_y + 0.02 * h))
    else:
        cv2.ellipse(img, pt(head_c[0], head_c[1] - 0.2 * head_r), pt(head_r, head_r * 0.8), 0, 180, 360,
                    fig.hair_colour, thickness=-1)
    return boxes


def crop(img: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The pixels of an (x1, y1, x2, y2) box, clipped to the image."""
    h, w = img.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    return img[y1:y2, x1:x2]


def yolo_label_lines(boxes: list[tuple[int, float, float, float, float]], width: int, height: int) -> list[str]:
    """Boxes in pixels -> YOLO label lines (class cx cy w h, normalised), clipped to the image."""
    lines = []
    for cls, x1, y1, x2, y2 in boxes:
        x1, x2 = max(0.0, x1), min(float(width), x2)
        y1, y2 = max(0.0, y1), min(float(height), y2)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue  # (almost) entirely outside the frame
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        lines.append(f"{cls} {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")
    return lines
