"""Server load: `--runs` concurrent simulated runs (one spawned process each) log one batch of 10 metrics per
"epoch" as fast as they can for `--seconds`, against the local stack (PostgreSQL, SeaweedFS, MLflow server with
basic auth, tests/stack/servers.py::local_stack). Two phases on the same stack, each in its own experiment:
plain MLflow calls (every epoch waits for its HTTP call) and GuardianFlow's journal (every epoch is appended to
local disk; each process's sender thread replays it to the server, one log-batch call per entry).

Per mode: log-batch HTTP calls completed per second (counted in each child around MLflow's http_request, so
the sender's replays count the same way as direct calls; during the window, and over window + drain for the
journal), p50/p95 of those calls as the client saw them, epochs per second the runs' work got done, and the
points read back from the server after the drain against the points logged (all of them must be there).

    python bench/server_load.py                          # 32 runs, 60 s per mode
    python bench/server_load.py --runs 8 --seconds 10    # a quick look
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NAMES = [f"load.m{i}" for i in range(10)]


def child(mode: str, index: int, exp_id: str, uri: str, seconds: float, drain_s: float, ready, go, start,
          out: str) -> None:
    """One simulated run: create it, wait for the common start, log epochs until the window closes."""
    import logging

    import mlflow
    from mlflow.entities import Metric
    from mlflow.utils import rest_utils

    logging.basicConfig(level=logging.WARNING, format=f"[{mode} {index}] %(message)s")
    calls: list[tuple[float, float]] = []  # (completed at, ms) per log-batch HTTP call, from any thread
    original = rest_utils.http_request

    def timed(host_creds, endpoint, method, *args, **kwargs):
        t = time.perf_counter()
        response = original(host_creds, endpoint, method, *args, **kwargs)
        if endpoint.endswith("/runs/log-batch"):
            calls.append((time.time(), 1000 * (time.perf_counter() - t)))
        return response

    rest_utils.http_request = timed  # call_endpoint looks it up in its module at each call
    client = mlflow.MlflowClient(uri)
    run_id = client.create_run(exp_id, run_name=f"{mode}-{index}").info.run_id
    applies: list[float] = []
    if mode == "journal":
        from gfcore.tracking import journal
        from gfcore.tracking.journal import sender

        apply = sender.apply  # what one replayed entry costs the sender beyond its HTTP call

        def timed_apply(*args):
            t = time.perf_counter()
            apply(*args)
            applies.append(1000 * (time.perf_counter() - t))

        sender.apply = timed_apply
        journal.begin(run_id, uri, exp_id)
    ready.put(index)
    go.wait()
    t0 = start.value
    time.sleep(max(0.0, t0 - time.time()))
    epochs, errors = 0, 0
    while time.time() < t0 + seconds:
        now = int(time.time() * 1000)
        try:
            client.log_batch(run_id, metrics=[Metric(k, epochs + i / 10, now, epochs) for i, k in enumerate(NAMES)])
            epochs += 1
        except Exception as exc:  # an overloaded server: count it, the run goes on (its epoch is not logged)
            errors += 1
            logging.warning("log_batch failed: %s", str(exc).splitlines()[0][:200])
    t_end, left, rejected = time.time(), 0, 0
    if mode == "journal":
        from gfcore.tracking.journal.store import Journal

        left = journal.finish(run_id, drain_s)
        kept = Journal.find(run_id)  # entries the server refused stay beside the journal (rejected.jsonl)
        rejected = len(kept.rejected()) if kept else 0
    Path(out, f"{mode}-{index}.json").write_text(json.dumps({
        "run_id": run_id, "epochs": epochs, "errors": errors, "calls": calls, "applies": applies, "left": left,
        "rejected": rejected, "t0": t0, "t_end": t_end, "t_drained": time.time()}))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def phase(mode: str, args, uri: str, out: Path) -> dict:
    import mlflow

    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment(f"bench/server-load/{mode}/{int(time.time())}")
    ctx = mp.get_context("spawn")
    ready, go, start = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    procs = [ctx.Process(target=child, args=(mode, i, exp_id, uri, args.seconds, args.drain_timeout, ready, go,
                                               start, str(out))) for i in range(args.runs)]
    for p in procs:
        p.start()
    for _ in procs:  # every child has imported MLflow and created its run: start them together
        ready.get(timeout=900)
    start.value = time.time() + 1.0
    go.set()
    for p in procs:
        p.join(timeout=args.seconds + args.drain_timeout + 300)
        assert p.exitcode == 0, f"a {mode} child failed (exit code {p.exitcode})"
    results = [json.loads((out / f"{mode}-{i}.json").read_text()) for i in range(args.runs)]
    t0 = results[0]["t0"]
    stored = sum(len(client.get_metric_history(r["run_id"], k)) for r in results for k in NAMES)
    calls = [c for r in results for c in r["calls"]]
    in_window = [ms for done, ms in calls if done <= t0 + args.seconds]
    last = max((done for done, _ in calls), default=t0)
    return {
        "mode": mode, "epochs": sum(r["epochs"] for r in results), "errors": sum(r["errors"] for r in results),
        "calls": len(calls), "rps_window": len(in_window) / args.seconds,
        "rps_all": len(calls) / max(last - t0, 1e-9), "p50": pct([ms for _, ms in calls], 0.5),
        "p95": pct([ms for _, ms in calls], 0.95), "apply_p50": pct([a for r in results for a in r["applies"]], 0.5),
        "drain_s": max(r["t_drained"] for r in results) - (t0 + args.seconds),
        "left": sum(r["left"] for r in results), "rejected": sum(r["rejected"] for r in results),
        "points": sum(r["epochs"] for r in results) * len(NAMES),
        "stored": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=32, help="concurrent simulated runs (processes)")
    parser.add_argument("--seconds", type=float, default=60, help="logging window per mode")
    parser.add_argument("--drain-timeout", type=float, default=1800, help="journal.finish timeout per run")
    parser.add_argument("--order", default="direct,journal", help="phases, in order")
    args = parser.parse_args()

    from tests.stack.servers import local_stack

    results = []
    with tempfile.TemporaryDirectory(prefix="gf-bench-load-") as tmp, local_stack() as stack:
        os.environ["GF_CACHE_DIR"] = str(Path(tmp) / "cache")  # the children's journals (spawn copies environ)
        os.environ.pop("MLFLOW_RUN_ID", None)
        for mode in args.order.split(","):
            results.append(phase(mode, args, stack["env"]["MLFLOW_TRACKING_URI"], Path(tmp)))
            print(f"{mode}: {results[-1]}", file=sys.stderr)

    rows = ["| mode | log-batch calls/s in the window | calls/s incl. drain | call p50 ms | call p95 ms | "
            "epochs/s (the work) | drain after window s | points logged | points read back | failed epochs |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in results:
        # Direct calls have no drain: their last ones only end late when the server made them wait.
        drain, rps_all = (f"{r['drain_s']:.1f}", f"{r['rps_all']:.1f}") if r["mode"] == "journal" else ("-", "-")
        rows.append(f"| {r['mode']} | {r['rps_window']:.1f} | {rps_all} | {r['p50']:.1f} | {r['p95']:.1f} | "
                    f"{r['epochs'] / args.seconds:.1f} | {drain} | {r['points']} | {r['stored']} | {r['errors']} |")
    by = {r["mode"]: r for r in results}
    lines = "\n".join(rows)
    if {"direct", "journal"} <= by.keys():
        j, d = by["journal"], by["direct"]
        lines += (f"\n\njournal / direct: epochs/s {j['epochs'] / max(d['epochs'], 1):.2f}x, server calls/s in the "
                  f"window {j['rps_window'] / max(d['rps_window'], 1e-9):.2f}x, call p50 {j['p50'] / d['p50']:.2f}x. "
                  f"Sender per replayed entry (apply) p50 {j['apply_p50']:.1f} ms; {j['left']} entries left after "
                  f"the drain, {j['rejected']} refused by the server. {args.runs} runs, {args.seconds:g} s per mode, "
                  f"order {args.order}.")
    print(lines)


if __name__ == "__main__":
    main()
