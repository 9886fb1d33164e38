"""Does a challenge tell two models apart by the models, not by the moment? Two versions with the same weights
challenged against each other: every latency difference is the machine's noise, and every verdict but `tie` is a
wrong decision.

Side by side in one run, alternating: the challenge as it is (the timed calls split into `challenge.rounds` 5 rounds
that alternate which model goes first, each figure the median over the rounds) and the same with one round (all of
the candidate's calls, then all of the champion's: what comparing two separately measured records amounts to, minus
the days between them). Reported per
mode: the p50 and p95 ratios candidate / champion (median and worst distance from 1) and the verdicts. Target:
alternating rounds give no wrong verdict and a worst p95 distance within the 10 % latency tolerance.

    python bench/challenge_fidelity.py                 # 8 challenges per mode, 300 timed calls each
    python bench/challenge_fidelity.py --repeats 10 --runs 100

Results are printed and written to bench/RESULTS.md (section "challenge fidelity").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NAME = "demo.local-plant1.yard.ppe"
MODES = {"alternating, median of 5 rounds": 5, "one block each (1 round)": 1}


def twin_versions() -> None:
    """Version 1 (champion) and version 2 (candidate) with the same weights: one smoke training, registered twice."""
    import mlflow

    from gfcore.config import compose, to_typed
    from gfcore.jobs.train import train
    from gfcore.registry import lifecycle

    train(to_typed(compose(["scenario=smoke", "train.epochs=1"])))
    lifecycle.promote(NAME)
    client = mlflow.MlflowClient()
    first = client.get_model_version(NAME, "1")
    twin = client.create_model_version(NAME, first.source, run_id=first.run_id, tags=first.tags)
    client.set_registered_model_alias(NAME, "candidate", twin.version)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=8, help="challenges per mode")
    parser.add_argument("--runs", type=int, default=300, help="timed calls per model and challenge (challenge.runs)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gf-bench-challenge-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.environ.setdefault("GF_CACHE_DIR", str(work / "cache"))
    import mlflow

    from gfcore.automation.challenge import challenge

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    twin_versions()
    results: dict[str, list[tuple[float, float, str]]] = {m: [] for m in MODES}
    for i in range(args.repeats):
        for mode, rounds in (MODES.items() if i % 2 == 0 else reversed(MODES.items())):
            r = challenge(NAME, candidate="2", overrides=[f"challenge.rounds={rounds}", f"challenge.runs={args.runs}",
                                                          "latency.warmup=10", "infer.tracking.enabled=false"])
            cand, champ = r.figures["candidate"], r.figures["champion"]
            results[mode].append((cand["sys.latency_p50_ms"] / champ["sys.latency_p50_ms"],
                                  cand["sys.latency_p95_ms"] / champ["sys.latency_p95_ms"], r.verdict))
            print(f"{i + 1}/{args.repeats} {mode}: p50 ratio {results[mode][-1][0]:.3f}, p95 ratio "
                  f"{results[mode][-1][1]:.3f}, {r.verdict}", flush=True)
    write(results, args)


def write(results: dict[str, list[tuple[float, float, str]]], args: argparse.Namespace) -> None:
    from bench.results import write_section

    rows = []
    for mode, got in results.items():
        p50 = [abs(a - 1) for a, _, _ in got]
        p95 = [abs(b - 1) for _, b, _ in got]
        wrong = sum(v != "tie" for _, _, v in got)
        rows.append(f"| {mode} | {statistics.median(p50):.1%} | {max(p50):.1%} | {statistics.median(p95):.1%} | "
                    f"{max(p95):.1%} | {wrong} of {len(got)}{_which(got)} |")
    alternating = results["alternating, median of 5 rounds"]
    met = all(v == "tie" for *_, v in alternating) and max(abs(b - 1) for _, b, _ in alternating) <= 0.10
    section = "\n".join([
        "## challenge fidelity", "",
        f"Command: `python bench/challenge_fidelity.py --repeats {args.repeats} --runs {args.runs}` "
        f"({time.strftime('%Y-%m-%d')}, 2 CPU cores, no GPU). Two registered versions with the same weights (smoke, "
        f"imgsz 64) challenged against each other {args.repeats} times per mode, the modes alternating; "
        f"{args.runs} timed batch-1 calls per model after 10 warm-up. Any ratio away from 1 is the machine's noise, "
        "any verdict but `tie` a wrong decision (tolerances: det.mAP50 0.005, p95 latency 10 %).", "",
        "| mode | p50 ratio off 1, median | worst | p95 ratio off 1, median | worst | wrong verdicts |",
        "|---|--:|--:|--:|--:|---|", *rows, "",
        f"Target (alternating: no wrong verdict, worst p95 within 10 %): **{'met' if met else 'not met'}**.",
    ])
    write_section("challenge fidelity", section)
    print("\n" + section)


def _which(got: list[tuple[float, float, str]]) -> str:
    wrong = sorted({v for *_, v in got if v != "tie"})
    return f" ({', '.join(wrong)})" if wrong else ""


if __name__ == "__main__":
    main()
