"""What changed between two versions of a dataset, from their manifests alone (nothing is downloaded): images
added, removed and changed (pixels or labels), boxes added and removed per class, class counts before and after."""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath
from typing import Any

from gfcore.data.hashing import IMAGE_SUFFIXES
from gfcore.data.versions.manifest import label_of, totals


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    old, new = before["files"], after["files"]
    images = sorted({rel for rel in (*old, *new) if PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES})
    added = [rel for rel in images if rel not in old]
    removed = [rel for rel in images if rel not in new]
    changed = []
    for rel in images:
        if rel not in old or rel not in new:
            continue
        label = label_of(rel)
        pixels = old[rel]["sha256"] != new[rel]["sha256"]
        labels = old.get(label, {}).get("sha256") != new.get(label, {}).get("sha256")
        if pixels or labels:
            delta = _delta(old.get(label, {}).get("boxes", {}), new.get(label, {}).get("boxes", {}))
            changed.append({"image": rel, "label": label, "what": "image and labels" if pixels and labels
                            else "image" if pixels else "labels", "boxes": delta})
    classes = list(dict.fromkeys([*before["classes"], *after["classes"]]))
    box_added: Counter[str] = Counter()
    box_removed: Counter[str] = Counter()
    for rel in {*old, *new}:
        if "boxes" in old.get(rel, {}) or "boxes" in new.get(rel, {}):
            for cls, d in _delta(old.get(rel, {}).get("boxes", {}), new.get(rel, {}).get("boxes", {})).items():
                (box_added if d > 0 else box_removed)[cls] += abs(d)
    (n_before, count_before), (n_after, count_after) = totals(before), totals(after)
    return {
        "from": {"name": before["name"], "version": before["version"], "images": n_before},
        "to": {"name": after["name"], "version": after["version"], "images": n_after},
        "images": {"added": added, "removed": removed, "changed": changed},
        "boxes": {cls: {"before": count_before.get(cls, 0), "after": count_after.get(cls, 0),
                        "added": box_added[cls], "removed": box_removed[cls]} for cls in classes},
        "splits": {s: {"before": before["splits"].get(s, {}).get("images", 0),
                       "after": after["splits"].get(s, {}).get("images", 0)}
                   for s in dict.fromkeys([*before["splits"], *after["splits"]])},
        "classes_changed": before["classes"] != after["classes"],
        "yaml_changed": before["yaml"] != after["yaml"],
    }


def summary(d: dict[str, Any]) -> str:
    """One line, e.g. `images +12 -0, 3 changed; boxes helmet +15 -2, vest +4`."""
    images = d["images"]
    parts = [f"images +{len(images['added'])} -{len(images['removed'])}, {len(images['changed'])} changed"]
    boxes = [f"{cls} " + " ".join(s for s in (f"+{b['added']}" if b["added"] else "",
                                               f"-{b['removed']}" if b["removed"] else "") if s)
             for cls, b in d["boxes"].items() if b["added"] or b["removed"]]
    parts.append("boxes " + (", ".join(boxes) if boxes else "unchanged"))
    if d["classes_changed"]:
        parts.append("class names changed")
    return "; ".join(parts)


def _delta(old: dict[str, int], new: dict[str, int]) -> dict[str, int]:
    return {cls: new.get(cls, 0) - old.get(cls, 0) for cls in dict.fromkeys([*old, *new])
            if new.get(cls, 0) != old.get(cls, 0)}
