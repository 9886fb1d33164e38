"""One model's detection results on one split, kept per image, and the det.* figures of any reweighting of the
images: weights of ones give Ultralytics' own figures; a bootstrap resample gives each image its count of draws.

Ultralytics' validator pools the per-image matches and computes AP once (`ap_per_class`); a paired bootstrap needs
the same figures over a thousand resamples, so they are computed here for all resamples at once, following
Ultralytics' definitions step for step (101-point interpolated AP of the precision envelope, precision and recall
at the confidence of the highest smoothed mean F1), with each prediction weighted by its image's draw count.
Each figure of a resample is exactly Ultralytics' figure of the drawn images put together (tests/verdicts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gfcore.core.vocabulary import DET_F1, DET_MAP50, DET_MAP50_95, DET_OP, DET_PRECISION, DET_RECALL

AP_X = np.linspace(0, 1, 101)  # COCO's 101 recall points (Ultralytics' compute_ap)
CONF_X = np.linspace(0, 1, 1000)  # Ultralytics' confidence grid of the P, R and F1 curves
EPS = 1e-16
CHUNK = 500  # resamples computed together: bounds memory at ~CHUNK x 8 x 1000 (the confidence grid)



@dataclass
class ImageResults:
    """Per image: its predictions (confidence, class, correct at IoU 0.50:0.95) and its labels' classes; and the
    counts at the operating confidence (true positives, predictions, labels per class), matched among the
    predictions at or above that confidence only."""

    names: list[str]  # class names, by class id
    images: list[str] = field(default_factory=list)
    tp: list[np.ndarray] = field(default_factory=list)  # (n_pred, 10) bool
    conf: list[np.ndarray] = field(default_factory=list)
    pred_cls: list[np.ndarray] = field(default_factory=list)
    target_cls: list[np.ndarray] = field(default_factory=list)
    op_counts: list[np.ndarray] = field(default_factory=list)  # (3, n_classes): tp, predictions, labels
    op_conf: float = 0.25

    def add(self, image: str, tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray,
            op_tp: np.ndarray) -> None:
        """One image; `op_tp` marks the predictions at or above op_conf that match a label at IoU 0.5."""
        nc = len(self.names)
        keep = conf >= self.op_conf
        counts = np.stack([np.bincount(pred_cls[keep][op_tp].astype(int), minlength=nc)[:nc],
                           np.bincount(pred_cls[keep].astype(int), minlength=nc)[:nc],
                           np.bincount(target_cls.astype(int), minlength=nc)[:nc]])
        self.images.append(image)
        self.tp.append(np.asarray(tp, dtype=bool).reshape(len(conf), 10))
        self.conf.append(np.asarray(conf, dtype=float))
        self.pred_cls.append(np.asarray(pred_cls, dtype=int))
        self.target_cls.append(np.asarray(target_cls, dtype=int))
        self.op_counts.append(counts)

    def __len__(self) -> int:
        return len(self.images)

    def figures(self, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """det.* of each row of `weights` (resamples x images; None: every image once), one array per figure:
        det.mAP50, det.mAP50_95, det.precision, det.recall, det.f1, det.ap50_95.{class}, and at the operating
        confidence det.op.{precision,recall,f1,missed} pooled and per class."""
        w = np.ones((1, len(self))) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
        key = (id(self.conf), id(self.tp), id(self.pred_cls), len(self.images))
        if getattr(self, "_prepared", (None,))[0] != key:  # a challenge asks for the point and the resamples
            self._prepared = (key, _prepare(self))
        prepared = self._prepared[1]
        out: dict[str, list[np.ndarray]] = {}
        for start in range(0, w.shape[0], CHUNK):
            chunk = w[start:start + CHUNK]
            for key, values in {**_average_precision(prepared, chunk), **operating_point(self, chunk)}.items():
                out.setdefault(key, []).append(values)
        return {key: np.concatenate(parts) for key, parts in out.items()}


def _pooled(results: ImageResults) -> tuple[np.ndarray, ...]:
    """All predictions in Ultralytics' order (sorted by confidence over the concatenated images), with the image
    each came from; and the labels per image and class."""
    n = len(results)
    conf = np.concatenate(results.conf) if n else np.zeros(0)
    tp = np.concatenate(results.tp) if n else np.zeros((0, 10), bool)
    cls = np.concatenate(results.pred_cls) if n else np.zeros(0, int)
    img = np.repeat(np.arange(n), [len(c) for c in results.conf])
    order = np.argsort(-conf)
    labels = np.stack([c[2] for c in results.op_counts]) if n else np.zeros((0, len(results.names)))
    return conf[order], tp[order], cls[order], img[order], labels


@dataclass
class _ClassSums:
    """One class's boxes, reduced to what any reweighting of the images needs: running sums per image (weights @
    them gives a resample's running sums) at the points that shape each threshold's AP, and at the confidence grid
    with the nearest boxes of each image around each grid point."""

    ap_points: list[tuple[np.ndarray, np.ndarray]]  # per IoU threshold: (true positives, boxes) per image
    grid_tp: np.ndarray  # (images, grid): true positives at IoU 0.50 at or before each grid point
    grid_seen: np.ndarray
    has_box: np.ndarray  # (images,): the image has a box of this class
    first_after: np.ndarray  # (images, grid): the image's first box after the grid point (n: none)
    last_at: np.ndarray  # (images, grid): its last box at or before it (-1: none)
    order_after: np.ndarray  # (images, grid): images by first_after, nearest first
    order_at: np.ndarray  # (images, grid): images by last_at, nearest first
    x: np.ndarray  # 1 - confidence of each box, increasing; one extra entry for "none"
    hit: np.ndarray  # each box correct at IoU 0.50; one extra entry


@dataclass
class _Prepared:
    names: list[str]
    labels: np.ndarray  # (images, classes)
    classes: list[_ClassSums | None]


def _prepare(results: ImageResults) -> _Prepared:
    conf, tp, cls, img, labels = _pooled(results)
    images, q = len(results), 1.0 - CONF_X
    classes: list[_ClassSums | None] = []
    for c in range(len(results.names)):
        sel = np.flatnonzero(cls == c)
        if not sel.size:
            classes.append(None)  # Ultralytics: a class with labels but no box has AP 0 and flat zero curves
            continue
        onehot = np.zeros((images, sel.size))
        onehot[img[sel], np.arange(sel.size)] = 1.0
        seen = np.cumsum(onehot, axis=1)
        ap_points = []
        for t in range(tp.shape[1]):
            hits = tp[sel, t]
            # Only two kinds of point shape the AP: each true positive, and the last false positive of each run
            # of them (the others sit at the same recall with higher precision, which the envelope, read from the
            # right, never uses). Running sums at those points give the same AP at a fraction of the cost.
            kept = np.flatnonzero(hits | (~hits & np.append(hits[1:], True)))
            ap_points.append((np.cumsum(onehot * hits, axis=1)[:, kept], seen[:, kept]))
        x = 1.0 - conf[sel]
        at = np.searchsorted(x, q, side="right") - 1  # the last box at or before each grid point (-1: none)
        before, any_before = np.maximum(at, 0), (at >= 0)
        first_after = np.full((images, q.size), sel.size)
        last_at = np.full((images, q.size), -1)
        for i in range(images):
            pos = np.flatnonzero(img[sel] == i)
            if pos.size:
                k = np.searchsorted(pos, at, side="right")
                first_after[i] = np.where(k < pos.size, pos[np.minimum(k, pos.size - 1)], sel.size)
                last_at[i] = np.where(k > 0, pos[np.maximum(k - 1, 0)], -1)
        classes.append(_ClassSums(
            ap_points, np.cumsum(onehot * tp[sel, 0], axis=1)[:, before] * any_before, seen[:, before] * any_before,
            onehot.any(axis=1), first_after, last_at, np.argsort(first_after, axis=0, kind="stable"),
            np.argsort(-last_at, axis=0, kind="stable"), np.append(x, 0.0), np.append(tp[sel, 0], False)))
    return _Prepared(list(results.names), labels, classes)


def _average_precision(prepared: _Prepared, w: np.ndarray) -> dict[str, np.ndarray]:
    rows, nc = w.shape[0], len(prepared.names)
    nt = 10
    n_labels = w @ prepared.labels  # (rows, classes)
    ap = np.zeros((rows, nc, nt))
    p_curve, r_curve = np.zeros((rows, nc, CONF_X.size)), np.zeros((rows, nc, CONF_X.size))
    for c, sums in enumerate(prepared.classes):
        if sums is None:
            continue
        n_l = n_labels[:, c:c + 1] + EPS
        p_curve[:, c], r_curve[:, c] = _confidence_curves(w, sums, n_l)
        for t, (tp_by_image, seen_by_image) in enumerate(sums.ap_points):
            tpc, seen = w @ tp_by_image, w @ seen_by_image
            # No drawn box yet: precision 1, as Ultralytics' curve left of its first box.
            precision = np.divide(tpc, seen, out=np.ones_like(tpc), where=seen > 0)
            ap[:, c, t] = _interpolated_ap(tpc / n_l, precision)
    present = n_labels > 0  # Ultralytics averages over the classes that have labels
    counted = np.maximum(present.sum(1), 1)
    f1_curve = 2 * p_curve * r_curve / (p_curve + r_curve + EPS)
    best = _smooth((f1_curve * present[..., None]).sum(1) / counted[:, None]).argmax(1)
    at = np.arange(rows)
    p, r = p_curve[at, :, best], r_curve[at, :, best]
    mean_p, mean_r = (p * present).sum(1) / counted, (r * present).sum(1) / counted
    out = {DET_MAP50: (ap[:, :, 0] * present).sum(1) / counted,
           DET_MAP50_95: (ap.mean(2) * present).sum(1) / counted,
           DET_PRECISION: mean_p, DET_RECALL: mean_r,
           DET_F1: np.divide(2 * mean_p * mean_r, mean_p + mean_r, out=np.zeros(rows), where=mean_p + mean_r > 0)}
    for c, name in enumerate(prepared.names):
        out[f"det.ap50_95.{name}"] = np.where(present[:, c], ap[:, c].mean(1), np.nan)
    return out


def operating_point(results: ImageResults, w: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and missed labels at the operating confidence, per class and pooled over classes
    (a pooled figure counts boxes: it is how many violations a site's model misses, whatever their class)."""
    counts = np.stack(results.op_counts) if len(results) else np.zeros((0, 3, len(results.names)))
    tp, pred, lab = (w @ counts[:, k, :] for k in range(3))  # (rows, classes)
    out = {}
    for suffix, (t, p, g) in [("", (tp.sum(1), pred.sum(1), lab.sum(1)))] + [
            (f".{name}", (tp[:, c], pred[:, c], lab[:, c])) for c, name in enumerate(results.names)]:
        out[f"{DET_OP}precision{suffix}"] = np.divide(t, p, out=np.full(t.shape, np.nan), where=p > 0)
        out[f"{DET_OP}recall{suffix}"] = np.divide(t, g, out=np.full(t.shape, np.nan), where=g > 0)
        out[f"{DET_OP}f1{suffix}"] = np.divide(2 * t, p + g, out=np.full(t.shape, np.nan), where=p + g > 0)
        out[f"{DET_OP}missed{suffix}"] = g - t
    return out


