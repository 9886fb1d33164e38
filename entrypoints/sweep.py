"""`sweep`: a Hydra multirun of train under one MLflow parent run, e.g.
python -m entrypoints.sweep scenario=smoke train.lr0=0.001,0.01 train.batch=8,16   # grid: four children
python -m entrypoints.sweep scenario=smoke sweep=optuna hydra.sweeper.n_trials=4     # Optuna
python -m entrypoints.sweep scenario=smoke train.lr0=0.001,0.01 launcher=joblib     # two processes
"""

import sys

import hydra
from omegaconf import DictConfig

import gfcore.config.schema  # noqa: F401  registers the config schema with Hydra
from gfcore.app import run_app
from gfcore.config import normalise_argv
from gfcore.errors import GuardianFlowError
from gfcore.sweep import check_overrides, end_open_parent
from gfcore.train import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_app(train, cfg)


if __name__ == "__main__":
    normalise_argv()
    try:
        check_overrides(sys.argv[1:])
    except GuardianFlowError as err:
        print(f"guardianflow: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    if "--multirun" not in sys.argv and "-m" not in sys.argv:
        sys.argv.insert(1, "--multirun")
    try:
        main()
    except BaseException as exc:  # Hydra exits through SystemExit on errors; never leave the parent RUNNING
        code = getattr(exc, "code", 1)
        if not (isinstance(exc, SystemExit) and code in (0, None)):
            end_open_parent("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED",
                            f"the sweep stopped: {type(exc).__name__}: {exc}")
        raise
