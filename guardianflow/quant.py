"""`quant`: python -m guardianflow.quant quant.source_run_id=RUN_ID backend=openvino_int8 [scenario=NAME] [...]"""

import hydra
from omegaconf import DictConfig

import gfcore.config.schema  # noqa: F401  registers the config schema with Hydra
from gfcore.config import normalise_argv
from gfcore.jobs.quant import quant
from gfcore.orchestration.app import run_app


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_app(quant, cfg)


if __name__ == "__main__":
    normalise_argv()
    main()
