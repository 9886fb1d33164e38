"""Does a challenge decide by the models, not by the moment or the luck of the draw? Three cases, each challenged
`--repeats` times, the cases taking turns so that the machine's load falls on all of them alike:

- twins: two registered versions with the same weights (the demo model): every verdict but `tie` is wrong;
- weaker: a model trained a few epochs, challenged against the demo model as champion: must be `worse`;
- stronger: the demo model challenged against that weak model as champion: must be `better`.

Every challenge runs as `guardianflow challenge` does on the demo scenario (alternating latency rounds, paired
bootstrap over the test images, default tolerances and resamples, tracking of the demo's 3 sequences). Also
measured: the bootstrap's share of each challenge's wall time.
Targets: twins tie 20 of 20, weaker worse 20 of 20, stronger better 20 of 20; the bootstrap adds at most 10 %.

    python bench/challenge_fidelity.py                 # 20 challenges per case, 300 timed calls per model
    python bench/challenge_fidelity.py --repeats 5 --weak-epochs 3

Results are printed and written to bench/RESULTS.md (section "challenge fidelity").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NAME = "demo.local-plant1.yard.ppe"
EXPECTED = {"twins": "tie", "weaker": "worse", "stronger": "better"}


def versions(weak_epochs: int) -> dict[str, tuple[str, str]]:
    """Train the demo model (v1) and a weak one (v3), register a twin of the demo model (v2); returns each case's
    (champion, candidate) versions."""
    import mlflow

    from gfcore.config import compose, to_typed
    from gfcore.jobs.train import train

    settings = ["scenario=demo", "infer.tracking.enabled=false", "tracking.system_metrics=false"]
    train(to_typed(compose(settings)))
    client = mlflow.MlflowClient()
    strong = client.get_model_version(NAME, "1")
    twin = client.create_model_version(NAME, strong.source, run_id=strong.run_id, tags=strong.tags)
    train(to_typed(compose([*settings, f"train.epochs={weak_epochs}"])))
    return {"twins": ("1", twin.version), "weaker": ("1", "3"), "stronger": ("3", "1")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="challenges per case")
    parser.add_argument("--runs", type=int, default=300, help="timed calls per model and challenge (challenge.runs)")
    parser.add_argument("--weak-epochs", type=int, default=5, help="epochs of the weak model")
    parser.add_argument("--tracking", choices=("true", "false"), default="true",
                        help="track the demo sequences too, as a challenge of the demo scenario does")
    parser.add_argument("--work", type=Path, help="a folder of an earlier run of this bench: its models are reused")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="gf-bench-challenge-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.environ.setdefault("GF_CACHE_DIR", str(work / "cache"))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import mlflow

    from gfcore.automation.challenge import challenge

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    if args.work:
        cases = {"twins": ("1", "2"), "weaker": ("1", "3"), "stronger": ("3", "1")}
    else:
        cases = versions(args.weak_epochs)
    client = mlflow.MlflowClient()
    got: dict[str, list[dict]] = {case: [] for case in cases}
    for i in range(args.repeats):
        for case, (champion, candidate) in (cases.items() if i % 2 == 0 else reversed(cases.items())):
            client.set_registered_model_alias(NAME, "champion", champion)
            r = challenge(NAME, candidate=candidate, overrides=[f"challenge.runs={args.runs}",
                                                                f"infer.tracking.enabled={args.tracking}"])
            m = r.intervals["det.mAP50"]
            got[case].append({"verdict": r.verdict, "p95": r.intervals["sys.latency_p95_ms"].point,
                              "p50": r.intervals["sys.latency_p50_ms"].point,
                              "map": m.point, "width": m.high - m.low, "mde": m.mde or 0.0,
                              "share": r.bootstrap_s / max(r.wall_s - r.bootstrap_s, 1e-9)})
            print(f"{i + 1}/{args.repeats} {case}: {r.verdict} (det.mAP50 {m.point:+.3f} [{m.low:+.3f}, "
                  f"{m.high:+.3f}], p50 x{got[case][-1]['p50']:.2f}, p95 x{got[case][-1]['p95']:.2f}; bootstrap {r.bootstrap_s:.1f} s of "
                  f"{r.wall_s:.0f} s)", flush=True)
    write(got, args)


def write(got: dict[str, list[dict]], args: argparse.Namespace) -> None:
    from bench.results import write_section

    rows, met = [], True
    for case, results in got.items():
        verdicts = Counter(r["verdict"] for r in results)
        right = verdicts[EXPECTED[case]]
        met &= right == len(results)
        shown = ", ".join(f"{v} {n}" for v, n in verdicts.most_common())
        rows.append(f"| {case} | {EXPECTED[case]} | **{right} of {len(results)}** ({shown}) | "
                    f"{statistics.median(r['map'] for r in results):+.3f} | "
                    f"{statistics.median(r['width'] for r in results):.3f} | "
                    f"{statistics.median(r['mde'] for r in results):.3f} | "
                    f"{max(abs(r['p50'] - 1) for r in results):.1%} | {max(abs(r['p95'] - 1) for r in results):.1%} |")
    shares = [r["share"] for results in got.values() for r in results]
    met &= max(shares) <= 0.10
    section = "\n".join([
        "## challenge fidelity", "",
        f"Command: `python bench/challenge_fidelity.py --repeats {args.repeats} --runs {args.runs} --weak-epochs "
        f"{args.weak_epochs} --tracking {args.tracking}` ({time.strftime('%Y-%m-%d')}, 2 CPU cores shared with other work, no GPU). The demo "
        f"model (30 epochs), a twin of it (same weights, another version) and a {args.weak_epochs}-epoch model of the "
        f"same scenario, challenged {args.repeats} times per case, the cases taking turns; default tolerances "
        "(det.mAP50 0.005, p50 latency 10 %, safety-class recall 0 for helmet and vest), 1000 bootstrap resamples over "
        f"the 60 test images, {args.runs} timed batch-1 calls per model in 5 alternating rounds, tracking "
        f"{'on (3 sequences)' if args.tracking == 'true' else 'off'}.", "",
        "| case | must be | right | det.mAP50 difference, median | its 95 % interval, median width | smallest "
        "detectable | worst p50 ratio off 1 | worst p95 ratio off 1 |",
        "|---|---|---|--:|--:|--:|--:|--:|", *rows, "",
        f"The bootstrap's share of a challenge's wall time: median {statistics.median(shares):.1%}, worst "
        f"{max(shares):.1%}.", "",
        "Earlier runs of this bench shaped the rule: reading p95 latency, whose 95 % interval spanned 0.74-1.38 on "
        "this machine under load, 16 of 20 stronger models came out `tie`; reading p50 with the calls resampled "
        "within rounds only, one stronger model came out `worse` (x1.19 [1.10, 1.22], load between rounds) and one "
        "`tie`. Now the verdict reads p50 (`challenge.latency_figure`), resamples rounds and then calls, and treats "
        "latency as a guardrail (clear differences decide; an unclear one does not hold back a clearly more "
        "accurate model).", "",
        f"Targets (every verdict right in every case; the bootstrap adds at most 10 %): **{'met' if met else 'not met'}**.",
    ])
    write_section("challenge fidelity", section)
    print("\n" + section)


if __name__ == "__main__":
    main()
