"""Intervals and verdicts from per-image results: checked against Ultralytics' own `ap_per_class` on the resampled
images, against counts done by hand, and on the cases a verdict must get right (twins, a weaker model, a lost safety
class). Pure numpy and Ultralytics' metric functions: no model runs here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gfcore.config.schema import ChallengeConfig
from gfcore.verdicts.bootstrap import Interval, detection_intervals, latency_intervals, resample_counts
from gfcore.verdicts.decide import Reading, decide
from gfcore.verdicts.images import ImageResults

NAMES = ["helmet", "vest"]


def synthetic(seed: int, images: int = 40, skill: float = 0.7, op_conf: float = 0.25) -> ImageResults:
    """Per-image results of a model of some `skill` on one fixed set of labelled images: each label found with that
    probability (a true positive at IoU thresholds up to a random one), plus false positives; confidences higher
    for hits. `seed` draws the model's behaviour, never the images."""
    data, rng = np.random.default_rng(1000), np.random.default_rng(seed)
    out = ImageResults(names=list(NAMES), op_conf=op_conf)
    for i in range(images):
        labels = data.integers(0, 2, size=data.integers(1, 5))
        tp, conf, cls = [], [], []
        for c in labels:
            if rng.random() < skill:
                reach = rng.integers(1, 11)  # correct at the first `reach` IoU thresholds
                tp.append([k < reach for k in range(10)])
                conf.append(rng.uniform(0.3, 1.0))
                cls.append(c)
        for _ in range(rng.integers(0, 6)):
            tp.append([False] * 10)
            conf.append(rng.uniform(0.001, 0.6))
            cls.append(rng.integers(0, 2))
        tp, conf, cls = np.array(tp, bool).reshape(-1, 10), np.array(conf), np.array(cls)
        op_tp = tp[conf >= op_conf, 0]
        out.add(f"img{i}.png", tp, conf, cls, labels, op_tp)
    return out


def _ultralytics(results: ImageResults, counts: np.ndarray) -> dict[str, float]:
    """Ultralytics' figures on the images drawn `counts` times each: every drawn image's results repeated."""
    from ultralytics.utils.metrics import ap_per_class

    take = np.repeat(np.arange(len(results)), counts.astype(int))
    tp = np.concatenate([results.tp[i] for i in take])
    conf = np.concatenate([results.conf[i] for i in take])
    cls = np.concatenate([results.pred_cls[i] for i in take])
    target = np.concatenate([results.target_cls[i] for i in take])
    _, _, p, r, _, ap, *_ = ap_per_class(tp, conf, cls, target)
    return {"det.mAP50": ap[:, 0].mean(), "det.mAP50_95": ap.mean(), "det.precision": p.mean(),
            "det.recall": r.mean()}


def test_figures_are_ultralytics_figures_on_every_resample():
    results = synthetic(0)
    point = results.figures()
    for key, value in _ultralytics(results, np.ones(len(results))).items():
        assert point[key][0] == pytest.approx(value, abs=1e-9), key
    counts = resample_counts(len(results), 5, seed=3)
    boot = results.figures(counts)
    for row in range(5):
        for key, value in _ultralytics(results, counts[row]).items():
            assert boot[key][row] == pytest.approx(value, abs=1e-9), (row, key)


def test_paired_interval_is_the_hand_computed_one():
    """The same draws for both models; the interval is the 2.5 / 97.5 percentiles of the per-draw differences,
    each computed here the slow way (Ultralytics on the repeated images; recall by counting)."""
    cand, champ = synthetic(1, skill=0.8), synthetic(1, skill=0.8)
    champ.conf = [c * np.where(t[:, 0], 0.5, 1.0) if len(c) else c for c, t in zip(champ.conf, champ.tp)]
    champ.op_counts = []
    for tp, conf, cls, target in zip(champ.tp, champ.conf, champ.pred_cls, champ.target_cls):
        keep = conf >= champ.op_conf
        champ.op_counts.append(np.stack([np.bincount(cls[keep][tp[keep, 0]], minlength=2),
                                         np.bincount(cls[keep], minlength=2), np.bincount(target, minlength=2)]))
    got = detection_intervals(cand, champ, resamples=200, seed=7)
    counts = resample_counts(len(cand), 200, seed=7)
    diffs = {"det.mAP50": [], "det.op.recall.helmet": []}
    for row in counts:
        diffs["det.mAP50"].append(_ultralytics(cand, row)["det.mAP50"] - _ultralytics(champ, row)["det.mAP50"])
        found = []
        for results in (cand, champ):
            hits = sum(n * int(((r.conf >= r.op_conf) & r.tp[:, 0] & (r.pred_cls == 0)).sum())
                       for n, r in zip(row, _images(results)))
            labels = sum(n * int((t == 0).sum()) for n, t in zip(row, results.target_cls))
            found.append(hits / labels)
        diffs["det.op.recall.helmet"].append(found[0] - found[1])
    for key, values in diffs.items():
        low, high = np.percentile(values, [2.5, 97.5])
        assert got[key].low == pytest.approx(low, abs=1e-6) and got[key].high == pytest.approx(high, abs=1e-6), key
    assert got["det.op.recall.helmet"].low > 0, "the champion, its hits at half the confidence, misses helmets"


