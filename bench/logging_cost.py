"""Logging cost against the tracking server: a 100-epoch training history logged through GuardianFlow (one
batched request per epoch, the path training uses: EpochLogger -> OwnedRun.log_metrics) against the same
history logged one metric per call (`mlflow.log_metric`), side by side in alternating rounds.

By default it brings up the stack as local processes (PostgreSQL, SeaweedFS, the MLflow server with basic
auth) in a temporary folder and stops it afterwards; `--uri` uses a server that is already running (with
MLFLOW_TRACKING_USERNAME / PASSWORD from the environment).

    python bench/logging_cost.py                    # 100 epochs, 3 rounds, temporary local stack
    python bench/logging_cost.py --uri http://127.0.0.1:15000 --epochs 100 --rounds 5

Results are printed and written to bench/RESULTS.md (section "logging cost").
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
from types import SimpleNamespace
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def epoch_trainer(epoch: int) -> SimpleNamespace:
    """What Ultralytics' trainer holds at `on_fit_epoch_end`, with the keys a YOLO detect run has."""
    decay = 1 / (1 + epoch)
    metrics = {"metrics/precision(B)": 0.9 - decay / 2, "metrics/recall(B)": 0.85 - decay / 2,
               "metrics/mAP50(B)": 0.9 - decay / 3, "metrics/mAP50-95(B)": 0.6 - decay / 4,
               "val/box_loss": 1 + decay, "val/cls_loss": 1.5 + decay, "val/dfl_loss": 1.1 + decay}
    tloss = [1.2 + decay, 1.8 + decay, 1.0 + decay]
    return SimpleNamespace(
        epoch=epoch, metrics=metrics, tloss=tloss, lr={f"lr/pg{i}": 0.01 * decay for i in range(3)},
        label_loss_items=lambda loss, prefix: {f"{prefix}/{k}": v for k, v in zip(("box_loss", "cls_loss",
                                                                                     "dfl_loss"), loss)})


@contextmanager
def counting_requests():
    """Count the REST calls MLflow's client makes (each one HTTP request, retries aside)."""
    from mlflow.utils import rest_utils

    original, count = rest_utils.http_request, [0]

    def counted(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    rest_utils.http_request = counted
    try:
        yield count
    finally:
        rest_utils.http_request = original


def through_guardianflow(experiment_id: str, epochs: int) -> tuple[str, float, int]:
    import mlflow

    from gfcore.tracking.run import OwnedRun
    from gfcore.yolo.callbacks import EpochLogger

    with mlflow.start_run(experiment_id=experiment_id, run_name="guardianflow") as active:
        run = OwnedRun(active.info.run_id, experiment_id)
        logger = EpochLogger(run.log_metrics)
        with counting_requests() as count:
            start = time.perf_counter()
            for epoch in range(epochs):
                trainer = epoch_trainer(epoch)
                logger.on_train_epoch_end(trainer)
                logger.on_fit_epoch_end(trainer)
            wall = time.perf_counter() - start
    return active.info.run_id, wall, count[0]


def one_metric_per_call(experiment_id: str, epochs: int) -> tuple[str, float, int]:
    import mlflow

    from gfcore.yolo.callbacks import detection_metrics, loss_metrics

    with mlflow.start_run(experiment_id=experiment_id, run_name="one-per-call") as active:
        with counting_requests() as count:
            start = time.perf_counter()
            for epoch in range(epochs):
                t = epoch_trainer(epoch)
                values = {**detection_metrics(t.metrics), **loss_metrics(t.label_loss_items(t.tloss, "train")),
                          **loss_metrics(t.metrics), **loss_metrics(t.lr)}
                for name, value in values.items():
                    mlflow.log_metric(name, value, step=epoch + 1)
            wall = time.perf_counter() - start
    return active.info.run_id, wall, count[0]


def check_history(run_id: str, epochs: int) -> int:
    """Both ways store the same history: every metric at every epoch; the number of metrics per epoch."""
    import mlflow

    client = mlflow.MlflowClient()
    names = list(client.get_run(run_id).data.metrics)
    for name in names:
        steps = [m.step for m in client.get_metric_history(run_id, name)]
        assert sorted(steps) == list(range(1, epochs + 1)), f"{name}: {len(steps)} of {epochs} epochs stored"
    return len(names)


def request_floor(uri: str, n: int = 10) -> tuple[float, float]:
    """Median ms of one unauthenticated /health and of one authenticated API read: what any request costs."""
    import requests

    auth = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) \
        if os.environ.get("MLFLOW_TRACKING_USERNAME") else None
    out = []
    for url, a in ((f"{uri}/health", None), (f"{uri}/api/2.0/mlflow/experiments/search?max_results=1", auth)):
        times = []
        for _ in range(n):
            start = time.perf_counter()
            requests.get(url, auth=a, timeout=30).raise_for_status()
            times.append(1000 * (time.perf_counter() - start))
        out.append(statistics.median(times))
    return out[0], out[1]


