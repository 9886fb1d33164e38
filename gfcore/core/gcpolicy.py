"""Python's cyclic garbage collector around a command's start-up and exit.

Start-up imports MLflow, Hydra, torch and Ultralytics: millions of long-lived objects, during which the
collector's default thresholds run a full traversal again and again (about 0.5 s of a 3 s start on 2 cores),
and the interpreter's last collection at exit traverses them once more (0.5-1 s). None of it frees anything: module
objects live until the process ends. So a command collects rarely while it starts, then freezes what it loaded
(`gc.freeze`: moved out of every later collection, including the one at exit) and goes back to the default
thresholds for its own work, where garbage is real.

Only a process that called `starting` (an entry point, the `guardianflow` command) is changed: library calls in a
longer-lived process (a notebook, the tests) keep Python's defaults.
"""

from __future__ import annotations

import gc

STARTUP_THRESHOLD = 100_000  # allocations between young collections while starting (default 700)
_default: tuple[int, int, int] | None = None


def starting() -> None:
    """Collect rarely until `started`; call first thing in a command."""
    global _default
    if _default is None:
        _default = gc.get_threshold()
        gc.set_threshold(STARTUP_THRESHOLD, *_default[1:])


def started() -> None:
    """What is loaded by now stays loaded: leave it out of later collections, and collect as usual again."""
    global _default
    if _default is not None:
        gc.freeze()
        gc.set_threshold(*_default)
        _default = None


def exiting() -> None:
    """Nothing is freed by traversing the heap once more on the way out (the process ends next)."""
    gc.freeze()
