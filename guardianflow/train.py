"""`train`: python -m guardianflow.train [scenario=NAME] [group.key=value ...]"""

import hydra
from omegaconf import DictConfig

import gfcore.config.schema  # noqa: F401  registers the config schema with Hydra
from gfcore.config import normalise_argv
from gfcore.jobs.train import train
from gfcore.orchestration.app import run_app


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_app(train, cfg)


if __name__ == "__main__":
    normalise_argv()
    main()