def _images(results: ImageResults):
    from types import SimpleNamespace

    return [SimpleNamespace(conf=c, tp=t, pred_cls=p, op_conf=results.op_conf)
            for c, t, p in zip(results.conf, results.tp, results.pred_cls)]


def _readings(cand: ImageResults, champ: ImageResults, safety: list[str] = ()) -> list[Reading]:
    from gfcore.automation.challenge import readings

    intervals = detection_intervals(cand, champ, resamples=300, seed=0)
    return readings(intervals, ChallengeConfig(), list(safety), f"{len(cand)} test images", "", 0)


def test_twins_tie_and_say_what_the_split_can_show():
    twin = synthetic(2)
    verdict, reasons = decide(_readings(twin, synthetic(2), ["helmet"]))
    assert verdict == "tie" and "within its tolerance" in reasons[0]
    intervals = detection_intervals(twin, synthetic(2), resamples=300, seed=0)
    assert intervals["det.mAP50"] == Interval(0.0, 0.0, 0.0, intervals["det.mAP50"].mde)
    assert 0.01 < intervals["det.mAP50"].mde < 0.5, "40 images cannot show a small difference"


def test_a_weaker_model_is_worse_and_the_reason_names_the_interval():
    verdict, reasons = decide(_readings(synthetic(3, skill=0.3), synthetic(3, skill=0.9)))
    assert verdict == "worse"
    assert reasons[0].startswith("det.mAP50 -") and "[-" in reasons[0] and "over the whole interval" in reasons[0]
    verdict, reasons = decide(_readings(synthetic(3, skill=0.9), synthetic(3, skill=0.3)))
    assert verdict == "better" and reasons[0].startswith("det.mAP50 +")


def test_close_models_tie_with_the_smallest_detectable_difference():
    """The champion with its confidences jittered by up to 30 %: a few boxes change rank, and the mAP50 difference is
    too small for 40 images to tell which is better."""
    champ, close = synthetic(4), synthetic(4)
    rng = np.random.default_rng(0)
    close.conf = [c * rng.uniform(0.7, 1.3, len(c)) for c in close.conf]
    assert close.figures()["det.mAP50"][0] != champ.figures()["det.mAP50"][0]
    verdict, reasons = decide(_readings(close, champ))
    assert verdict == "tie"
    assert "not distinguishable on 40 test images" in reasons[0]
    assert "the smallest det.mAP50 difference this data can show is about" in reasons[0]


def test_a_lost_safety_class_is_worse_whatever_the_map():
    """The candidate ranks its helmets exactly as the champion does (so every AP is the same) but scores them below
    the operating confidence: at the site it misses every helmet."""
    champ = synthetic(6, skill=0.8)
    cand = synthetic(6, skill=0.8)
    cand.conf = [np.where(p == 0, c * 0.2, c) for c, p in zip(cand.conf, cand.pred_cls)]
    for i, (tp, conf, cls) in enumerate(zip(cand.tp, cand.conf, cand.pred_cls)):
        keep = conf >= cand.op_conf
        cand.op_counts[i][:2] = [np.bincount(cls[keep][tp[keep, 0]], minlength=2), np.bincount(cls[keep], minlength=2)]
    read = _readings(cand, champ, ["helmet"])
    assert {r.figure: r.interval.point for r in read}["det.mAP50"] == 0.0
    verdict, reasons = decide(read)
    assert verdict == "worse" and reasons == [r for r in reasons if r.startswith("safety class helmet")]
    assert decide(_readings(cand, champ, []))[0] == "tie", "without the safety class nothing tells them apart"


