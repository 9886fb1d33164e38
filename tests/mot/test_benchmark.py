"""Which benchmark's rules score a sequence: MOT15 world coordinates, --benchmark, and data that cannot tell."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gfcore.core.errors import DataError
from gfcore.mot import COMBINED, METRICS
from gfcore.mot.evaluate import evaluate_mot
from tests.mot.conftest import gt_line, pred_line, write_seq
from tests.mot.test_evaluate import _cli

FRAMES = range(1, 11)
SEQS = ("WORLD-01", "WORLD-02")
# mot.* name -> TrackEval (metric, field); HOTA's arrays are averaged over its thresholds.
TRACKEVAL = {
    "hota": ("HOTA", "HOTA"), "deta": ("HOTA", "DetA"), "assa": ("HOTA", "AssA"), "loca": ("HOTA", "LocA"),
    "mota": ("CLEAR", "MOTA"), "motp": ("CLEAR", "MOTP"), "id_switches": ("CLEAR", "IDSW"),
    "frag": ("CLEAR", "Frag"), "mt": ("CLEAR", "MT"), "pt": ("CLEAR", "PT"), "ml": ("CLEAR", "ML"),
    "fp": ("CLEAR", "CLR_FP"), "fn": ("CLEAR", "CLR_FN"), "idf1": ("Identity", "IDF1"),
    "idp": ("Identity", "IDP"), "idr": ("Identity", "IDR"), "gt_tracks": ("Count", "GT_IDs"),
    "pred_tracks": ("Count", "IDs"),
}


@pytest.fixture
def dirs(tmp_path):
    return tmp_path / "gt", tmp_path / "pred"


def write_world_sequences(gt, pred):
    """Two MOT15-style sequences, 30 frames, 4 people: gt columns 8-10 are world x, y (metres, fractional)
    and z = -1, as in MOT15's training ground truth; WORLD-02 has people without a ground position
    (-1,-1,-1). World x stays within 1-13, so read as a class it would be a valid but wrong one (2, 7, 8
    and 12 are MOT17 distractors). Tracks have jitter, misses, an identity switch and false positives."""
    rng = np.random.default_rng(15)
    for s, name in enumerate(SEQS):
        gt_lines, preds = [], []
        for t in range(1, 31):
            for obj in range(1, 5):
                x, wx, wy = 20 + 30 * obj + 2 * t, 1.25 + 2.7 * obj + 0.05 * t, 4.5 + 0.37 * obj - 0.02 * t
                world = "-1,-1,-1" if s == 1 and obj == 2 and t > 20 else f"{wx:.3f},{wy:.3f},-1"
                gt_lines.append(f"{t},{obj},{x},20,25,40,1,{world}")
                if rng.random() < 0.85:
                    track = obj + (10 if obj == 2 and t > 15 else 0)
                    preds.append(f"{t},{track},{x + rng.normal(0, 3):.2f},{20 + rng.normal(0, 3):.2f},25,40,0.8,"
                                 "-1,-1,-1")
            if rng.random() < 0.3:
                preds.append(f"{t},{50 + t},{rng.uniform(0, 150):.1f},60,20,30,0.3,-1,-1,-1")
        write_seq(gt, pred, name, gt_lines, preds, length=30)


def trackeval_evaluator(gt, pred, benchmark, seqs=SEQS):
    """TrackEval's own Evaluator over `seqs`, as its MOTChallenge script runs it: {seq or COMBINED_SEQ: results}."""
    import trackeval

    config = {**trackeval.Evaluator.get_default_eval_config(), "USE_PARALLEL": False, "PRINT_RESULTS": False,
              "PRINT_CONFIG": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
              "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True}
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt), "TRACKERS_FOLDER": str(pred.parent), "TRACKERS_TO_EVAL": [pred.name],
        "TRACKER_SUB_FOLDER": "", "SKIP_SPLIT_FOL": True, "BENCHMARK": benchmark, "SEQ_INFO": dict.fromkeys(seqs, 30),
        "PRINT_CONFIG": False, "OUTPUT_FOLDER": str(pred.parent / "out")})
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"PRINT_CONFIG": False})]  # the Evaluator adds Count itself
    res, _ = trackeval.Evaluator(config).evaluate([dataset], metrics)
    return {seq: {name: float(np.mean(r["pedestrian"][m][f])) for name, (m, f) in TRACKEVAL.items()}
            for seq, r in res["MotChallenge2DBox"][pred.name].items()}


