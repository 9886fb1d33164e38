"""TrackEval scoring against figures worked out by hand, against TrackEval's own Evaluator, and bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from gfcore.core.errors import DataError
from gfcore.mot import COMBINED, COUNTS, METRICS
from gfcore.mot.evaluate import evaluate_mot
from tests.conftest import REPO
from tests.mot.conftest import gt_line, pred_line, write_seq

FRAMES = range(1, 11)


@pytest.fixture
def dirs(tmp_path):
    return tmp_path / "gt", tmp_path / "pred"


def test_perfect_tracking(dirs):
    gt, pred = dirs
    write_seq(gt, pred, "perfect", [gt_line(t, 1, 10) for t in FRAMES], [pred_line(t, 7, 10) for t in FRAMES])
    r = evaluate_mot(gt, pred)["perfect"]
    for key in ("hota", "deta", "assa", "loca", "mota", "motp", "idf1", "idp", "idr"):
        assert r[key] == pytest.approx(1.0), key
    assert (r["id_switches"], r["frag"], r["fp"], r["fn"], r["mt"], r["pt"], r["ml"]) == (0, 0, 0, 0, 1, 0, 0)
    assert (r["gt_tracks"], r["pred_tracks"]) == (1, 1)


def test_one_identity_switch(dirs):
    """One object, 10 frames; the tracker calls it 1 for five frames, then 2.

    MOTA = 1 - IDSW/GT = 0.9; IDF1 = 2*5/(10+10) = 0.5; every box is a TP (DetA 1) but each TP's
    association score is 5/(5+5+0) = 0.5, so AssA = 0.5 and HOTA = sqrt(1 * 0.5)."""
    gt, pred = dirs
    write_seq(gt, pred, "switch", [gt_line(t, 1, 10) for t in FRAMES],
              [pred_line(t, 1 if t <= 5 else 2, 10) for t in FRAMES])
    r = evaluate_mot(gt, pred)["switch"]
    assert r["id_switches"] == 1 and r["mota"] == pytest.approx(0.9)
    assert r["idf1"] == pytest.approx(0.5) and r["idp"] == pytest.approx(0.5) and r["idr"] == pytest.approx(0.5)
    assert r["deta"] == pytest.approx(1.0) and r["assa"] == pytest.approx(0.5)
    assert r["hota"] == pytest.approx(math.sqrt(0.5))
    assert (r["gt_tracks"], r["pred_tracks"], r["fp"], r["fn"]) == (1, 2, 0, 0)


def test_one_missed_track(dirs):
    """Two objects, the tracker follows only one: FN 10 of 20, MOTA 0.5, DetA 0.5, AssA 1, IDF1 2*10/30."""
    gt, pred = dirs
    write_seq(gt, pred, "missed", [gt_line(t, i, 10 + 60 * i) for t in FRAMES for i in (1, 2)],
              [pred_line(t, 3, 70) for t in FRAMES])
    r = evaluate_mot(gt, pred)["missed"]
    assert (r["fn"], r["fp"], r["mt"], r["ml"], r["id_switches"]) == (10, 0, 1, 1, 0)
    assert r["mota"] == pytest.approx(0.5) and r["deta"] == pytest.approx(0.5) and r["assa"] == pytest.approx(1.0)
    assert r["hota"] == pytest.approx(math.sqrt(0.5)) and r["idf1"] == pytest.approx(2 / 3)
    assert r["idp"] == pytest.approx(1.0) and r["idr"] == pytest.approx(0.5)


def test_combined_over_sequences(dirs):
    gt, pred = dirs
    write_seq(gt, pred, "a", [gt_line(t, 1, 10) for t in FRAMES], [pred_line(t, 1, 10) for t in FRAMES])
    write_seq(gt, pred, "b", [gt_line(t, 1, 10) for t in FRAMES], [])
    out = evaluate_mot(gt, pred)
    assert set(out) == {"a", "b", COMBINED}
    c = out[COMBINED]
    assert (c["fn"], c["gt_tracks"], c["pred_tracks"], c["mt"], c["ml"]) == (10, 2, 1, 1, 1)
    assert c["mota"] == pytest.approx(0.5) and c["idf1"] == pytest.approx(2 / 3)
    assert set(evaluate_mot(gt, pred, ["a"])) == {"a", COMBINED}


def test_empty_predictions_are_zeros_not_nan(dirs):
    gt, pred = dirs
    write_seq(gt, pred, "nothing", [gt_line(t, 1, 10) for t in FRAMES], [])
    r = evaluate_mot(gt, pred)["nothing"]
    assert all(math.isfinite(v) for v in r.values())
    assert (r["hota"], r["mota"], r["idf1"], r["fn"], r["pred_tracks"], r["ml"]) == (0.0, 0.0, 0.0, 10, 0, 1)


def test_classless_ground_truth_is_scored_like_mot15(dirs):
    """MOT15's gt.txt has -1 in the class column: every box counts (no class preprocessing)."""
    gt, pred = dirs
    write_seq(gt, pred, "old", [f"{t},1,10,10,20,30,1,-1,-1,-1" for t in FRAMES], [pred_line(t, 4, 10) for t in FRAMES])
    r = evaluate_mot(gt, pred)["old"]
    assert r["gt_tracks"] == 1 and r["hota"] == pytest.approx(1.0) and r["mota"] == pytest.approx(1.0)


