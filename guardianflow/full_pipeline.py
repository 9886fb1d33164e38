"""`full_pipeline`: train -> quant (each of pipeline.quant_backends) -> infer (each model), as nested child runs:
python -m guardianflow.full_pipeline [scenario=NAME] [pipeline.quant_backends=[openvino_int8,onnx_int8]] [...]"""

import hydra
from omegaconf import DictConfig

import gfcore.config.schema  # noqa: F401  registers the config schema with Hydra
from gfcore.config import normalise_argv
from gfcore.orchestration.app import run_app
from gfcore.orchestration.pipeline import full_pipeline


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_app(full_pipeline, cfg)


if __name__ == "__main__":
    normalise_argv()
    main()
