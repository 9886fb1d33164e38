"""The verdict of a challenge from the intervals of the figures it reads.

Each figure the verdict reads has a tolerance (the difference that matters) and an interval:
- better: the whole interval lies beyond the tolerance on the good side;
- worse: the whole interval lies beyond the tolerance on the bad side;
- within: the interval's bad end stays within the tolerance (no worse than the tolerance allows);
- unclear: the interval reaches past the tolerance on the bad side without lying wholly there.
The challenge is `worse` when one figure is worse, `better` when one is better and every other is better or within,
else `tie`, with the reason: which figure could not be decided and the smallest difference the data can show.

Latency is a guardrail, as A/B platforms treat guardrail metrics: it makes a challenge `worse` when its interval lies
wholly beyond the tolerance, and `better` on its own when it lies wholly on the good side, but an unclear latency does
not hold back a candidate that is clearly more accurate (on a shared CPU a same-sized model's latency is rarely
certain to a few per cent; bench/challenge_fidelity.py). Accuracy figures, safety-class recall among them, are never
guardrails: an unclear one keeps the verdict at `tie`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gfcore.verdicts.bootstrap import Interval

BETTER, WORSE, WITHIN, UNCLEAR = "better", "worse", "within", "unclear"


@dataclass(frozen=True)
class Reading:
    figure: str
    interval: Interval
    tolerance: float
    higher_is_better: bool = True
    ratio: bool = False  # the interval is of candidate / champion (compared with 1), else of candidate - champion
    basis: str = ""  # what the interval is over, for the reasons: "60 images", "300 timed calls per model"
    guard: bool = False  # a guardrail (latency): decides when clear, never holds a better candidate back
    label: str = ""  # how the reasons name the figure, e.g. "safety class helmet: det.op.recall.helmet"

    def gain(self) -> tuple[float, float]:
        """The interval as an improvement (positive: the candidate is better), low end first."""
        low, high = self.interval.low, self.interval.high
        if self.ratio:
            low, high = low - 1.0, high - 1.0
        return (low, high) if self.higher_is_better else (-high, -low)

    def status(self) -> str:
        low, high = self.gain()
        if not (math.isfinite(low) and math.isfinite(high)):
            return UNCLEAR
        if low > self.tolerance:
            return BETTER
        if high < -self.tolerance:
            return WORSE
        return WITHIN if low >= -self.tolerance else UNCLEAR

    def text(self) -> str:
        """`det.mAP50 +0.012 [-0.004, +0.027]`, `sys.latency_p95_ms x1.03 [0.97, 1.09]`."""
        i = self.interval
        shown = f"x{i.point:.2f} [{i.low:.2f}, {i.high:.2f}]" if self.ratio else \
            f"{i.point:+.3f} [{i.low:+.3f}, {i.high:+.3f}]"
        return f"{self.label or self.figure} {shown}"

    def tolerance_text(self) -> str:
        return f"{self.tolerance:.0%}" if self.ratio else f"{self.tolerance:g}"

    def mde_text(self) -> str:
        mde = self.interval.mde
        if mde is None or not math.isfinite(mde):
            return ""
        shown = f"{mde:.0%}" if self.ratio else f"{mde:.2g}"
        return f"; the smallest {self.figure} difference this data can show is about {shown}"


def decide(readings: list[Reading]) -> tuple[str, list[str]]:
    """`better`, `worse` or `tie`, and the reasons in words."""
    status = {r.figure: r.status() for r in readings}
    worse = [r for r in readings if status[r.figure] == WORSE]
    if worse:
        return "worse", [f"{r.text()}: worse by more than {r.tolerance_text()} over the whole interval" for r in worse]
    better = [r for r in readings if status[r.figure] == BETTER]
    unclear = [r for r in readings if status[r.figure] == UNCLEAR and not (better and r.guard)]
    if better and not unclear:
        return "better", [f"{r.text()}: better by more than {r.tolerance_text()} over the whole interval"
                          for r in better] + [
            f"{r.text()}: within its tolerance" if status[r.figure] == WITHIN else
            f"{r.text()}: a guardrail, not worse by more than {r.tolerance_text()} over the whole interval"
            for r in readings if r not in better]
    if unclear:
        reasons = [f"{r.text()}: not distinguishable{' on ' + r.basis if r.basis else ''}{r.mde_text()}"
                   for r in unclear]
        if better:
            reasons.insert(0, "better on " + ", ".join(r.text() for r in better) + ", but not sure enough of")
        return "tie", reasons
    return "tie", ["every compared figure is within its tolerance of the champion's: "
                   + "; ".join(r.text() for r in readings)]
