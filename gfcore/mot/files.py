"""MOTChallenge files: `<seq>/seqinfo.ini`, `<seq>/gt/gt.txt`, `<seq>/img1/` and a tracker's `<seq>.txt`.

Every line is checked before TrackEval sees it, so a bad file fails with its path and line number
instead of a bare exception (or, worse, silently wrong figures).

Line format: `frame, id, x, y, w, h, conf, class|x, visibility|y[, z]` with 1-based frames. Ground
truth needs the first 8 columns (TrackEval's rule); whether columns 8-10 are a class and a visibility
(MOT16/17/20) or world coordinates (MOT15) decides the benchmark (`gfcore.mot.benchmark`). A tracker
file needs the first 7.
"""

from __future__ import annotations

import configparser
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from gfcore.core.errors import DataError
from gfcore.mot.benchmark import AUTO, GtColumns, choose

_SPLIT = re.compile(r"[,\s]+")
GT_COLUMNS, PRED_COLUMNS = 8, 7


@dataclass(frozen=True)
class SeqInfo:
    name: str
    folder: Path
    length: int  # frames, numbered 1..length
    width: int
    height: int
    frame_rate: float
    im_dir: str
    im_ext: str

    def frame_path(self, frame: int) -> Path:
        return self.folder / self.im_dir / f"{frame:06d}{self.im_ext}"

    @property
    def gt_file(self) -> Path:
        return self.folder / "gt" / "gt.txt"


@dataclass(frozen=True)
class GtSummary:
    rows: int
    benchmark: str  # MOT15, MOT16, MOT17 or MOT20: whose rules TrackEval scores it by
    reason: str  # why that benchmark, for the user


def read_seqinfo(folder: Path) -> SeqInfo:
    ini = folder / "seqinfo.ini"
    if not ini.is_file():
        raise DataError(f"{ini} is missing: every MOTChallenge sequence folder needs a seqinfo.ini with a "
                        "[Sequence] section (name, imDir, frameRate, seqLength, imWidth, imHeight, imExt).")
    parser = configparser.ConfigParser()
    try:
        parser.read(ini)
        seq = parser["Sequence"]
        length = int(seq["seqLength"])
    except (configparser.Error, KeyError, ValueError) as exc:
        raise DataError(f"{ini} is not a valid seqinfo.ini ({type(exc).__name__}: {exc}): it needs a [Sequence] "
                        "section with at least seqLength=<number of frames>.") from exc
    if length < 1:
        raise DataError(f"{ini}: seqLength={length}, a sequence needs at least one frame.")
    return SeqInfo(name=seq.get("name", folder.name), folder=folder, length=length,
                   width=int(seq.get("imWidth", 0)), height=int(seq.get("imHeight", 0)),
                   frame_rate=float(seq.get("frameRate", 30)), im_dir=seq.get("imDir", "img1"),
                   im_ext=seq.get("imExt", ".jpg"))


def discover_sequences(gt_dir: Path, names: Iterable[str] | None = None) -> list[SeqInfo]:
    """The sequences of `gt_dir` (every subfolder with a gt/gt.txt or a seqinfo.ini), or the named ones."""
    if not gt_dir.is_dir():
        raise DataError(f"the ground-truth folder {gt_dir} does not exist: give the folder that holds one "
                        "subfolder per sequence (<seq>/gt/gt.txt and <seq>/seqinfo.ini).")
    if names:
        folders = [gt_dir / n for n in names]
        missing = [f.name for f in folders if not f.is_dir()]
        if missing:
            raise DataError(f"no sequence folder {', '.join(missing)} under {gt_dir}: the sequences there are "
                            f"{', '.join(sorted(p.name for p in _candidates(gt_dir))) or 'none'}.")
    else:
        folders = _candidates(gt_dir)
        if not folders:
            raise DataError(f"{gt_dir} holds no MOTChallenge sequences: expected subfolders <seq>/gt/gt.txt with "
                            "<seq>/seqinfo.ini.")
    infos = []
    for folder in folders:
        info = read_seqinfo(folder)
        if not info.gt_file.is_file():
            raise DataError(f"{info.gt_file} is missing: the ground truth of sequence {folder.name}.")
        infos.append(info)
    return infos


