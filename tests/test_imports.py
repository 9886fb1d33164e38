"""Importing the entry points and the command line costs no deep-learning runtime: torch, Ultralytics and the
export runtimes load only in the work that uses them (a cached pipeline step, `--help` or a registry listing
never pay for them)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.audit import HEAVY
from tests.conftest import REPO

ENTRY_MODULES = ["guardianflow.train", "guardianflow.infer", "guardianflow.quant", "guardianflow.sweep",
                 "guardianflow.compare", "guardianflow.full_pipeline", "gfcore.cli"]


def test_entry_modules_import_no_runtime():
    probe = (f"import importlib, json, sys\nfor m in {ENTRY_MODULES!r}: importlib.import_module(m)\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(HEAVY)!r})))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []
