"""What every entry point shares around its gfcore call: clear errors and honest exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

from gfcore.config.compose import to_typed
from gfcore.config.schema import Config
from gfcore.errors import GuardianFlowError

T = TypeVar("T")


def run_app(work: Callable[[Config], T], cfg: DictConfig) -> T:
    """Type the composed config and run `work`; a GuardianFlow error prints one paragraph and exits 2,
    Ctrl-C exits 130 and SIGTERM 143. Under `mlflow run`, a failure before the run was owned still ends
    MLflow's run FAILED (or KILLED)."""
    from gfcore.tracking.run import Terminated, fail_env_run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
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
