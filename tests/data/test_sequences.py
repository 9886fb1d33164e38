"""The demo's synthetic video sequences: MOTChallenge layout, moving and occluding objects, cached."""

from __future__ import annotations

from collections import defaultdict

from gfcore.config.schema import DemoDataConfig
from gfcore.data.demo import settings_key
from gfcore.data.sequences import DISTRACTOR, EVALUATED, MANIFEST, ensure_demo_sequences
from gfcore.mot.files import check_gt, discover_sequences

SETTINGS = DemoDataConfig(sequences=3, sequence_frames=20, image_size=128)


def _rows(info):
    return [[float(v) for v in line.split(",")] for line in info.gt_file.read_text().splitlines()]


def test_layout_and_ground_truth(tmp_path):
    folder = ensure_demo_sequences(SETTINGS, tmp_path)
    infos = discover_sequences(folder)
    assert [i.name for i in infos] == ["demo-01", "demo-02", "demo-03"]
    for info in infos:
        assert (info.length, info.width, info.height, info.im_ext) == (20, 128, 128, ".png")
        assert all(info.frame_path(t).is_file() for t in range(1, 21))
        assert check_gt(info.gt_file, info).rows > 0  # well-formed: frames in range, ids unique per frame
        rows = _rows(info)
        assert {int(r[7]) for r in rows} <= {EVALUATED, DISTRACTOR}
        for r in rows:  # boxes clipped to the frame
            assert r[2] >= 0 and r[3] >= 0 and r[2] + r[4] <= 128.01 and r[3] + r[5] <= 128.01

    all_rows = [r for info in infos for r in _rows(info)]
    # Objects move: some track's box travels more than a fifth of the frame.
    by_track = defaultdict(list)
    for info in infos:
        for r in _rows(info):
            by_track[(info.name, int(r[1]))].append(r[2])
    assert max(max(xs) - min(xs) for xs in by_track.values()) > 128 / 5
    # People cross in front of each other: some parts are mostly hidden for a while.
    assert any(int(r[7]) == DISTRACTOR for r in all_rows)


def test_deterministic_cached_and_apart_from_still_images(tmp_path):
    a = ensure_demo_sequences(SETTINGS, tmp_path / "a")
    b = ensure_demo_sequences(SETTINGS, tmp_path / "b")
    assert (a / MANIFEST).read_text() == (b / MANIFEST).read_text()  # same content hash
    stamp = (a / "demo-01" / "gt" / "gt.txt").stat().st_mtime_ns
    assert ensure_demo_sequences(SETTINGS, tmp_path / "a") == a
    assert (a / "demo-01" / "gt" / "gt.txt").stat().st_mtime_ns == stamp
    # Sequence settings do not invalidate the (bigger) still-image set.
    assert settings_key(SETTINGS) == settings_key(DemoDataConfig(sequences=1, sequence_frames=5, image_size=128))
    assert ensure_demo_sequences(DemoDataConfig(sequences=0), tmp_path) is None