def test_distractors_and_zero_marked_boxes_follow_motchallenge_rules(dirs):
    """A box on a distractor (class 8) is neither a hit nor a false positive; a zero-marked box is ignored
    as ground truth, so a prediction on it is a false positive."""
    gt, pred = dirs
    gt_lines = [gt_line(t, 1, 10) for t in FRAMES] + [gt_line(t, 2, 80, cls=8) for t in FRAMES]
    gt_lines += [gt_line(t, 3, 150, zero_marked=True) for t in FRAMES]
    preds = [pred_line(t, 1, 10) for t in FRAMES] + [pred_line(t, 2, 80) for t in FRAMES]
    preds += [pred_line(t, 3, 150) for t in FRAMES]
    write_seq(gt, pred, "mixed", gt_lines, preds)
    r = evaluate_mot(gt, pred)["mixed"]
    assert (r["gt_tracks"], r["fp"], r["fn"], r["pred_tracks"]) == (1, 10, 0, 2)


def test_matches_trackeval_evaluator_on_noisy_tracks(tmp_path):
    """Our figures are TrackEval's: the same data through TrackEval's own Evaluator gives the same numbers."""
    import trackeval

    rng = np.random.default_rng(3)
    gt, pred = tmp_path / "gt", tmp_path / "trackers" / "noisy"
    for s in range(3):
        gt_lines, preds = [], []
        for t in range(1, 31):
            for obj in range(1, 5):
                x = 20 + 30 * obj + 2 * t
                cls = 7 if obj == 4 else 1  # a static person: a distractor in MOT17
                gt_lines.append(f"{t},{obj},{x},20,25,40,{int(not (obj == 3 and t % 7 == 0))},{cls},0.9")
                if rng.random() < 0.85:  # misses, jitter, an identity switch, false positives
                    track = obj + (10 if obj == 2 and t > 15 else 0)
                    preds.append(f"{t},{track},{x + rng.normal(0, 3):.2f},{20 + rng.normal(0, 3):.2f},25,40,0.8,-1,-1,-1")
            if rng.random() < 0.3:
                preds.append(f"{t},{50 + t},{rng.uniform(0, 150):.1f},60,20,30,0.3,-1,-1,-1")
        write_seq(gt, pred, f"MOT17-0{s + 1}", gt_lines, preds, length=30)
    ours = evaluate_mot(gt, pred)

    config = {**trackeval.Evaluator.get_default_eval_config(), "USE_PARALLEL": False, "PRINT_RESULTS": False,
              "PRINT_CONFIG": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
              "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True}
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt), "TRACKERS_FOLDER": str(pred.parent), "TRACKER_SUB_FOLDER": "", "SKIP_SPLIT_FOL": True,
        "SEQ_INFO": {f"MOT17-0{s + 1}": 30 for s in range(3)}, "PRINT_CONFIG": False, "OUTPUT_FOLDER": str(tmp_path)})
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"PRINT_CONFIG": False})]  # the Evaluator adds Count itself
    res, _ = trackeval.Evaluator(config).evaluate([dataset], metrics)
    theirs = res["MotChallenge2DBox"]["noisy"]
    for seq, key in [(f"MOT17-0{s + 1}", f"MOT17-0{s + 1}") for s in range(3)] + [(COMBINED, "COMBINED_SEQ")]:
        t = theirs[key]["pedestrian"]
        expected = {"hota": np.mean(t["HOTA"]["HOTA"]), "assa": np.mean(t["HOTA"]["AssA"]),
                    "mota": t["CLEAR"]["MOTA"], "motp": t["CLEAR"]["MOTP"], "idf1": t["Identity"]["IDF1"],
                    "id_switches": t["CLEAR"]["IDSW"], "fp": t["CLEAR"]["CLR_FP"], "gt_tracks": t["Count"]["GT_IDs"]}
        for name, value in expected.items():
            assert ours[seq][name] == pytest.approx(float(value)), (seq, name)
    assert 0 < ours[COMBINED]["hota"] < 1 and ours[COMBINED]["id_switches"] >= 3


