"""TrackEval scoring of MOTChallenge-format tracks: HOTA, CLEAR and Identity, by TrackEval's own code.

TrackEval's MOTChallenge dataset class does the loading and the official preprocessing (distractor
classes and zero-marked boxes removed); its metric classes do the scoring and the combination over
sequences. The benchmark's rules (MOT15 without classes, MOT16/17, MOT20 with its extra distractor
class) are the one asked for, or guessed per sequence from its gt.txt (`gfcore.mot.benchmark`).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from pathlib import Path

from gfcore.core.errors import DataError
from gfcore.mot import COMBINED, COUNTS, METRICS
from gfcore.mot.benchmark import AUTO, normalize
from gfcore.mot.files import SeqInfo, check_gt, check_predictions, discover_sequences

log = logging.getLogger(__name__)

# TrackEval result field -> mot.* name. HOTA's array fields are averaged over its IoU thresholds, as
# TrackEval's summaries do.
_FIELDS = {
    "hota": ("HOTA", "HOTA"), "deta": ("HOTA", "DetA"), "assa": ("HOTA", "AssA"), "loca": ("HOTA", "LocA"),
    "mota": ("CLEAR", "MOTA"), "motp": ("CLEAR", "MOTP"), "id_switches": ("CLEAR", "IDSW"),
    "frag": ("CLEAR", "Frag"), "mt": ("CLEAR", "MT"), "pt": ("CLEAR", "PT"), "ml": ("CLEAR", "ML"),
    "fp": ("CLEAR", "CLR_FP"), "fn": ("CLEAR", "CLR_FN"),
    "idf1": ("Identity", "IDF1"), "idp": ("Identity", "IDP"), "idr": ("Identity", "IDR"),
    "gt_tracks": ("Count", "GT_IDs"), "pred_tracks": ("Count", "IDs"),
}
_CLASS = "pedestrian"  # TrackEval's name for the one evaluated class of MOTChallenge data


def evaluate_mot(gt_dir: Path, pred_dir: Path, seqs: list[str] | None = None, benchmark: str = AUTO,
                 explain: Callable[[str], None] | None = None) -> dict[str, dict[str, float]]:
    """{seq: {metric: value}, ..., "COMBINED": {...}} with the metric names of `gfcore.mot.METRICS`.

    Rates are fractions (0-1); counts are ints. Every file is checked first; errors name file and line.
    `benchmark` is auto (guessed per sequence) or MOT15/16/17/20 for all; `explain` (default: the log)
    gets one line per sequence saying which benchmark scores it and why.
    """
    benchmark, explain = normalize(benchmark), explain or log.info
    gt_dir, pred_dir = Path(gt_dir).resolve(), Path(pred_dir).resolve()
    if not pred_dir.is_dir():
        raise DataError(f"the prediction folder {pred_dir} does not exist: give the folder holding <seq>.txt "
                        "for each sequence.")
    infos = discover_sequences(gt_dir, seqs)
    groups: dict[str, list[SeqInfo]] = {}
    for info in infos:
        summary = check_gt(info.gt_file, info, benchmark)
        check_predictions(pred_dir / f"{info.folder.name}.txt", info)
        explain(f"{info.folder.name}: {summary.benchmark} rules, {summary.reason}")
        groups.setdefault(summary.benchmark, []).append(info)

    metrics = _metrics()
    per_seq: dict[str, dict[str, dict]] = {}
    for rules, group in groups.items():
        per_seq.update(_score(gt_dir, pred_dir, group, rules, metrics))
    combined = {name: metric.combine_sequences({s: r[name] for s, r in per_seq.items()})
                for name, metric in metrics.items()}
    out = {info.folder.name: _row(per_seq[info.folder.name]) for info in infos}  # in the order asked for
    out[COMBINED] = _row(combined)
    return out


def _metrics() -> dict:
    from trackeval.metrics import CLEAR, HOTA, Count, Identity

    quiet = {"PRINT_CONFIG": False}
    return {"HOTA": HOTA(), "CLEAR": CLEAR(quiet), "Identity": Identity(quiet), "Count": Count()}


def _score(gt_dir: Path, pred_dir: Path, infos: list[SeqInfo], benchmark: str, metrics: dict) -> dict[str, dict]:
    from trackeval.datasets import MotChallenge2DBox
    from trackeval.utils import TrackEvalException

    config = {
        "GT_FOLDER": str(gt_dir), "TRACKERS_FOLDER": str(pred_dir.parent), "TRACKERS_TO_EVAL": [pred_dir.name],
        "TRACKER_SUB_FOLDER": "", "SKIP_SPLIT_FOL": True, "BENCHMARK": benchmark, "CLASSES_TO_EVAL": [_CLASS],
        "SEQ_INFO": {info.folder.name: info.length for info in infos}, "PRINT_CONFIG": False,
    }
    out = {}
    # TrackEval prints progress and config to stdout; the caller decides what the user sees.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            dataset = MotChallenge2DBox(config)
            for info in infos:
                raw = dataset.get_raw_seq_data(pred_dir.name, info.folder.name)
                data = dataset.get_preprocessed_seq_data(raw, _CLASS)
                out[info.folder.name] = {name: m.eval_sequence(data) for name, m in metrics.items()}
        except TrackEvalException as exc:
            raise DataError(f"TrackEval refused the data in {gt_dir} / {pred_dir}: {exc}") from exc
    return out


def _row(res: dict) -> dict[str, float]:
    import numpy as np

    row: dict[str, float] = {}
    for name in METRICS:
        metric, field = _FIELDS[name]
        value = float(np.mean(res[metric][field]))
        row[name] = round(value) if name in COUNTS else value
    return row
