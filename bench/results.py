"""Writing one benchmark's section of bench/RESULTS.md, leaving the other sections as they are."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nLatest figures; each section names the command that produced it.\n"


def write_section(title: str, section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    marker = f"## {title}"
    if marker in text:
        head, _, rest = text.partition(marker)
        tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
    else:
        head, tail = text, ""
    RESULTS.write_text(head.rstrip() + "\n\n" + section.rstrip() + "\n" + tail)
