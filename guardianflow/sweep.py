"""`sweep`: a Hydra multirun of train under one MLflow parent run, e.g.
python -m guardianflow.sweep scenario=smoke train.lr0=0.001,0.01 train.batch=8,16   # grid: four children
python -m guardianflow.sweep scenario=smoke sweep=optuna hydra.sweeper.n_trials=4     # Optuna
python -m guardianflow.sweep scenario=smoke train.lr0=0.001,0.01 launcher=joblib     # two processes
Exits 0 when a job finished with a value, 2 when none did, 143 on SIGTERM and 130 on Ctrl-C (all runs ended).
"""

import hydra
from omegaconf import DictConfig

import gfcore.config.schema  # noqa: F401  registers the config schema with Hydra
from gfcore.config import normalise_argv
from gfcore.jobs.train import train
from gfcore.orchestration.app import run_app, run_multirun


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_app(train, cfg)


if __name__ == "__main__":
    normalise_argv()
    run_multirun(main)
