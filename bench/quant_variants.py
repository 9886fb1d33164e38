"""Every CPU export variant against PyTorch fp32: speedup, size ratio and accuracy drop, side by side.

Trains the demo model once (or takes --source-run-id), then runs GuardianFlow's `quant` for each CPU variant
at imgsz 640. Each quant run measures the PyTorch fp32 source and the variant one after the other, on the same
test split with the same settings, so every ratio compares two measurements taken minutes apart on the same
machine. Figures are reported as measured, good or bad.

    python bench/quant_variants.py                       # demo model, speed at 640, accuracy at 160
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
    parser.add_argument("--imgsz", type=int, default=640, help="export and timing size")
    parser.add_argument("--accuracy-imgsz", type=int, default=160,
                        help="size the accuracy is measured at: the demo model's own (160 px images, trained at 160)")
    parser.add_argument("--variants", nargs="+", default=CPU_VARIANTS)
    parser.add_argument("--runs", type=int, default=50, help="timed batch-1 predictions per model")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gf-bench-quant-") as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        import mlflow

        from gfcore.config import compose, to_typed
        from gfcore.jobs.quant import quant
        from gfcore.jobs.train import train

        start = time.perf_counter()
        train(to_typed(compose(["scenario=demo", "registry.register=false"])))
        train_s = time.perf_counter() - start
        [source] = mlflow.search_runs(experiment_names=["demo/local-plant1/yard"], output_format="list")
        def run_quant(variant: str, imgsz: int) -> dict[str, float]:
            quant(to_typed(compose(["scenario=demo", f"backend={variant}", f"model.imgsz={imgsz}",
                                    f"quant.source_run_id={source.info.run_id}", f"latency.runs={args.runs}",
                                    "registry.register=false"])))
            return mlflow.search_runs(experiment_names=["demo/local-plant1/yard"], output_format="list",
                                      order_by=["start_time DESC"])[0].data.metrics

        rows = []
        for variant in args.variants:
            # Speed and size at the deployment size; accuracy where the demo model works (its own 160 px).
            speed, acc = run_quant(variant, args.imgsz), run_quant(variant, args.accuracy_imgsz)
            rows.append((variant, speed, acc))
            print(f"{variant}: speedup {speed['comparison.speedup_ratio']:.2f}x, size ratio "
                  f"{speed['comparison.compression_ratio']:.2f}x, mAP50 drop "
                  f"{acc['comparison.accuracy_drop_mAP50']:+.3f}", flush=True)

    lines = [
        "## quant variants",
        "",
        f"Command: `python bench/quant_variants.py --imgsz {args.imgsz} --accuracy-imgsz {args.accuracy_imgsz} "
        f"--runs {args.runs}` "
        f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, no GPU).",
        f"Source: the demo model (YOLOv8n, trained at imgsz 160 in {train_s:.0f} s). Per variant, two `quant` "
        f"runs, each measuring the PyTorch fp32 source and the variant back to back on the demo test split "
        f"(60 images), batch 1, {args.runs} timed predictions after warm-up: one exported at imgsz {args.imgsz} "
        f"for speed and size, one at imgsz {args.accuracy_imgsz} for accuracy (the demo images are 160 px; "
        f"upscaled to {args.imgsz} the model finds almost nothing, so accuracy there says nothing). Speedup = "
        "source p50 / variant p50; size ratio = source file / variant file (best.pt stores fp16 weights, so fp32 "
        "exports are larger); drop = source det.mAP50 - variant det.mAP50.",
        "",
        f"| variant | source p50 ms @{args.imgsz} | variant p50 ms | speedup | source MB | variant MB | size ratio | "
        f"source mAP50 @{args.accuracy_imgsz} | variant mAP50 | mAP50 drop | mAP50-95 drop |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, m, a in rows:
        lines.append(
            f"| {variant} | {m['original.sys.latency_p50_ms']:.1f} | {m['sys.latency_p50_ms']:.1f} | "
            f"{m['comparison.speedup_ratio']:.2f}x | {m['original.sys.model_size_mb']:.1f} | "
            f"{m['sys.model_size_mb']:.1f} | {m['comparison.compression_ratio']:.2f}x | "
            f"{a['original.det.mAP50']:.3f} | {a['det.mAP50']:.3f} | "
            f"{a['comparison.accuracy_drop_mAP50']:+.3f} | {a['comparison.accuracy_drop_mAP50_95']:+.3f} |")
    lines += ["", "TensorRT fp16 / int8 need an NVIDIA GPU and are not measured on this machine."]
    section = "\n".join(lines)
    print("\n" + section)
    if not args.no_write:
        from bench.results import write_section

        write_section("quant variants", section)


if __name__ == "__main__":
    main()
