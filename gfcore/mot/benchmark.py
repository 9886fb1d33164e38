"""Which MOTChallenge benchmark's rules score a ground-truth file: MOT15, MOT16, MOT17 or MOT20.

TrackEval's rules differ by benchmark. MOT15's gt.txt has no class column: columns 8-10 are world
coordinates x, y, z (fractional, -1 where unknown) and every box that is not zero-marked is scored.
MOT16/17/20 have a class id in column 8 and a visibility (0-1) in column 9: only pedestrians (1) are
scored and predictions on distractors are dropped (MOT20 counts non_mot_vehicle as one too; MOT16 and
MOT17 are scored alike). Reading world coordinates as class ids would keep or drop boxes at random, so
`auto` guesses from column 8 only when every line agrees, and otherwise names the line in doubt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gfcore.core.errors import DataError

AUTO = "auto"
BENCHMARKS = ("MOT15", "MOT16", "MOT17", "MOT20")
_CHOOSE = ("say which with --benchmark MOT15 (columns 8-10 are world coordinates, no classes) or --benchmark MOT17 "
           "(column 8 is a class id; MOT16 and MOT20 likewise); for infer, set infer.tracking.benchmark the same way")


@dataclass(frozen=True)
class Choice:
    benchmark: str
    reason: str  # why, for the user: "as asked" or what in the file made the guess


class GtColumns:
    """The first line of each kind of column-8 value in one ground-truth file, fed line by line.

    Kinds: `class` (a whole number 1-13, TrackEval's MOTChallenge class ids), `none` (-1), `world`
    (fractional: a class id never is) and `other` (any other whole number); plus `not_visibility`,
    a column 9 outside 0-1 on a class line, which a MOT16/17/20 visibility never is.
    """

    def __init__(self, path: Path):
        self.path = path
        self.first: dict[str, tuple[int, str]] = {}

    def add(self, lineno: int, parts: list[str], values: list[float]) -> None:
        kind = _kind(values[7])
        self.first.setdefault(kind, (lineno, parts[7]))
        if kind == "class" and len(values) > 8 and not (0 <= values[8] <= 1 or values[8] == -1):
            self.first.setdefault("not_visibility", (lineno, parts[8]))

    def at(self, kind: str) -> str:
        lineno, text = self.first[kind]
        return f"{self.path}, line {lineno}: column {9 if kind == 'not_visibility' else 8} is {text}"


def normalize(benchmark: str) -> str:
    """`auto`, or one of BENCHMARKS in any case; anything else is an error that lists the choices."""
    value = AUTO if benchmark.strip().lower() == AUTO else benchmark.strip().upper()
    if value != AUTO and value not in BENCHMARKS:
        raise DataError(f"unknown benchmark {benchmark!r}: choose auto, {', '.join(BENCHMARKS)}.")
    return value


def choose(seen: GtColumns, benchmark: str, seq: str) -> Choice:
    """The benchmark for sequence `seq`: the one asked for if the file fits it, else a guess from column 8."""
    benchmark = normalize(benchmark)
    if benchmark != AUTO:
        _check_fits(seen, benchmark)
        return Choice(benchmark, "as asked")
    kinds = set(seen.first)
    if "world" in kinds:  # decisive, whatever else the file holds: whole coordinates and -1 occur in MOT15 too
        lineno, text = seen.first["world"]
        return Choice("MOT15", f"guessed: column 8 of gt.txt holds fractional values ({text} at line {lineno}), "
                               "world coordinates as in MOT15, not class ids")
    if kinds == {"none"}:
        return Choice("MOT15", "guessed: column 8 of gt.txt is -1 on every line, no classes, as in MOT15")
    if "other" in kinds:
        raise DataError(f"{seen.at('other')}, neither a class id (1-13, MOT16/17/20) nor -1 or a fractional world "
                        f"coordinate (MOT15), so the benchmark cannot be told from the data: {_CHOOSE}.")
    if kinds >= {"none", "class"}:
        late = max(("none", "class"), key=lambda k: seen.first[k][0])
        early_line, early_text = seen.first["class" if late == "none" else "none"]
        raise DataError(f"{seen.at(late)} but {early_text} at line {early_line}: a mix of class ids (MOT16/17/20) "
                        f"and -1 (MOT15), so the benchmark cannot be told from the data: {_CHOOSE}.")
    if "not_visibility" in kinds:
        raise DataError(f"{seen.at('not_visibility')}, not a visibility (0-1) although column 8 looks like a class "
                        "id; whole-number world coordinates (MOT15) would look like this, so the benchmark cannot be "
                        f"told from the data: {_CHOOSE}.")
    if seq.upper().startswith("MOT20"):
        return Choice("MOT20", "guessed: column 8 of gt.txt holds class ids and the sequence is named MOT20-*")
    what = "holds class ids (1-13)" if kinds else "has no lines to tell from"
    return Choice("MOT17", f"guessed: column 8 of gt.txt {what}; MOT16 and MOT17 are scored alike")


def _check_fits(seen: GtColumns, benchmark: str) -> None:
    if benchmark == "MOT15":  # TrackEval reads no classes for MOT15: any columns 8-10 fit
        return
    bad = [k for k in ("world", "none", "other") if k in seen.first]
    if not bad:
        return
    kind = min(bad, key=lambda k: seen.first[k][0])
    hint = ("fix the class id, or if columns 8-10 are world coordinates use --benchmark MOT15" if kind == "other" else
            "this is MOT15-style ground truth (world coordinates or -1 in columns 8-10): use --benchmark MOT15 or auto")
    raise DataError(f"{seen.at(kind)}, not a class id (1-13) as {benchmark} ground truth has there (frame, id, x, y, "
                    f"w, h, conf, class, visibility): {hint}.")


def _kind(value: float) -> str:
    if not value.is_integer():
        return "world"
    if value == -1:
        return "none"
    return "class" if 1 <= value <= 13 else "other"
