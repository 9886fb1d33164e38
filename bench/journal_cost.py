"""What logging one training epoch costs the training loop: through GuardianFlow's journal (append + fsync to
local disk, sent by a background thread) against a direct MLflow call (one HTTP round trip per epoch), against
a real MLflow server on loopback.

One epoch is one `log_batch` of `--metrics` metrics at step=epoch: the 14 names EpochLogger logs for a YOLO
detect run (val.mAP50 ..., train.box_loss ..., lr.pg0..2) padded with `train.extraN` names. The timed call is
what the loop runs (dict -> Metric objects -> MlflowClient.log_batch), measured in the caller's thread. Modes
alternate round by round so this shared machine's drift hits both alike; `--gap-ms` sleeps between epochs (a
real epoch lasts seconds: the sender replays in the gap, as in training; 0 makes it contend with the caller).
Afterwards the journal is drained (journal.finish) and both runs' histories are read back complete.

    python bench/journal_cost.py                       # sqlite-backed `mlflow server`, 10 rounds x 20 epochs
    python bench/journal_cost.py --stack --gap-ms 0    # PostgreSQL + SeaweedFS + basic auth (tests/stack)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def epoch_names(n: int) -> list[str]:
    """EpochLogger's names for one epoch (what gfcore.yolo.callbacks logs), padded to n."""
    from bench.logging_cost import epoch_trainer
    from gfcore.yolo.callbacks import EpochLogger

    seen: dict[str, float] = {}
    logger = EpochLogger(lambda metrics, step: seen.update(metrics))
    trainer = epoch_trainer(0)
    logger.on_train_epoch_end(trainer)
    logger.on_fit_epoch_end(trainer)
    names = sorted(seen)
    return (names + [f"train.extra{i}" for i in range(max(0, n - len(names)))])[:n]


def log_epoch(client, run_id: str, names: list[str], step: int) -> float:
    """One epoch's batch as the training loop logs it; the ms the caller waited."""
    from mlflow.entities import Metric

    start = time.perf_counter()
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, 1.0 / (step + 1 + i), now, step) for i, k in enumerate(names)])
    return 1000 * (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def read_back(client, run_id: str, names: list[str], steps: int) -> int:
    """Points stored for the run; asserts each metric has every step once."""
    total = 0
    for name in names:
        got = sorted(m.step for m in client.get_metric_history(run_id, name))
        assert got == list(range(steps)), f"run {run_id} {name}: {len(got)} of {steps} steps stored"
        total += len(got)
    return total


@contextmanager
def server(stack: bool, tmp: Path):
    """(tracking URI, description); MLFLOW_TRACKING_URI and credentials set in this process while in use."""
    if stack:
        from tests.stack.servers import local_stack

        with local_stack() as s:
            yield s["env"]["MLFLOW_TRACKING_URI"], "the local stack (PostgreSQL, SeaweedFS, MLflow with basic auth)"
        return
    from tests.stack.servers import free_port, serve_mlflow, stop

    port = free_port()
    proc = serve_mlflow(tmp, port)
    try:
        yield f"http://127.0.0.1:{port}", "`mlflow server` on sqlite, 1 worker"
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", action="store_true", help="the full local stack instead of a sqlite server")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per mode per round")
    parser.add_argument("--metrics", type=int, default=20, help="metrics per epoch")
    parser.add_argument("--gap-ms", type=float, default=100, help="sleep between epochs (the epoch's work)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed epochs per mode first")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gf-bench-journal-") as tmp:
        os.environ["GF_CACHE_DIR"] = str(Path(tmp) / "cache")  # journals go here, not the user's cache
        os.environ.pop("MLFLOW_RUN_ID", None)
        with server(args.stack, Path(tmp)) as (uri, where):
            import mlflow

            from gfcore.tracking import journal

            mlflow.set_tracking_uri(uri)
            client = mlflow.MlflowClient()
            exp = client.create_experiment(f"bench/journal-cost/{int(time.time())}")
            runs = {mode: client.create_run(exp, run_name=mode).info.run_id for mode in ("journal", "direct")}
            journal.begin(runs["journal"], uri, exp)
            names = epoch_names(args.metrics)
            times: dict[str, list[float]] = {"journal": [], "direct": []}
            step = {"journal": 0, "direct": 0}

            def epochs(mode: str, n: int, keep: bool) -> None:
                for _ in range(n):
                    ms = log_epoch(client, runs[mode], names, step[mode])
                    step[mode] += 1
                    if keep:
                        times[mode].append(ms)
                    if args.gap_ms:
                        time.sleep(args.gap_ms / 1000)

            for mode in times:
                epochs(mode, args.warmup, keep=False)
            for r in range(args.rounds):  # alternate which mode goes first
                for mode in (("journal", "direct") if r % 2 == 0 else ("direct", "journal")):
                    epochs(mode, args.epochs, keep=True)

            start = time.perf_counter()
            left = journal.finish(runs["journal"], timeout_s=300)
            drain_s = time.perf_counter() - start
            client.set_terminated(runs["journal"])
            client.set_terminated(runs["direct"])
            points = {mode: read_back(client, runs[mode], names, step[mode]) for mode in runs}

    rows = ["| mode | epochs timed | median ms | p95 ms | mean ms | max ms | points read back |",
            "|---|--:|--:|--:|--:|--:|--:|"]
    for mode, ts in times.items():
        rows.append(f"| {mode} | {len(ts)} | {statistics.median(ts):.2f} | {pct(ts, 0.95):.2f} | "
                    f"{statistics.mean(ts):.2f} | {max(ts):.2f} | {points[mode]} of {step[mode] * len(names)} |")
    j, d = times["journal"], times["direct"]
    summary = (f"journal / direct: median {statistics.median(j) / statistics.median(d):.3f}x, p95 "
               f"{pct(j, 0.95) / pct(d, 0.95):.3f}x, mean {statistics.mean(j) / statistics.mean(d):.3f}x "
               f"(target <= 1.05x). Journal drained {drain_s:.2f} s after the last epoch, {left} entries left. "
               f"Server: {where}; {len(names)} metrics per epoch, gap {args.gap_ms:g} ms, {args.rounds} "
               f"alternating rounds of {args.epochs} epochs per mode.")
    print("\n".join(rows) + "\n\n" + summary)


if __name__ == "__main__":
    main()
