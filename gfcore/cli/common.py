"""What the command groups share: typed config from overrides, aligned tables, number cells."""

from __future__ import annotations


def typed(overrides: list[str]):
    from gfcore.config import compose, split_overrides, to_typed

    return to_typed(compose(split_overrides(overrides)))


def table(rows: list[dict], columns: list[str]) -> str:
    """An aligned text table; missing cells print as '-'."""
    cells = [[str(r.get(c, "")) if r.get(c) not in (None, "") else "-" for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def fmt(value: float | None) -> str | None:
    return None if value is None else f"{value:.4f}"
