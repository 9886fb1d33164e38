"""What orchestration costs: `full_pipeline` on the smoke scenario twice in a fresh store, the second run reusing
every step, and the cost of each child step that is not the step's own work.

- cached rerun ratio = wall of a cached rerun (median of `--reruns` of them) / wall of the first (target <= 0.05);
- per child step: the parent's wall time for the step (`pipeline.step_s.*`), the child's own work (from its run
  being owned to its end), and the rest: `mlflow run` (its CLI process, run creation, environment) plus the
  child's start-up (`sys.startup_s`: interpreter, imports, config composition and checks).

    python bench/pipeline_cache.py                     # smoke scenario, default quant backend (openvino_int8)
    python bench/pipeline_cache.py --overrides "pipeline.quant_backends=[onnx_fp32,openvino_fp32]"

Results are printed and written to bench/RESULTS.md (section "pipeline cache").
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET = 0.05


def invoke(uri: str, out: Path, overrides: list[str]) -> float:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_RUN_ID", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "guardianflow.full_pipeline", "scenario=smoke", *overrides,
                    f"hydra.run.dir={out}"], cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--overrides", default="", help="extra Hydra overrides for full_pipeline")
    parser.add_argument("--reruns", type=int, default=5, help="cached reruns timed (their median is the figure)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    overrides = args.overrides.split()

    with tempfile.TemporaryDirectory(prefix="gf-bench-pipeline-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        first = invoke(uri, Path(tmp) / "first", overrides)
        reruns = [invoke(uri, Path(tmp) / f"rerun{i}", overrides) for i in range(args.reruns)]
        second = statistics.median(reruns)
        import mlflow

        mlflow.set_tracking_uri(uri)
        client = mlflow.MlflowClient()
        runs = mlflow.search_runs(search_all_experiments=True, output_format="list", order_by=["start_time ASC"])
        parents = [r for r in runs if r.data.tags.get("exp.type") == "pipeline"]
        steps = []
        for child in (r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id):
            slug = next(k.removeprefix("gf.step.") for k, v in parents[0].data.tags.items()
                        if k.startswith("gf.step.") and v == child.info.run_id)
            wall = parents[0].data.metrics[f"pipeline.step_s.{slug}"]
            [startup] = client.get_metric_history(child.info.run_id, "sys.startup_s")
            work = (child.info.end_time - startup.timestamp) / 1000.0
            steps.append((slug, wall, work, startup.value, wall - work))

    ratio = second / first
    lines = [
        "## pipeline cache",
        "",
        f"Command: `python bench/pipeline_cache.py{' --overrides ' + repr(args.overrides) if args.overrides else ''}` "
        f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, no GPU).",
        "`full_pipeline` on the smoke scenario (train 2 epochs, quant openvino_int8, infer of both) once against "
        f"a fresh sqlite store, then {args.reruns} more times, each reusing every step (their median is the cached "
        f"rerun; all of them: {', '.join(f'{r:.1f}' for r in reruns)} s).",
        "",
        "| first run s | cached rerun s | ratio | target |",
        "|---|---|---|---|",
        f"| {first:.1f} | {second:.1f} | {ratio:.3f} | <= {TARGET} ({'met' if ratio <= TARGET else 'NOT met'}) |",
        "",
        "Orchestration cost per child step of the first run (seconds): the parent's wall time for the step, the "
        "child's own work (from its run being owned to its end), and the difference: `mlflow run` (CLI process, "
        "run creation) plus the child's start-up (`sys.startup_s`: interpreter, imports, config and checks).",
        "",
        "| step | step wall | own work | overhead | of which child start-up |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {slug} | {wall:.1f} | {work:.1f} | {over:.1f} | {start:.1f} |"
              for slug, wall, work, start, over in steps]
    lines += ["", f"Median overhead per child step: {statistics.median(s[4] for s in steps):.1f} s; a reused step "
              f"costs {second / max(1, len(steps)):.2f} s of the cached rerun on average (composition, the cache "
              "lookup, and the parent's own start-up spread over its steps)."]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        from bench.results import write_section

        write_section("pipeline cache", section)
    sys.exit(0 if ratio <= TARGET else 1)


if __name__ == "__main__":
    main()
