"""PyTorch: the trained checkpoint itself (fp32), or halved for an NVIDIA GPU (fp16)."""

from __future__ import annotations

import shutil

from gfcore.backends.base import Exported, ExportRequest
from gfcore.config.schema import Precision


def export(req: ExportRequest) -> Exported:
    req.out_dir.mkdir(parents=True, exist_ok=True)
    if req.backend.precision == Precision.fp32:
        target = req.out_dir / "model_fp32.pt"
        shutil.copy2(req.weights, target)
        return Exported(path=target, method="pytorch checkpoint (unchanged)")
    import torch

    ckpt = torch.load(req.weights, map_location="cpu", weights_only=False)
    for key in ("model", "ema"):
        if ckpt.get(key) is not None:
            ckpt[key] = ckpt[key].half()
    target = req.out_dir / "model_fp16.pt"
    torch.save(ckpt, target)
    return Exported(path=target, method="pytorch checkpoint halved to fp16")