@pytest.mark.parametrize("line, needle", [
    ("1,1,10,10,20,x,1,1,1", "line 2: not a number"),
    ("1,1,10,nan,20,30,1,1,1", "line 2: not a number"),
    ("1,1,10,10", "line 2: 4 columns"),
    ("11,1,10,10,20,30,1,1,1", "line 2: frame 11 is outside the sequence (frames 1..10"),
    ("0,1,10,10,20,30,1,1,1", "line 2: frame 0 is outside"),
    ("1,1,10,10,20,30,1,1,1", "line 2: id 1 appears twice in frame 1"),
])
def test_malformed_ground_truth_names_file_and_line(dirs, line, needle):
    gt, pred = dirs
    write_seq(gt, pred, "bad", [gt_line(1, 1, 10), line], [])
    with pytest.raises(DataError) as err:
        evaluate_mot(gt, pred)
    assert str(gt / "bad" / "gt" / "gt.txt") in str(err.value) and needle in str(err.value)


def test_malformed_predictions_name_file_and_line(dirs):
    gt, pred = dirs
    write_seq(gt, pred, "s", [gt_line(t, 1, 10) for t in FRAMES], [pred_line(1, 1, 10), "2,1,10,10,20,30"])
    with pytest.raises(DataError, match=r"s\.txt, line 2: 6 columns, a tracker output line needs at least 7"):
        evaluate_mot(gt, pred)


def test_missing_files(dirs):
    gt, pred = dirs
    write_seq(gt, pred, "s", [gt_line(t, 1, 10) for t in FRAMES], None)
    pred.mkdir()
    with pytest.raises(DataError, match=r"s\.txt is missing: the tracker output for sequence s \(write an empty file"):
        evaluate_mot(gt, pred)
    (gt / "s" / "seqinfo.ini").unlink()
    with pytest.raises(DataError, match=r"seqinfo\.ini is missing"):
        evaluate_mot(gt, pred)
    with pytest.raises(DataError, match="no sequence folder nope"):
        evaluate_mot(gt, pred, ["nope"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gfcore.cli", "eval-mot", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_cli_json(dirs):
    gt, pred = dirs
    write_seq(gt, pred, "perfect", [gt_line(t, 1, 10) for t in FRAMES], [pred_line(t, 7, 10) for t in FRAMES])
    write_seq(gt, pred, "switch", [gt_line(t, 1, 10) for t in FRAMES],
              [pred_line(t, 1 if t <= 5 else 2, 10) for t in FRAMES])
    proc = _cli(str(gt), str(pred), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"perfect", "switch", COMBINED}
    for row in out.values():
        assert list(row) == list(METRICS)
        assert all(isinstance(row[k], int) for k in COUNTS)
    assert out["switch"]["id_switches"] == 1 and out[COMBINED]["id_switches"] == 1
    assert out[COMBINED]["mota"] == pytest.approx(0.95)

    only = json.loads(_cli(str(gt), str(pred), "--seqs", "perfect", "--json").stdout)
    assert set(only) == {"perfect", COMBINED} and only[COMBINED]["hota"] == pytest.approx(1.0)
    table = _cli(str(gt), str(pred)).stdout.splitlines()
    assert table[0].split()[:3] == ["sequence", "hota", "deta"] and table[-1].startswith(COMBINED)


def test_cli_bad_input_exits_2_with_the_line(dirs):
    gt, pred = dirs
    write_seq(gt, pred, "s", [gt_line(1, 1, 10), "12,1,10,10,20,30,1,1,1"], [], length=10)
    proc = _cli(str(gt), str(pred), "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "gt.txt, line 2: frame 12 is outside the sequence" in proc.stderr
