"""`compare`: variants side by side under one parent run, one design at a time:
python -m guardianflow.compare compare.architectures=[yolov8n,yolo11n] [scenario=NAME] [...]
python -m guardianflow.compare compare.backends=[onnx_int8,openvino_int8] compare.source_run_id=RUN_ID"""

import hydra
from omegaconf import DictConfig

import gfcore.config.schema  # noqa: F401  registers the config schema with Hydra
from gfcore.config import normalise_argv
from gfcore.orchestration.app import run_app
from gfcore.orchestration.compare import compare


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_app(compare, cfg)


if __name__ == "__main__":
    normalise_argv()
    main()