STACK = "`guardianflow stack` on 127.0.0.1 (PostgreSQL, SeaweedFS, MLflow server with basic auth, 2 workers)"


@contextmanager
def temporary_stack():
    """A local stack in a temporary folder, its client environment set while in use: (folder, env)."""
    from gfcore.stack import local

    with tempfile.TemporaryDirectory(prefix="gf-bench-stack-", dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)  # PostgreSQL runs as its own user and must reach its data folder
        folder = Path(tmp) / "stack"
        env = local.up(folder)
        try:
            with mock.patch.dict(os.environ, env):  # restored afterwards
                yield folder, env
        finally:
            local.down(folder, purge=True)


@contextmanager
def tracking_server(uri: str | None):
    if uri:
        yield uri, "a running server (--uri)"
        return
    with temporary_stack() as (_, env):
        yield env["MLFLOW_TRACKING_URI"], STACK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", help="a running MLflow server; default: a temporary local stack")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import mlflow

    from gfcore.tracking.server import check_tracking_store

    with tracking_server(args.uri) as (uri, where):
        mlflow.set_tracking_uri(uri)
        check_tracking_store()
        experiment_id = mlflow.create_experiment(f"bench/logging-cost/{int(time.time())}")
        gf, single = [], []
        for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both alike
            gf.append(through_guardianflow(experiment_id, args.epochs))
            single.append(one_metric_per_call(experiment_id, args.epochs))
        per_epoch = check_history(gf[-1][0], args.epochs)
        assert check_history(single[-1][0], args.epochs) == per_epoch
        health_ms, api_ms = request_floor(uri)

    gf_s, single_s = statistics.median(w for _, w, _ in gf), statistics.median(w for _, w, _ in single)
    gf_req, single_req = gf[-1][2], single[-1][2]
    ratio = single_s / gf_s
    lines = [
        "| way | requests (per epoch) | median wall for the history | per epoch |",
        "| --- | --- | --- | --- |",
        (f"| GuardianFlow (one batched request per epoch) | {gf_req} ({gf_req / args.epochs:g}) | {gf_s:.2f} s | "
         f"{1000 * gf_s / args.epochs:.1f} ms |"),
        (f"| one metric per call (`mlflow.log_metric`) | {single_req} ({single_req / args.epochs:g}) | "
         f"{single_s:.2f} s | {1000 * single_s / args.epochs:.1f} ms |"),
    ]
    rounds = f"median of {args.rounds} alternating rounds" if args.rounds > 1 else "one round of each"
    summary = (f"One metric per call takes {ratio:.1f}x as long as GuardianFlow's batched logging "
               f"({per_epoch} metrics per epoch, {args.epochs} epochs, {rounds}). What any request costs on this "
               f"server: {api_ms:.0f} ms for an API read with credentials, {health_ms:.0f} ms for /health without "
               "(median of 10 each).")
    print("\n".join(lines) + "\n\n" + summary)
    if not args.no_write:
        from bench.results import write_section

        cmd = "python bench/logging_cost.py" + ("" if args.epochs == 100 and args.rounds == 3 else
                                                 f" --epochs {args.epochs} --rounds {args.rounds}")
        write_section("logging cost", "\n".join([
            "## logging cost", "",
            f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')}, 2 CPU cores, no GPU).",
            (f"A {args.epochs}-epoch training history ({per_epoch} metrics per epoch, the names a YOLO detect run "
             f"logs) against {where}; both histories are read back complete."), "",
            *lines, "", summary]))


if __name__ == "__main__":
    main()
