"""Every CPU export variant against PyTorch fp32: speedup, size ratio and accuracy drop, side by side.

Trains the demo model once (or takes --source-run-id), then runs GuardianFlow's `quant` for each CPU variant
at imgsz 640. Each quant run measures the PyTorch fp32 source and the variant one after the other, on the same
test split with the same settings, so every ratio compares two measurements taken minutes apart on the same
machine. Figures are reported as measured, good or bad.

    python bench/quant_variants.py                       # demo model, imgsz 640, all CPU variants
    python bench/quant_variants.py --imgsz 320 --variants onnx_int8 openvino_int8

Results are printed and written to bench/RESULTS.md (section "quant variants").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CPU_VARIANTS = ["onnx_fp32", "onnx_fp16", "onnx_int8", "openvino_fp32", "openvino_fp16", "openvino_int8"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--variants", nargs="+", default=CPU_VARIANTS)
    parser.add_argument("--runs", type=int, default=50, help="timed batch-1 predictions per model")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gf-bench-quant-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        import mlflow

        from gfcore.config import compose, to_typed
        from gfcore.quant import quant
        from gfcore.train import train

        start = time.perf_counter()
        train(to_typed(compose(["scenario=demo", "registry.register=false"])))
        train_s = time.perf_counter() - start
        [source] = mlflow.search_runs(experiment_names=["demo/local-plant1/yard"], output_format="list")
        rows = []
        for variant in args.variants:
            t0 = time.perf_counter()
            quant(to_typed(compose(["scenario=demo", f"backend={variant}", f"model.imgsz={args.imgsz}",
                                    f"quant.source_run_id={source.info.run_id}", f"quant.runs={args.runs}",
                                    "registry.register=false"])))
            run = mlflow.search_runs(experiment_names=["demo/local-plant1/yard"], output_format="list",
                                     order_by=["start_time DESC"])[0]
            rows.append((variant, run.data.metrics, time.perf_counter() - t0))
            m = run.data.metrics
            print(f"{variant}: speedup {m['comparison.speedup_ratio']:.2f}x, size ratio "
                  f"{m['comparison.compression_ratio']:.2f}x, mAP50 drop {m['comparison.accuracy_drop_mAP50']:+.3f}",
                  flush=True)

    lines = [
        "## quant variants",
        "",
        f"Command: `python bench/quant_variants.py --imgsz {args.imgsz} --runs {args.runs}` "
        f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, no GPU).",
        f"Source: the demo model (YOLOv8n, trained at imgsz 160 in {train_s:.0f} s), exported and measured at imgsz "
        f"{args.imgsz} on the demo test split (60 images upscaled from 160 px). Each row is one `quant` run: the "
        "PyTorch fp32 source and the variant measured back to back, batch 1, "
        f"{args.runs} timed predictions after warm-up. Speedup = source p50 / variant p50; size ratio = source "
        "file / variant file (the source best.pt stores fp16 weights, so fp32 exports are larger); drop = source "
        "det.mAP50 - variant det.mAP50.",
        "",
        "| variant | source p50 ms | variant p50 ms | speedup | source MB | variant MB | size ratio | "
        "source mAP50 | variant mAP50 | mAP50 drop | mAP50-95 drop |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, m, _ in rows:
        lines.append(
            f"| {variant} | {m['original.sys.latency_p50_ms']:.1f} | {m['quantized.sys.latency_p50_ms']:.1f} | "
            f"{m['comparison.speedup_ratio']:.2f}x | {m['original.sys.model_size_mb']:.1f} | "
            f"{m['quantized.sys.model_size_mb']:.1f} | {m['comparison.compression_ratio']:.2f}x | "
            f"{m['original.det.mAP50']:.3f} | {m['quantized.det.mAP50']:.3f} | "
            f"{m['comparison.accuracy_drop_mAP50']:+.3f} | {m['comparison.accuracy_drop_mAP50_95']:+.3f} |")
    lines += ["", "TensorRT fp16 / int8 need an NVIDIA GPU and are not measured on this machine."]
    section = "\n".join(lines)
    print("\n" + section)
    if not args.no_write:
        from bench.results import write_section

        write_section("quant variants", section)


if __name__ == "__main__":
    main()