def check_frames(info: SeqInfo) -> None:
    """Every frame 1..seqLength is on disk as seqinfo.ini names it."""
    missing = [t for t in range(1, info.length + 1) if not info.frame_path(t).is_file()]
    if missing:
        raise DataError(f"sequence {info.name}: {len(missing)} of {info.length} frames are missing, first "
                        f"{info.frame_path(missing[0])} (seqinfo.ini says imDir={info.im_dir}, imExt={info.im_ext}, "
                        f"seqLength={info.length}).")


def _candidates(gt_dir: Path) -> list[Path]:
    return sorted(p for p in gt_dir.iterdir()
                  if p.is_dir() and ((p / "gt" / "gt.txt").is_file() or (p / "seqinfo.ini").is_file()))


def check_gt(path: Path, info: SeqInfo, benchmark: str = AUTO) -> GtSummary:
    """Every line, and the benchmark: the one asked for if the file fits it, else guessed (an error if unclear)."""
    seen = GtColumns(path)
    rows = _check_lines(path, info, GT_COLUMNS, "ground truth", seen.add)
    choice = choose(seen, benchmark, info.folder.name)
    return GtSummary(rows=rows, benchmark=choice.benchmark, reason=choice.reason)


def check_predictions(path: Path, info: SeqInfo) -> int:
    """An empty file is valid (a tracker that found nothing); a missing one is not."""
    if not path.is_file():
        raise DataError(f"{path} is missing: the tracker output for sequence {info.name} (write an empty file if it "
                        "tracked nothing).")
    return _check_lines(path, info, PRED_COLUMNS, "tracker output", partial(_tracker_class, path))


def _tracker_class(path: Path, lineno: int, parts: list[str], values: list[float]) -> None:
    # TrackEval refuses a tracker file whose column 8 (read as a class, truncated) is above 1.
    if len(values) > 7 and int(values[7]) > 1:
        raise DataError(f"{path}, line {lineno}: column 8 is {parts[7]}; TrackEval reads a tracker's column 8 as "
                        "its class and scores pedestrians only (1, or -1 for none): write -1,-1,-1 in columns 8-10, as "
                        "MOTChallenge submissions do (world coordinates there are not scored).")


def _check_lines(path: Path, info: SeqInfo, min_columns: int, what: str,
                 per_line: Callable[[int, list[str], list[float]], None]) -> int:
    rows = 0
    seen: set[tuple[int, int]] = set()
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            text = line.strip()
            if not text:
                continue
            where = f"{path}, line {lineno}"
            parts = [p for p in _SPLIT.split(text) if p]
            if len(parts) < min_columns:
                raise DataError(f"{where}: {len(parts)} columns, a {what} line needs at least {min_columns} "
                                f"(frame, id, x, y, w, h, conf{', class' if min_columns > 7 else ''}): {text!r}")
            try:
                values = [float(p) for p in parts]
                if not all(map(math.isfinite, values)):  # float() takes nan and inf
                    raise ValueError
            except ValueError:
                raise DataError(f"{where}: not a number in {text!r}; MOTChallenge lines are comma-separated "
                                "numbers.") from None
            frame, track = values[0], values[1]
            if frame != int(frame) or not 1 <= frame <= info.length:
                raise DataError(f"{where}: frame {parts[0]} is outside the sequence (frames 1..{info.length}, "
                                f"seqLength in {info.folder / 'seqinfo.ini'}).")
            if track != int(track):
                raise DataError(f"{where}: the track id {parts[1]} is not a whole number.")
            if values[4] < 0 or values[5] < 0:
                raise DataError(f"{where}: negative box width or height in {text!r}.")
            key = (int(frame), int(track))
            if key in seen:
                raise DataError(f"{where}: id {key[1]} appears twice in frame {key[0]}; an id names one object per "
                                "frame.")
            seen.add(key)
            per_line(lineno, parts, values)
            rows += 1
    return rows


def write_tracks(path: Path, rows: Iterable[tuple[int, int, float, float, float, float, float]]) -> int:
    """Tracker output lines `frame,id,x,y,w,h,conf,-1,-1,-1` (the MOTChallenge submission format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w") as fh:
        for frame, track, x, y, w, h, conf in rows:
            fh.write(f"{frame},{track},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{conf:.4f},-1,-1,-1\n")
            n += 1
    return n


def write_seqinfo(folder: Path, name: str, length: int, width: int, height: int, frame_rate: float,
                  im_ext: str = ".png") -> None:
    (folder / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate={frame_rate:g}\nseqLength={length}\nimWidth={width}\n"
        f"imHeight={height}\nimExt={im_ext}\n")
