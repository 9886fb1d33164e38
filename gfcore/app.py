"""What every entry point shares around its gfcore call: clear errors and honest exit codes."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

from gfcore.config.compose import to_typed
from gfcore.config.schema import Config
from gfcore.errors import GuardianFlowError

T = TypeVar("T")
log = logging.getLogger(__name__)


def run_app(work: Callable[[Config], T], cfg: DictConfig) -> T | float:
    """Type the composed config and run `work`; a GuardianFlow error prints one paragraph and exits 2,
    Ctrl-C exits 130 and SIGTERM 143. Under `mlflow run`, a failure before the run was owned still ends
    MLflow's run FAILED (or KILLED).

    In a Hydra multirun (a sweep) a job never exits the process: it returns the value of `sweep.metric`
    its run logged, or NaN when it failed (its run is then FAILED), so the sweeper goes on."""
    from gfcore.tracking.run import Terminated, fail_env_run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if _in_multirun():
        return _run_job(work, cfg)
    try:
        return work(to_typed(cfg))
    except GuardianFlowError as exc:
        fail_env_run(exc)
        print(f"\nguardianflow: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        fail_env_run(exc, status="KILLED")
        print("\nguardianflow: stopped " + ("by SIGTERM" if isinstance(exc, Terminated) else "by Ctrl-C")
              + "; the run is marked KILLED.", file=sys.stderr)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    except Exception as exc:
        fail_env_run(exc)
        raise


def _run_job(work: Callable[[Config], T], cfg: DictConfig) -> float:
    from gfcore import sweep
    from gfcore.tracking.run import started_runs

    before = len(started_runs())
    try:
        typed = to_typed(cfg)
        work(typed)
    except Exception as exc:  # one job's failure must not end the sweep
        log.error("this sweep job failed: %s", exc)
        if len(started_runs()) == before:
            sweep.record_failed_job(exc, getattr(work, "__name__", "job"))
        return math.nan
    ours = started_runs()[before:]
    return sweep.job_objective(ours[-1] if ours else None, typed.sweep.metric)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