def _interpolated_ap(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Ultralytics' compute_ap for every row: sentinels, precision envelope, 101-point interpolation, trapezoid."""
    rows = recall.shape[0]
    mrec = np.concatenate([np.zeros((rows, 1)), recall, recall[:, -1:], np.ones((rows, 1))], axis=1)
    mpre = np.concatenate([np.ones((rows, 1)), precision, np.zeros((rows, 2))], axis=1)
    envelope = np.flip(np.maximum.accumulate(np.flip(mpre, 1), axis=1), 1)
    values, = _interp_rows(AP_X, mrec, envelope)
    return np.trapezoid(values, AP_X, axis=1)


def _interp_rows(x: np.ndarray, xp: np.ndarray, *fps: np.ndarray) -> list[np.ndarray]:
    """np.interp(x, xp[i], fp[i]) for every row i at once and every fp given (each row of xp non-decreasing,
    within [0, 1]): rows are shifted apart by 2 so that one searchsorted serves them all."""
    rows, n = xp.shape
    shift = 2.0 * np.arange(rows)[:, None]
    flat = (xp + shift).ravel()
    q = x[None, :] + shift
    j = np.searchsorted(flat, q.ravel(), side="right").reshape(q.shape) - 1
    base = np.arange(rows)[:, None] * n
    j = np.clip(j, base, base + n - 2)
    x0 = flat[j]
    dx = flat[j + 1] - x0
    step = np.divide(q - x0, dx, out=np.zeros_like(dx), where=dx > 0)
    left, right = q < flat[base], q >= flat[base + n - 1]
    out = []
    for fp in fps:
        values = np.ascontiguousarray(fp).ravel()
        f0 = values[j]
        got = f0 + (values[j + 1] - f0) * step
        got = np.where(left, fp[:, :1], got)  # left of the first point
        out.append(np.where(right, fp[:, -1:], got))  # at or right of the last point
    return out


def _confidence_curves(w: np.ndarray, sums: _ClassSums, n_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ultralytics' precision and recall curves of one class over the confidence grid (np.interp over the boxes'
    confidences, 1 / 0 left of the first box), for every row of image weights, as if each drawn box were repeated
    as often as its image was drawn.

    np.interp at a grid point reads two knots: the last drawn box at or before it (its running sums, which are the
    running sums at the grid point itself, since the boxes in between were not drawn) and the first drawn box after
    it, entered through its first copy. So per grid point only the running sums there and the nearest drawn box on
    each side are needed."""
    q = 1.0 - CONF_X
    drawn = w > 0
    tpc, seen = w @ sums.grid_tp, w @ sums.grid_seen
    nxt = _nearest_drawn(drawn, sums.first_after, sums.order_after, min)
    prv = _nearest_drawn(drawn, sums.last_at, sums.order_at, max)
    none = len(sums.x) - 1
    has_next = nxt < none
    x_prev, x_next, hit_next = sums.x[prv], sums.x[np.minimum(nxt, none)], sums.hit[np.minimum(nxt, none)]
    step = np.divide(q - x_prev, x_next - x_prev, out=np.zeros(prv.shape), where=has_next & (x_next > x_prev))
    exit_p = np.divide(tpc, seen, out=np.ones_like(tpc), where=seen > 0)
    entry_p = (tpc + hit_next) / (seen + 1)
    exit_r, entry_r = tpc / n_l, (tpc + hit_next) / n_l
    p = np.where(has_next, exit_p + (entry_p - exit_p) * step, exit_p)
    r = np.where(has_next, exit_r + (entry_r - exit_r) * step, exit_r)
    p, r = np.where(prv >= 0, p, 1.0), np.where(prv >= 0, r, 0.0)  # left of the first drawn box
    none_drawn = ~(drawn & sums.has_box).any(axis=1)  # no box of this class drawn: Ultralytics' curves stay zero
    p[none_drawn], r[none_drawn] = 0.0, 0.0
    return p, r


def _nearest_drawn(drawn: np.ndarray, position: np.ndarray, order: np.ndarray, pick, look: int = 8) -> np.ndarray:
    """Per row and grid point, `pick` (min or max) of `position` over the drawn images. Each image is drawn with
    probability ~0.63, so the answer is nearly always among the `look` images nearest the grid point; the rare rows
    where none of them was drawn are settled over every image."""
    images, grid = position.shape
    near = order[:min(look, images)]  # (look, grid)
    hit = drawn[:, near]  # (rows, look, grid)
    first = hit.argmax(axis=1)
    found = hit.any(axis=1)
    out = position[near[first, np.arange(grid)], np.arange(grid)]
    if not found.all():
        rows, cols = np.nonzero(~found)
        fallback = np.where(drawn[rows], position[:, cols].T, position.max() + 1 if pick is min else -1)
        out[rows, cols] = fallback.min(axis=1) if pick is min else fallback.max(axis=1)
    return out


def _smooth(y: np.ndarray, f: float = 0.1) -> np.ndarray:
    """Ultralytics' box filter (utils.metrics.smooth) along the last axis of every row."""
    nf = round(y.shape[1] * f * 2) // 2 + 1
    pad = nf // 2
    padded = np.concatenate([np.repeat(y[:, :1], pad, 1), y, np.repeat(y[:, -1:], pad, 1)], axis=1)
    csum = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(padded, axis=1)], axis=1)
    return (csum[:, nf:] - csum[:, :-nf]) / nf
