"""The garbage-collector policy of a command's process (gfcore.core.gcpolicy): rare collections while it starts, the
start-up heap frozen once its run is owned, Python's defaults for the work, and no change at all in a process that
did not ask for it (a notebook, these tests)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from gfcore.core import gcpolicy
from tests.conftest import REPO

PROBE = """
import gc, json
from gfcore.core import gcpolicy
default = gc.get_threshold()
gcpolicy.starting()
starting = gc.get_threshold()
import mlflow  # a start-up's worth of long-lived objects
gcpolicy.started()
print(json.dumps({"default": default, "starting": starting, "after": gc.get_threshold(),
                  "frozen": gc.get_freeze_count()}))
"""


def test_a_command_collects_rarely_while_starting_then_as_usual():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["starting"][0] == gcpolicy.STARTUP_THRESHOLD and seen["starting"][1:] == seen["default"][1:]
    assert seen["after"] == seen["default"], "the work runs with Python's own thresholds"
    assert seen["frozen"] > 100_000, "what start-up loaded is out of later collections"


def test_library_calls_leave_the_collector_alone():
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    gcpolicy.started()  # owned_run calls it in every process; only a command's own start changes anything
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, frozen)
