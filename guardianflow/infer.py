"""`infer`: python -m guardianflow.infer infer.model_uri=models:/NAME@champion [scenario=NAME] [...]
(or infer.source_run_id=RUN_ID for a train or quant run's model)"""

import hydra
from omegaconf import DictConfig

import gfcore.config.schema  # noqa: F401  registers the config schema with Hydra
from gfcore.config import normalise_argv
from gfcore.jobs.infer import infer
from gfcore.orchestration.app import run_app


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_app(infer, cfg)


if __name__ == "__main__":
    normalise_argv()
    main()
