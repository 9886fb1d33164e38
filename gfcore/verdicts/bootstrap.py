"""Paired bootstrap intervals of the differences between two models measured on the same images.

Detection: each resample draws the evaluation images with replacement, the same draw for both models, and computes
every det.* figure of both on it; the 2.5th and 97.5th percentiles of candidate - champion over the resamples are
the 95 % interval (Koehn 2004; sacreBLEU's --paired-bs). Pairing is what makes it sharp: an image that is hard for
both models moves both figures together and not their difference.

Latency: a two-level bootstrap of the alternating measurement (gfcore.automation.challenge): the rounds are drawn
with replacement (the same rounds for both models, whose slots in a round lie side by side in time), then each drawn
round's calls; the figure is rebuilt as measured, the median over the rounds of each round's percentile, and the
interval is that of the candidate / champion ratio. Resampling the calls alone would ignore load that came and went
between rounds, and a verdict would call the machine's moment a difference between the models.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from gfcore.verdicts.images import ImageResults

Z95 = 1.959964  # two-sided 95 %


@dataclass(frozen=True)
class Interval:
    """A compared figure: the point estimate of candidate - champion (or candidate / champion), its 95 % interval,
    and the smallest difference this data can show (`mde`, None where not defined)."""

    point: float
    low: float
    high: float
    mde: float | None = None


def resample_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """`resamples` x `n`: how often each of n items is drawn in each resample (n draws with replacement)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    rows = np.repeat(np.arange(resamples), n)
    return np.bincount(rows * n + draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def aligned(candidate: ImageResults, champion: ImageResults) -> None:
    """Both models must have been scored on the same images, in the same order (one validation data loader)."""
    if candidate.images != champion.images:
        raise ValueError(f"the two models were evaluated on different images ({len(candidate)} and {len(champion)}): "
                         "a paired comparison needs the same split")


def detection_intervals(candidate: ImageResults, champion: ImageResults, resamples: int,
                        seed: int) -> dict[str, Interval]:
    """The interval of candidate - champion of every det.* figure both have. `mde`: the difference that two models
    making unrelated errors would need on this split to be told apart at 95 % (1.96 x sqrt(2) x the champion's own
    bootstrap standard error): a paired test of similar models is sharper, so a difference below it may still be
    decided, one above it always is."""
    aligned(candidate, champion)
    weights = resample_counts(len(candidate), resamples, seed)
    point_c, point_h = candidate.figures(), champion.figures()
    # The two models' resamples side by side: numpy releases the GIL in its array work, and there are two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        boot_c, boot_h = pool.map(lambda results: results.figures(weights), (candidate, champion))
    out = {}
    for key in sorted(set(point_c) & set(point_h)):
        point = float(point_c[key][0] - point_h[key][0])
        if not math.isfinite(point):
            continue
        low, high = percentile_interval(boot_c[key] - boot_h[key])
        spread = boot_h[key][np.isfinite(boot_h[key])]
        mde = Z95 * math.sqrt(2) * float(spread.std(ddof=1)) if spread.size > 1 else None
        out[key] = Interval(point, low, high, mde)
    return out


def latency_intervals(candidate: list[np.ndarray], champion: list[np.ndarray], resamples: int, seed: int,
                      quantiles: dict[str, float]) -> dict[str, Interval]:
    """The interval of the candidate / champion ratio of each named percentile (e.g. {"sys.latency_p95_ms": 95}),
    from the wall times of each round (one array per round and model, the two models' rounds side by side in time).
    Two levels, as the figure was measured: a resample draws the rounds with replacement (the same rounds for both
    models: a round's load is shared), then each drawn round's calls; so load that came and went between rounds
    widens the interval instead of moving it. `mde` is relative (0.04: 4 %)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, q in quantiles.items():
        point_c = float(np.median([np.percentile(r, q) for r in candidate]))
        point_h = float(np.median([np.percentile(r, q) for r in champion]))
        rounds = rng.integers(0, len(candidate), size=(resamples, len(candidate)))
        boot_c = _round_medians(candidate, rounds, q, rng)
        boot_h = _round_medians(champion, rounds, q, rng)
        low, high = percentile_interval(boot_c / boot_h)
        mde = Z95 * math.sqrt(2) * float(boot_h.std(ddof=1)) / point_h if point_h > 0 else None
        out[name] = Interval(point_c / point_h if point_h > 0 else math.nan, low, high, mde)
    return out


def _round_medians(per_round: list[np.ndarray], rounds: np.ndarray, q: float, rng: np.random.Generator) -> np.ndarray:
    """For each resample: each drawn round's calls redrawn, that round's percentile, the median over the rounds."""
    figures = np.empty(rounds.shape)
    for r, calls in enumerate(per_round):
        calls = np.asarray(calls, dtype=float)
        drawn = rounds == r  # (resamples, slots) where round r was drawn
        idx = rng.integers(0, calls.size, size=(int(drawn.sum()), calls.size))
        figures[drawn] = np.percentile(calls[idx], q, axis=1)
    return np.median(figures, axis=1)