def test_latency_ratio_interval_from_rounds():
    rng = np.random.default_rng(0)
    base = [rng.normal(10, 0.5, 60) for _ in range(5)]
    slower = [r * 1.3 for r in base]
    same = latency_intervals(base, [r.copy() for r in base], 300, 0, {"p95": 95})["p95"]
    assert same.point == 1.0 and same.low < 1.0 < same.high and same.high - same.low < 0.2
    got = latency_intervals(slower, base, 300, 0, {"p95": 95})["p95"]
    assert got.point == pytest.approx(1.3) and got.low > 1.1
    verdict, reasons = decide([Reading("sys.latency_p95_ms", got, 0.10, higher_is_better=False, ratio=True)])
    assert verdict == "worse" and reasons[0].startswith("sys.latency_p95_ms x1.30 [")


def test_latency_is_a_guardrail():
    """Clearly more accurate and maybe a little slower: better; as accurate and maybe slower: tie; surely slower by
    more than the tolerance: worse, whatever the accuracy."""
    gain, same = Interval(0.2, 0.15, 0.25), Interval(0.0, -0.001, 0.001)
    unsure, slower = Interval(1.05, 0.98, 1.13), Interval(1.3, 1.2, 1.4)

    def verdict(accuracy, latency):
        return decide([Reading("det.mAP50", accuracy, 0.005),
                       Reading("sys.latency_p50_ms", latency, 0.10, higher_is_better=False, ratio=True,
                               guard=True)])

    assert verdict(gain, unsure)[0] == "better" and "a guardrail" in verdict(gain, unsure)[1][-1]
    assert verdict(same, unsure)[0] == "tie" and "sys.latency_p50_ms x1.05 [0.98, 1.13]" in verdict(same, unsure)[1][0]
    assert verdict(gain, slower)[0] == "worse"


def test_operating_point_counts_match_a_hand_count():
    """The validator's own matching among the boxes at or above the operating confidence, on boxes laid out by hand:
    three helmets and a vest labelled; a kept hit, a kept duplicate, a kept miss off target, a hit below the
    operating confidence, a vest hit and a vest box on a helmet."""
    from gfcore.yolo.validation import validator_class

    validator = validator_class(NAMES, 0.25)(args={"conf": 0.001})
    validator.per_image = ImageResults(names=list(NAMES), op_conf=0.25)
    labels = torch.tensor([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [0, 20, 10, 30]], dtype=torch.float32)
    boxes = torch.tensor([[0, 0, 10, 10],     # helmet 0.90 on helmet 1: hit
                          [0, 0, 10, 9.5],    # helmet 0.85 on helmet 1 again: duplicate, a false alarm
                          [44, 0, 56, 10],    # helmet 0.80 off helmet 3 (IoU 0.33): false alarm
                          [0, 20, 10, 30],    # vest 0.50 on the vest: hit
                          [20, 0, 30, 10],    # vest 0.40 on helmet 2: wrong class, false alarm
                          [20, 0, 30, 10]],   # helmet 0.10 on helmet 2: below the operating confidence
                         dtype=torch.float32)
    preds = {"bboxes": boxes, "conf": torch.tensor([0.9, 0.85, 0.8, 0.5, 0.4, 0.1]),
             "cls": torch.tensor([0, 0, 0, 1, 1, 0], dtype=torch.float32)}
    batch = {"bboxes": labels, "cls": torch.tensor([0, 0, 0, 1], dtype=torch.float32), "im_file": "a.png"}
    validator._process_batch(preds, batch)
    op = {k: float(v[0]) for k, v in validator.per_image.figures().items() if k.startswith("det.op.")}
    assert op["det.op.recall.helmet"] == pytest.approx(1 / 3) and op["det.op.precision.helmet"] == pytest.approx(1 / 3)
    assert op["det.op.recall.vest"] == 1.0 and op["det.op.precision.vest"] == 0.5
    assert op["det.op.recall"] == 0.5 and op["det.op.precision"] == pytest.approx(2 / 5)
    assert op["det.op.missed"] == 2 and op["det.op.missed.helmet"] == 2
    assert op["det.op.f1"] == pytest.approx(2 * 0.4 * 0.5 / 0.9)
