"""Does one model get one latency, whichever page shows it?

The quant run (and the train run, for best.pt) and the infer run of the same model measure its batch-1 latency
in different processes at different times. With the shared protocol (`latency.warmup` + `latency.runs` calls on
the evaluation split's images) the two p50 figures must agree within 10 % on an idle machine.

Runs the demo pipeline (1 epoch: latency does not depend on accuracy) with the given backends, then for each
variant compares the figure its producing run recorded with its infer run's, and with a second infer run of the
same model (the machine's own run-to-run noise), side by side:

    python bench/latency_agreement.py [--backends openvino_int8 onnx_fp32] [--rounds 2] [--runs 100]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", nargs="+", default=["openvino_int8", "onnx_fp32"])
    ap.add_argument("--rounds", type=int, default=2, help="pipelines run one after the other (fresh stores)")
    ap.add_argument("--runs", type=int, default=100, help="latency.runs")
    ap.add_argument("--warmup", type=int, default=10, help="latency.warmup")
    args = ap.parse_args()

    rows = []
    for n in range(args.rounds):
        rows += one_round(n + 1, args)
    print("\n| round | variant | producing run p50 ms | infer run p50 ms | again: infer p50 ms | producing / infer "
          "| infer again / infer |")
    print("|---|---|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['round']} | {r['variant']} | {r['own']:.2f} | {r['infer']:.2f} | {r['again']:.2f} | "
              f"{r['own'] / r['infer']:.3f} | {r['again'] / r['infer']:.3f} |")
    worst = max(abs(r["own"] / r["infer"] - 1) for r in rows)
    floor = max(abs(r["again"] / r["infer"] - 1) for r in rows)
    print(f"\nlargest p50 disagreement, producing run vs infer run: {worst:.1%}; the same infer twice: {floor:.1%} "
          "(target <= 10%)")


def one_round(n: int, args: argparse.Namespace) -> list[dict]:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "YOLO_OFFLINE": "1"}
        env.pop("MLFLOW_RUN_ID", None)
        common = [f"latency.runs={args.runs}", f"latency.warmup={args.warmup}", "infer.batch_sizes=[1]",
                  "infer.tracking.enabled=false", "tracking.system_metrics=false"]
        cmd = [sys.executable, "-m", "guardianflow.full_pipeline", "scenario=demo", "train.epochs=1",
               f"pipeline.quant_backends=[{','.join(args.backends)}]", *common, f"hydra.run.dir={tmp}/out"]
        print(f"round {n}: {' '.join(cmd[2:])}", flush=True)
        subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        mlflow.set_tracking_uri(uri)
        runs = mlflow.search_runs(experiment_names=["demo/local-plant1/yard"], output_format="list")
        by_id = {r.info.run_id: r for r in runs}
        rows = []
        for infer in (r for r in runs if r.data.tags.get("exp.type") == "infer"):
            source = infer.data.tags["source.run_id"]
            # The same benchmark of the same model once more, in a new process: the machine's own noise.
            subprocess.run([sys.executable, "-m", "guardianflow.infer", "scenario=demo", f"infer.source_run_id={source}",
                            *common, f"hydra.run.dir={tmp}/again"], cwd=REPO, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            again = mlflow.search_runs(experiment_names=["demo/local-plant1/yard"], output_format="list",
                                       order_by=["start_time DESC"], max_results=1)[0]
            variant = f"{infer.data.tags['backend.name']}_{infer.data.tags.get('backend.precision', '')}"
            rows.append({"round": n, "variant": variant, "own": by_id[source].data.metrics["sys.latency_p50_ms"],
                         "infer": infer.data.metrics["sys.latency_p50_ms"],
                         "again": again.data.metrics["sys.latency_p50_ms"]})
        mlflow.set_tracking_uri(None)
        return sorted(rows, key=lambda r: r["variant"])


if __name__ == "__main__":
    main()
