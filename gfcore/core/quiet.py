"""Quiet by default: a command prints its answer, not MLflow's artifact download bars or the warnings MLflow and
torch repeat on every run. `defaults()` runs where a GuardianFlow process starts (the `guardianflow` command, each
entry point, Ultralytics' set-up); it sets environment variables, so the processes those start (`mlflow run`
steps) are quiet too. `guardianflow --verbose` (GF_VERBOSE=1) shows everything; a variable the user set wins.

Long work keeps its own progress (Ultralytics' epochs, the pipeline's stages, latency loops): only the bars of
artifact downloads, which a read-only command does dozens of times, are hidden."""

from __future__ import annotations

import logging
import os
import re
import warnings

VERBOSE_ENV = "GF_VERBOSE"  # "1": everything shown, in this process and those it starts
ARTIFACT_BARS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # MLflow's own switch (mlflow.environment_variables)

# Warnings that say nothing a GuardianFlow user can act on, by the start of their text.
KNOWN_WARNINGS = (
    r"(\x1b\[\d+m)?Add type hints to the `predict` method",  # MLflow; our pyfunc declares an explicit signature
    r"`torch\.jit\.trace(_method)?` is deprecated",  # torch, inside Ultralytics' and OpenVINO's exports
    r"Type hint used in the model's predict function is not supported",
)
# Loggers whose warnings are about a set-up GuardianFlow does not use (CUDA extensions on a CPU machine).
KNOWN_LOGGERS = ("torch.utils.cpp_extension",)
_KNOWN = re.compile("|".join(f"(?:{p})" for p in KNOWN_WARNINGS))


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes")


def defaults(show_all: bool = False) -> None:
    """Quiet defaults for this process and its children; `show_all` (or GF_VERBOSE) leaves everything shown."""
    if show_all:
        os.environ[VERBOSE_ENV] = "1"
    if verbose():
        return
    os.environ.setdefault(ARTIFACT_BARS_ENV, "false")
    for pattern in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    # MLflow wraps some calls in `catch_warnings()` + `simplefilter("once")`, which puts its warnings in front of
    # any filter: they are dropped where they would be shown instead.
    if not getattr(warnings.showwarning, "_gf_quiet", False):
        warnings.showwarning = _shown_unless_known(warnings.showwarning)
    for name in KNOWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def _shown_unless_known(show):
    def showwarning(message, category, filename, lineno, file=None, line=None):
        if not _KNOWN.match(str(message)):
            show(message, category, filename, lineno, file, line)

    showwarning._gf_quiet = True
    return showwarning