def test_cli_scores_mot15_world_coordinates_as_trackeval_does(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "trackers" / "world"
    write_world_sequences(gt, pred)
    proc = _cli(str(gt), str(pred), "--benchmark", "auto", "--json")
    assert proc.returncode == 0, proc.stderr
    for name in SEQS:  # the guess and why, on stderr
        assert (f"eval-mot: {name}: MOT15 rules, guessed: column 8 of gt.txt holds fractional values (6.700 at "
                "line 2), world coordinates as in MOT15, not class ids (--benchmark to override)") in proc.stderr
    ours = json.loads(proc.stdout)

    theirs = trackeval_evaluator(gt, pred, "MOT15")
    for seq, key in [(s, s) for s in SEQS] + [(COMBINED, "COMBINED_SEQ")]:
        assert list(ours[seq]) == list(METRICS)
        for name in METRICS:
            assert ours[seq][name] == pytest.approx(theirs[key][name]), (seq, name)
    assert 0 < ours[COMBINED]["hota"] < 1 and ours[COMBINED]["id_switches"] >= 2 and ours[COMBINED]["fp"] > 0
    assert ours[COMBINED]["gt_tracks"] == 8  # every person is scored: MOT15 has no classes to drop any

    # The benchmark matters: read as MOT17 classes, world x drops people and predictions (distractors).
    as_mot17 = trackeval_evaluator(gt, pred, "MOT17", seqs=SEQS[:1])["WORLD-01"]
    assert as_mot17["gt_tracks"] < ours["WORLD-01"]["gt_tracks"]


def test_cli_mot17_on_world_coordinates_names_file_line_and_option(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "trackers" / "world"
    write_world_sequences(gt, pred)
    proc = _cli(str(gt), str(pred), "--benchmark", "MOT17", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert (f"{gt / 'WORLD-01' / 'gt' / 'gt.txt'}, line 2: column 8 is 6.700, not a class id (1-13) as MOT17 ground "
            "truth has there") in proc.stderr
    assert "use --benchmark MOT15 or auto" in proc.stderr
    assert _cli(str(gt), str(pred), "--benchmark", "mot15").returncode == 0  # any case


AMBIGUOUS = [
    (["1,1,10,10,20,30,1,1,1.0", "2,1,10,10,20,30,1,-1,-1,-1"],
     "line 2: column 8 is -1 but 1 at line 1: a mix of class ids (MOT16/17/20) and -1 (MOT15)"),
    (["1,1,10,10,20,30,1,-1,-1,-1", "2,1,10,10,20,30,1,1,1.0"],
     "line 2: column 8 is 1 but -1 at line 1: a mix"),
    (["1,1,10,10,20,30,1,25,40,-1"], "line 1: column 8 is 25, neither a class id (1-13, MOT16/17/20) nor -1"),
    (["1,1,10,10,20,30,1,1,1.0", "2,1,10,10,20,30,1,3,12,-1"],
     "line 2: column 9 is 12, not a visibility (0-1) although column 8 looks like a class id"),
]


@pytest.mark.parametrize("lines, needle", AMBIGUOUS)
def test_data_that_cannot_tell_names_file_line_and_option(dirs, lines, needle):
    gt, pred = dirs
    write_seq(gt, pred, "s", lines, [])
    with pytest.raises(DataError) as err:
        evaluate_mot(gt, pred)
    msg = str(err.value)
    assert f"{gt / 's' / 'gt' / 'gt.txt'}, {needle}" in msg, msg
    assert "cannot be told from the data: say which with --benchmark MOT15" in msg and "--benchmark MOT17" in msg
    assert evaluate_mot(gt, pred, benchmark="MOT15")["s"]["fn"] == len(lines)  # the option settles it


def test_cli_data_that_cannot_tell_exits_2(dirs):
    gt, pred = dirs
    write_seq(gt, pred, "s", AMBIGUOUS[2][0], [])
    proc = _cli(str(gt), str(pred))
    assert proc.returncode == 2 and "gt.txt, line 1: column 8 is 25" in proc.stderr and "--benchmark" in proc.stderr


def test_benchmark_option_picks_the_distractor_rules(dirs):
    """A prediction on a non_mot_vehicle (class 6) is a false positive under MOT17, dropped under MOT20."""
    gt, pred = dirs
    gt_lines = [gt_line(t, 1, 10) for t in FRAMES] + [gt_line(t, 2, 80, cls=6) for t in FRAMES]
    preds = [pred_line(t, 1, 10) for t in FRAMES] + [pred_line(t, 2, 80) for t in FRAMES]
    write_seq(gt, pred, "cars", gt_lines, preds)
    explained = []
    assert evaluate_mot(gt, pred, explain=explained.append)["cars"]["fp"] == 10
    assert explained == ["cars: MOT17 rules, guessed: column 8 of gt.txt holds class ids (1-13); MOT16 and MOT17 "
                         "are scored alike"]
    assert evaluate_mot(gt, pred, benchmark="MOT16")["cars"]["fp"] == 10
    assert evaluate_mot(gt, pred, benchmark="MOT20", explain=explained.append)["cars"]["fp"] == 0
    assert explained[-1] == "cars: MOT20 rules, as asked"
    # MOT15 has no classes: the car is a person to find, and the prediction on it a hit.
    assert evaluate_mot(gt, pred, benchmark="MOT15")["cars"]["gt_tracks"] == 2
    with pytest.raises(DataError, match=r"unknown benchmark 'MOT18': choose auto, MOT15, MOT16, MOT17, MOT20"):
        evaluate_mot(gt, pred, benchmark="MOT18")


def test_auto_guesses_mot20_by_name_and_mot15_without_classes(dirs):
    gt, pred = dirs
    write_seq(gt, pred, "MOT20-01", [gt_line(t, 1, 10) for t in FRAMES], [])
    write_seq(gt, pred, "old", [f"{t},1,10,10,20,30,1,-1,-1,-1" for t in FRAMES], [])
    explained = []
    evaluate_mot(gt, pred, explain=explained.append)
    assert explained == [
        "MOT20-01: MOT20 rules, guessed: column 8 of gt.txt holds class ids and the sequence is named MOT20-*",
        "old: MOT15 rules, guessed: column 8 of gt.txt is -1 on every line, no classes, as in MOT15"]


def test_tracker_column_8_above_1_names_file_and_line(dirs):
    """TrackEval refuses it (it reads column 8 as the class); say so before it does."""
    gt, pred = dirs
    write_seq(gt, pred, "s", [gt_line(t, 1, 10) for t in FRAMES], [pred_line(1, 1, 10), "2,1,10,10,20,30,1,3.5,2.1,-1"])
    with pytest.raises(DataError, match=r"s\.txt, line 2: column 8 is 3\.5; TrackEval reads a tracker's column 8 as "
                                        r"its class .* write -1,-1,-1 in columns 8-10"):
        evaluate_mot(gt, pred)
