"""Did you mean: the valid names closest to a misspelled one, for one-line error messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MAX_LISTED = 12  # more names than this are counted, not listed: an error stays one readable line


def close(word: str, names: Iterable[str], n: int = 1) -> list[str]:
    """The names most like `word`, best first (case-insensitive); none when nothing is close."""
    names = list(dict.fromkeys(names))
    by_lower = {name.lower(): name for name in names}
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[f] for f in found]


def did_you_mean(word: str, names: Iterable[str], n: int = 1) -> str:
    """` (did you mean a?)` (or `a or b`, up to `n`), or '' when nothing is close."""
    found = close(word, names, n)
    return f" (did you mean {' or '.join(found)}?)" if found else ""


def listed(names: Iterable[str]) -> str:
    """`a, b, c` (sorted), or the first MAX_LISTED and how many more."""
    names = sorted(set(names))
    more = len(names) - MAX_LISTED
    return ", ".join(names[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def unknown(what: str, word: str, names: Iterable[str], plural: str | None = None) -> str:
    """`no rule 'low_acuracy' (did you mean low_accuracy?); rules: a, b, c`."""
    names = list(names)
    return (f"no {what} {word!r}{did_you_mean(word, names)}; "
            + (f"{plural or what + 's'}: {listed(names)}" if names else f"there are no {plural or what + 's'}"))
