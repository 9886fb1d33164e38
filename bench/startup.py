"""What a command costs before its work: `sys.startup_s` of train, quant and infer, and the wall time of the
registry / fleet commands, each beside the floor that MLflow and the deep-learning runtime set on this machine.

- start-up: `sys.startup_s` (process start to the run being owned: interpreter, imports, config composition,
  checks, the run's creation, its tags / params / config artifacts) of the smoke scenario's train, quant
  (onnx_fp32) and infer, each a fresh process; floor: a bare process that imports MLflow (and torch +
  Ultralytics, which train / quant / infer need for their checks) and starts a run in the same store, measured
  the same way (process age when the run exists).
- commands: wall time of `guardianflow models`, `versions NAME`, `metrics summary` on the small store the
  start-up runs leave; floor: a bare process that imports MLflow and lists the registered models.

Every round runs each side once, alternating, so noise on this shared machine hits both alike. With
`--baseline REV` the same commands also run from a git worktree of REV (the code before a change) in the same
rounds, so before and after are measured side by side.

    python bench/startup.py                       # 5 rounds
    python bench/startup.py --baseline ad43d87    # before / after a change, in one run
    python bench/startup.py --rounds 3 --no-write

Results are printed and written to bench/RESULTS.md (section "start-up").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STARTUP_TARGET_S = 2.0
COMMAND_TARGET_S = 1.5

# Process age as gfcore.tracking.run measures it, once a run exists in the store.
FLOOR_RUN = """
import os, sys
import mlflow
if sys.argv[1] == "torch":
    import torch, ultralytics
with mlflow.start_run(experiment_id=mlflow.set_experiment("startup-floor").experiment_id):
    stat = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
    uptime = float(open("/proc/uptime").read().split()[0])
    print(uptime - int(stat[19]) / os.sysconf("SC_CLK_TCK"))
"""
FLOOR_COMMAND = "import mlflow; mlflow.MlflowClient().search_registered_models()"


def run(cmd: list[str], env: dict[str, str], cwd: Path = REPO) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout


def newest_startup(exp_type: str) -> float:
    import mlflow

    [found] = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`exp.type` = '{exp_type}'",
                                 order_by=["attributes.start_time DESC"], max_results=1, output_format="list")
    return found.data.metrics["sys.startup_s"]


@contextlib.contextmanager
def worktree(rev: str | None, tmp: Path):
    """The code at `rev` in a temporary git worktree (`python -m` runs the code of its working folder)."""
    if rev is None:
        yield None
        return
    folder = tmp / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), rev], cwd=REPO, check=True,
                   capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=REPO, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", metavar="REV", help="also time the code at this git revision, side by side")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="gf-bench-startup-") as tmp, worktree(args.baseline, Path(tmp)) as base:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        env.pop("MLFLOW_RUN_ID", None)
        import mlflow

        mlflow.set_tracking_uri(uri)
        client = mlflow.MlflowClient()
        # Not timed: the store's tables, the demo data, Ultralytics' label cache, one trained smoke model.
        run([py, "-m", "guardianflow.train", "scenario=smoke", f"hydra.run.dir={tmp}/warm"], env)
        [trained] = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                       filter_string="tags.`exp.type` = 'train'")
        source = trained.info.run_id
        model = client.search_registered_models()[0].name
        entries = {
            "train": ["scenario=smoke"],
            "quant": ["scenario=smoke", f"quant.source_run_id={source}", "backend=onnx_fp32"],
            "infer": ["scenario=smoke", f"infer.source_run_id={source}"],
        }
        commands = {
            "guardianflow models": ["models"],
            f"guardianflow versions {model}": ["versions", model],
            "guardianflow metrics summary": ["metrics", "summary"],
        }
        sides = {"after": REPO, **({"before": base} if base else {})}
        times: dict[tuple[str, str], list[float]] = {}
        floors = {"floor: MLflow run": "none", "floor: + torch": "torch"}
        for r in range(args.rounds):
            for side, tree in sides.items():
                # The entry points' package (before 387aa5c: entrypoints/) as the tree has it.
                package = "guardianflow" if (tree / "guardianflow" / "train.py").exists() else "entrypoints"
                for entry, overrides in entries.items():
                    run([py, "-m", f"{package}.{entry}", *overrides, f"hydra.run.dir={tmp}/{side}{entry}{r}"], env,
                        tree)
                    times.setdefault((entry, side), []).append(newest_startup(entry))
                for label, argv in commands.items():
                    times.setdefault((label, side), []).append(run([py, "-m", "gfcore.cli", *argv], env, tree)[0])
            for label, extra in floors.items():
                times.setdefault((label, ""), []).append(float(run([py, "-c", FLOOR_RUN, extra], env)[1].split()[-1]))
            times.setdefault(("floor: MLflow client", ""), []).append(run([py, "-c", FLOOR_COMMAND], env)[0])
            print(f"round {r + 1}: " + ", ".join(f"{k} {s} {v[-1]:.2f}".replace("  ", " ") for (k, s), v in
                                                  times.items()), flush=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    floor, client_floor = med[("floor: + torch", "")], med[("floor: MLflow client", "")]

    def row(name: str, target: str, ok: bool, floor_s: float) -> str:
        after = med[(name, "after")]
        vs = f"{med[(name, 'before')]:.2f} | {after:.2f} | {after / med[(name, 'before')]:.2f}x" if base else ""
        return (f"| {name} | {vs or f'{after:.2f}'} | {target} ({'met' if ok else 'NOT met'}) | {floor_s:.2f} | "
                f"{after / floor_s:.2f}x |")

    before_head = f"before ({args.baseline}) | after | after / before" if base else "after"
    before_rule = "---|---|" if base else ""
    lines = [
        "## start-up",
        "",
        f"Command: `python bench/startup.py --rounds {args.rounds}"
        f"{f' --baseline {args.baseline}' if base else ''}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU "
        f"cores, no GPU, sqlite store). Medians of {args.rounds} rounds; each round runs every side once, each a "
        "fresh process.",
        "",
        f"| entry point (smoke): `sys.startup_s` | {before_head} | target | floor: bare MLflow run + torch / "
        "Ultralytics import | after / floor |",
        f"|---|{before_rule}---|---|---|---|",
        *[row(e, f"<= {STARTUP_TARGET_S}", med[(e, 'after')] <= STARTUP_TARGET_S, floor) for e in entries],
        "",
        f"Floors on the same store: a bare process that imports MLflow and starts a run: "
        f"{med[('floor: MLflow run', '')]:.2f} s; with torch + Ultralytics imported as well: {floor:.2f} s.",
        "",
        f"| command: wall s | {before_head} | target | floor: bare MLflow client listing models | "
        "after / floor |",
        f"|---|{before_rule}---|---|---|---|",
        *[row(c, f"< {COMMAND_TARGET_S}", med[(c, 'after')] < COMMAND_TARGET_S, client_floor) for c in commands],
    ]
    section = "\n".join(lines)
    print("\n" + section)
    if not args.no_write:
        from bench.results import write_section

        write_section("start-up", section)


if __name__ == "__main__":
    main()
