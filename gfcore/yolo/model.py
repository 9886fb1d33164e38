"""Building YOLO models from config, offline, and measuring their size."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore.core.errors import ModelError
from gfcore.core.vocabulary import SYS_MODEL_GFLOPS, SYS_MODEL_PARAMS_M, SYS_MODEL_SIZE_MB

if TYPE_CHECKING:
    from gfcore.config.schema import ModelConfig


def resolve_weights_file(name: str) -> Path | None:
    """A `.pt` named in config: as a path, or in Ultralytics' weights folder. None when not on disk."""
    from ultralytics.utils import SETTINGS

    for candidate in (Path(name).expanduser(), Path(SETTINGS["weights_dir"]) / Path(name).name):
        if candidate.is_file():
            return candidate.resolve()
    return None


def check_model_source(cfg: ModelConfig) -> None:
    """Refuse, before any run exists, a model whose weights are not on disk (nothing is downloaded)."""
    for key, name in (("model.architecture", cfg.architecture), ("model.weights", cfg.weights)):
        if name and name.endswith(".pt") and resolve_weights_file(name) is None:
            raise ModelError(
                f"{key}={name!r} names pretrained weights that are not on disk, and GuardianFlow never downloads "
                f"at run time. Copy the file there (or into Ultralytics' weights_dir), point {key} at it, or "
                f"train from scratch with model.architecture={Path(name).stem}.yaml."
            )
    if cfg.architecture.endswith((".yaml", ".yml")):
        from ultralytics.nn.tasks import yaml_model_load

        try:
            yaml_model_load(cfg.architecture)
        except Exception as exc:
            raise ModelError(f"model.architecture={cfg.architecture!r} is not a model yaml Ultralytics knows "
                             f"({exc}): use one such as yolov8n.yaml or yolo11n.yaml, or a path to your own.") from exc


def build_model(cfg: ModelConfig) -> Any:
    """A fresh `YOLO` model: from its yaml, or from weights on disk (`model.weights` loaded on top)."""
    from ultralytics import YOLO

    arch = cfg.architecture
    model = YOLO(str(resolve_weights_file(arch)) if arch.endswith(".pt") else arch, task="detect")
    if cfg.weights:
        model.load(str(resolve_weights_file(cfg.weights)))
    return model


def model_size_mb(path: Path) -> float:
    """A file's size, or the total of a folder (OpenVINO's xml + bin)."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    return path.stat().st_size / 2**20


def model_stats(weights: Path, imgsz: int) -> dict[str, float]:
    """File size, parameter count and GFLOPs of a trained checkpoint."""
    from ultralytics.nn.tasks import load_checkpoint
    from ultralytics.utils.torch_utils import get_flops

    net, _ = load_checkpoint(str(weights))
    params = sum(p.numel() for p in net.parameters())
    return {
        SYS_MODEL_SIZE_MB: model_size_mb(weights),
        SYS_MODEL_PARAMS_M: params / 1e6,
        SYS_MODEL_GFLOPS: float(get_flops(net, imgsz)),
    }
