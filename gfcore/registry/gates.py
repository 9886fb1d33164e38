"""Promotion gates: `METRIC OP BOUND`, where the bound is a number (`det.mAP50>=0.8`) or the champion's own figure
with an optional margin (`det.mAP50>=champion-0.005`, `sys.latency_p95_ms<=champion*1.10`).

An absolute gate reads the version's own run. A gate on `champion` compares figures of one challenge run
(gfcore.automation.challenge), where the candidate and the champion were measured on the same data and machine
back to back: figures from two different runs would compare two machines or two datasets as well. Where the
challenge recorded a 95 % interval of the difference, the gate passes on the interval's pessimistic end (the low
end for `>=`, the high end for `<=`): `det.mAP50>=champion-0.005` holds when even the least favourable
difference the evaluation images allow is above -0.005.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from gfcore.core import suggest
from gfcore.core.errors import RegistryError
from gfcore.core.vocabulary import SYSTEM

OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_GATE = re.compile(rf"^\s*(?P<metric>[\w.\-/ ]+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
                   rf"(?:(?P<number>{_NUMBER})|champion\s*(?:(?P<how>[-+*])\s*(?P<margin>{_NUMBER}))?)\s*$")


@dataclass
class Gate:
    metric: str
    op: str
    threshold: float  # the number; for a relative gate, the margin
    relative: str | None = None  # None: absolute; "": the champion's figure; "+", "-", "*": with the margin

    @property
    def on_champion(self) -> bool:
        return self.relative is not None

    def bound(self, champion: float | None = None) -> float:
        if not self.on_champion:
            return self.threshold
        assert champion is not None
        return {"": champion, "+": champion + self.threshold, "-": champion - self.threshold,
                "*": champion * self.threshold}[self.relative]

    def __str__(self) -> str:
        rhs = f"{self.threshold:g}" if not self.on_champion else f"champion{self.relative}" + (
            f"{self.threshold:g}" if self.relative else "")
        return f"{self.metric}{self.op}{rhs}"


def parse_gate(text: str) -> Gate:
    m = _GATE.match(text)
    if not m:
        raise RegistryError(f"gate {text!r} is not of the form METRIC OP NUMBER or METRIC OP champion[+-*]NUMBER, "
                            "e.g. 'det.mAP50>=0.8', 'det.mAP50>=champion-0.005', 'sys.latency_p95_ms<=champion*1.10' "
                            f"(OP one of {', '.join(OPS)}).")
    if m.group("number") is not None:
        return Gate(metric=m.group("metric").strip(), op=m.group("op"), threshold=float(m.group("number")))
    how = m.group("how") or ""
    return Gate(metric=m.group("metric").strip(), op=m.group("op"),
                threshold=float(m.group("margin")) if how else 0.0, relative=how)


def check(name: str, version: str, gates: list[Gate], metrics: dict[str, float],
          challenge: dict[str, dict[str, float]] | None = None) -> list[str]:
    """Raise RegistryError listing every gate that fails; returns how each passed, in words. `metrics` are the
    version's run metrics (absolute gates); `challenge` the candidate's and champion's figures of one challenge
    run (gates on `champion`)."""
    failures, passed = [], []
    for gate in gates:
        if gate.on_champion:
            assert challenge is not None, "relative gates need a challenge"
            value = _figure(gate, challenge["candidate"], f"the challenge's candidate (version {version})")
            champion = _figure(gate, challenge["champion"], "the challenge's champion")
            bound = gate.bound(champion)
            judged, how = pessimistic(gate, value, champion, (challenge.get("intervals") or {}).get(gate.metric))
            where = f" (champion {champion:.4f})"
        else:
            value = _figure(gate, metrics, f"version {version} of {name}")
            bound, where, judged, how = gate.threshold, "", value, ""
        line = f"{gate.metric} is {value:.4f}{how}, needs {gate.op} {bound:.4f}{where}"
        (passed if OPS[gate.op](judged, bound) else failures).append(line)
    if failures:
        raise RegistryError(f"refused to promote version {version} of {name}: " + "; ".join(failures)
                            + ". Aliases are unchanged.")
    return passed


def pessimistic(gate: Gate, value: float, champion: float, interval: dict | None) -> tuple[float, str]:
    """The candidate's figure a relative gate is judged on: the least favourable end of the difference's interval
    added to (or, for a ratio, multiplied with) the champion's figure; the point value where none was recorded."""
    if not interval or gate.op not in (">=", ">", "<=", "<"):
        return value, ""
    end = interval["low"] if gate.op in (">=", ">") else interval["high"]
    judged = champion * end if interval.get("ratio") else champion + end
    return judged, f" ({judged:.4f} at the pessimistic end of its 95 % interval)"


def _figure(gate: Gate, metrics: dict[str, float], whose: str) -> float:
    if gate.metric not in metrics:
        names = sorted(k for k in metrics if not k.startswith(SYSTEM))
        raise RegistryError(f"gate {gate}: {whose} has no metric {gate.metric!r}"
                            f"{suggest.did_you_mean(gate.metric, names)}; its metrics: {suggest.listed(names) or 'none'}")
    return metrics[gate.metric]
