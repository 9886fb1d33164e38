"""`guardianflow scan BASE_DIR`: a draft experiments registry for every sub-folder of an old experiments tree.

Customer and task are guessed from the folder name, scripts are classified by name (Korean names
included), an argparse script's arguments become its args_template, notebooks and duplicate copies are
noted, and every field a person must decide is marked TODO (load_registry refuses a TODO).
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
from pathlib import Path

from gfcore.config.schema import TaskType
from gfcore.core.errors import ConfigError
from gfcore.legacy.experiments_registry import BACKUP, TODO, script_rank

# First match wins: export words before "train" so `export_trained.py` is a quant script.
KIND_WORDS = (
    ("quant", ("export", "quant", "onnx", "openvino", "tensorrt", "trt", "int8", "변환", "양자화")),
    ("infer", ("infer", "eval", "bench", "val", "predict", "detect", "test", "stream", "추론", "평가")),
    ("train", ("train", "finetune", "fit", "학습", "훈련")),
)
TASK_WORDS = {"ppe": TaskType.ppe, "helmet": TaskType.ppe, "안전모": TaskType.ppe, "fall": TaskType.fall,
              "넘어짐": TaskType.fall, "fire": TaskType.fire, "smoke": TaskType.fire, "화재": TaskType.fire,
              "collision": TaskType.collision, "forklift": TaskType.collision, "stuck": TaskType.stuck,
              "끼임": TaskType.stuck}
DEFAULT_CLASSES = {"ppe": ["helmet", "vest"], "fall": ["person", "fallen"], "fire": ["fire", "smoke"]}


def classify(name: str) -> str | None:
    lower = name.lower()
    for kind, words in KIND_WORDS:
        if any(w in lower for w in words):
            return kind
    return None


def scan(base: Path, out_dir: Path | None = None) -> str:
    """The draft registry as YAML text (with comments for what to fill in); paths relative to `out_dir`."""
    if not base.is_dir():
        raise ConfigError(f"{base} is not a folder: give the folder that holds the old experiment folders.")
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ConfigError(f"{base} has no sub-folders to scan.")
    lines = ["# Draft experiments registry written by `guardianflow scan`. Fill in every TODO, check the guesses,",
             "# then `guardianflow list` and `guardianflow wrap NAME --type train` (see README).", "version: 1",
             "experiments:"]
    for folder in folders:
        lines += _entry(folder, (out_dir or Path.cwd()).resolve())
    return "\n".join(lines) + "\n"


def write_draft(base: Path, out: Path, force: bool) -> Path:
    if out.exists() and not force:
        raise ConfigError(f"{out} exists: pass --force to overwrite it, or -o another file.")
    text = scan(base, out.parent)
    out.write_text(text, encoding="utf-8")
    return out


def _entry(folder: Path, out_dir: Path) -> list[str]:
    customer, region, task, zone = _guess(folder.name)
    # Canonical names first, so a copy is the one called the duplicate.
    scripts = sorted((p for p in folder.rglob("*") if p.suffix in (".py", ".ipynb", ".sh") and p.is_file()
                      and "__pycache__" not in p.parts),
                     key=lambda p: script_rank(folder, p))
    by_kind: dict[str, list[Path]] = {}
    notes = []
    digests: dict[str, Path] = {}
    for script in scripts:
        rel = script.relative_to(folder)
        if script.suffix == ".ipynb":
            notes.append(f"notebook {rel}: not wrapped (export it to a script first)")
            continue
        digest = hashlib.sha256(script.read_bytes()).hexdigest()
        if digest in digests:
            notes.append(f"{rel} is a duplicate of {digests[digest].relative_to(folder)}")
            continue
        digests[digest] = script
        kind = classify(script.stem)
        if kind is None:
            notes.append(f"{rel}: kind unknown (not train / infer / quant by its name)")
            continue
        by_kind.setdefault(kind, []).append(rel)
    rel_path = Path(os.path.relpath(folder.resolve(), out_dir)).as_posix()
    guessed = "  # guessed from the folder name"
    out = [f"  {folder.name}:", f"    path: {_quote(rel_path)}  # relative to this file", "    site:",
           f"      customer: {customer}" + (guessed if customer != TODO else ""),
           f"      region: {region}" + (guessed if region != TODO else ""), f"      plant: {TODO}",
           f"      zone: {zone}" + (guessed if zone != TODO else ""),
           "    task:", f"      type: {task}" + (guessed if task != TODO else "  # ppe, fall, fire, collision or stuck"),
           f"      classes: {DEFAULT_CLASSES.get(task, [TODO])}  # check against the dataset's names"]
    out.append("    entry_points:" if by_kind else "    entry_points: {}")
    for kind in ("train", "infer", "quant"):
        found = by_kind.get(kind)
        if not found:
            continue
        default = min(found, key=lambda p: script_rank(Path("."), p))
        for other in found:
            if other != default and BACKUP.search(other.stem):
                notes.append(f"{other} looks like a backup of {default}")
        template = _args_template(folder / default)
        out += [f"      {kind}:", f"        default: {_quote(default.as_posix())}",
                f"        patterns: [{', '.join(_quote(p.as_posix()) for p in found)}]"]
        out.append(f"        args_template: {_quote(template)}" if template else
                   "        args_template: null  # none found: -p key=value becomes --key value")
    if notes:
        out.append("    notes: " + _quote("; ".join(notes)))
    return out


def _guess(name: str) -> tuple[str, str, str, str]:
    """(customer, region, task, zone) from a folder name.

    `donghwa-entec-ppe`: the words before the task word are the customer. `sampyo-gimhae-bct` (no task word):
    customer, region, zone."""
    parts = [re.sub(r"[^a-z0-9_]", "", p) for p in re.split(r"[-_ ]+", name.lower())]
    parts = [p for p in parts if p]
    at = next((i for i, p in enumerate(parts) if p in TASK_WORDS), None)
    if at is not None:
        return "-".join(parts[:at]) or TODO, TODO, TASK_WORDS[parts[at]].value, "-".join(parts[at + 1:]) or TODO
    if len(parts) >= 3:
        return parts[0], parts[1], TODO, "-".join(parts[2:])
    return (parts[0] if parts else TODO), TODO, TODO, TODO


def _args_template(script: Path) -> str | None:
    """`--epochs {epochs} --batch {batch}` from the script's argparse `add_argument` calls, if it has them."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8", errors="replace"))
    except SyntaxError:
        return None
    parts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.startswith("--"):
                flag = first.value
                dest = flag.lstrip("-").replace("-", "_")
                is_flag = any(k.arg == "action" and isinstance(k.value, ast.Constant) and
                              str(k.value.value).startswith("store_") for k in node.keywords)
                parts.append(flag if is_flag else f"{flag} {{{dest}}}")
    return " ".join(parts) or None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
