"""Fleet queries at scale: a realistic fleet seeded straight through MLflow's batch APIs at 1,000 and 10,000 runs,
into a sqlite store and into the local stack, and `metrics summary`, `metrics trend` and `metrics export` timed on
each.

The fleet: 30 sites x 3 tasks (90 site models), runs at a steady fleet-wide rate (8 a day, about 2,900 a year), so
10,000 runs are about 3.4 years of history and 1,000 runs the last 4 months. Runs are train (20-epoch histories of
5 metrics, headline det.* and latency), quant (OpenVINO int8, ONNX fp16), infer (latency; tracking on half) and 3 %
failed. Each site model registers its last 10 trainings (champion: the one before the last; candidate: the last)
and its last 3 quantizations per variant (champion: the newest), with the version tags train and quant write.

    python bench/fleet_scale.py                              # 1k and 10k, sqlite and the local stack
    python bench/fleet_scale.py --sizes 1000 --stores sqlite --rounds 1

Timed in-process (the queries, not the interpreter start-up, which `python -X importtime` and
bench/RESULTS.md "CLI start-up" cover): summary (default --days 30), trend (default --days 90, and over the whole
history: --days 3650), export (runs.parquet; --history at 1,000 runs only, it reads every history by design).
Results are printed and written to bench/RESULTS.md (section "fleet scale").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DAY_MS = 86_400_000
RATE_PER_DAY = 8
CUSTOMERS = ["acme", "beta", "gamma", "delta", "omega", "nova"]
TASKS = ["ppe", "fall", "fire"]
VARIANTS = [("openvino", "int8"), ("onnx", "fp16")]
EPOCHS = 20


def sites() -> list[str]:
    return [f"{c}/eu-plant{p}/zone{p}" for c in CUSTOMERS for p in range(1, 6)]


def seed(n_runs: int, store_uri: str | None = None, rng: random.Random | None = None) -> dict[str, int]:
    """Seed `n_runs` runs and the registered models through MLflow's client on `store_uri` (default: the tracking
    URI); returns what was written."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    rng = rng or random.Random(7)
    client = mlflow.MlflowClient(store_uri, store_uri)
    experiments = {s: client.create_experiment(s) for s in sites()}
    now = int(time.time() * 1000)
    plan = []
    for i in range(n_runs):
        site, task = rng.choice(list(experiments)), rng.choice(TASKS)
        start = now - int((n_runs - i) / RATE_PER_DAY * DAY_MS) - rng.randint(0, 3_600_000)
        kind = rng.choices(["train", "quant", "infer"], [0.4, 0.3, 0.3])[0]
        plan.append((i, site, task, kind, start, "FAILED" if rng.random() < 0.03 else "FINISHED"))

    def one(item: tuple) -> tuple[str, str, str, str, str, dict[str, float]]:
        i, site, task, kind, start, status = item
        customer, region_plant, zone = site.split("/")
        r = random.Random(i)
        backend, precision = ("pytorch", "fp32") if kind == "train" else r.choice(VARIANTS)
        tags = {"site.customer": customer, "site.region": region_plant.split("-")[0], "site.plant":
                region_plant.split("-")[1], "site.zone": zone, "task.type": task, "exp.type": kind,
                "model.architecture": r.choice(["yolov8n", "yolov8s", "yolo11n"]), "backend.name": backend,
                "backend.precision": precision, "eval.split": "test", "eval.dataset_digest": "d%02d" % (i // 2000),
                "mlflow.runName": f"{task}-{kind}-{i}"}
        run = client.create_run(experiments[site], start_time=start, tags=tags)
        run_id, metrics = run.info.run_id, {}
        history: list[Metric] = []
        if status == "FINISHED":
            quality = 0.55 + 0.35 * r.random()
            metrics = {"det.mAP50": quality, "det.mAP50_95": quality * 0.62,
                       "sys.latency_p50_ms": r.uniform(3, 40), "sys.model_size_mb": r.uniform(3, 25)}
            metrics["sys.latency_p95_ms"] = metrics["sys.latency_p50_ms"] * 1.2
            if kind == "infer" and r.random() < 0.5:
                metrics.update({"mot.hota": r.uniform(0.4, 0.8), "mot.idf1": r.uniform(0.4, 0.85)})
            if kind == "train":
                for e in range(1, EPOCHS + 1):
                    t = start + e * 30_000
                    history += [Metric("val.mAP50", quality * e / EPOCHS, t, e),
                                Metric("val.mAP50_95", quality * 0.62 * e / EPOCHS, t, e),
                                Metric("train.box_loss", 2.0 - e / EPOCHS, t, e),
                                Metric("train.cls_loss", 3.0 - 1.5 * e / EPOCHS, t, e),
                                Metric("lr.pg0", 0.01 * (1 - e / EPOCHS), t, e)]
        end = start + (EPOCHS * 30_000 if kind == "train" else 60_000)
        client.log_batch(run_id, metrics=[Metric(k, v, end, 0) for k, v in metrics.items()] + history,
                         params=[Param("train.epochs", str(EPOCHS)), Param("data.imgsz", "640")],
                         tags=[RunTag("gf.error", "CUDA out of memory")] if status == "FAILED" else [])
        client.set_terminated(run_id, status, end_time=end)
        return site, task, kind, f"{backend}_{precision}", run_id, metrics

    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(one, plan))

    versions = 0
    by_model: dict[str, list[tuple[str, dict[str, float]]]] = {}
    for site, task, kind, variant, run_id, metrics in done:
        if not metrics or kind == "infer":
            continue
        base = f"{site.replace('/', '.')}.{task}"
        by_model.setdefault(base if kind == "train" else f"{base}__{variant}", []).append((run_id, metrics))
    for name, runs in sorted(by_model.items()):
        base, _, variant = name.partition("__")
        keep = runs[-(3 if variant else 10):]
        task = base.rsplit(".", 1)[1]
        client.create_registered_model(name, tags={"site.customer": name.split(".")[0], "task.type": task,
                                                   "gf.path": base.replace(".", "/", 2).rsplit(".", 1)[0] + "/" + task})
        numbers = []
        for run_id, metrics in keep:
            tags = {k: f"{v:.6g}" for k, v in metrics.items() if k.startswith(("det.", "sys."))}
            tags.update({"eval.split": "test", "eval.dataset_digest": "d00"})
            numbers.append(client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, tags=tags).version)
            versions += 1
        if variant:
            client.set_registered_model_alias(name, "champion", numbers[-1])
        else:
            client.set_registered_model_alias(name, "champion", numbers[-2] if len(numbers) > 1 else numbers[-1])
            if len(numbers) > 1:
                client.set_registered_model_alias(name, "candidate", numbers[-1])
    return {"runs": len(done), "registered_models": len(by_model), "versions": versions}


def timed(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(rounds: int, out: Path, history: bool) -> dict[str, float]:
    from gfcore.fleet import queries, trends
    from gfcore.fleet.export import export

    figures = {"summary": timed(lambda: queries.summary(), rounds),
               "trend (90 days)": timed(lambda: trends.trend("det.mAP50"), rounds),
               "trend (all)": timed(lambda: trends.trend("det.mAP50", days=3650), rounds),
               "export": timed(lambda: export(out, "parquet"), rounds)}
    if history:
        figures["export --history"] = timed(lambda: export(out, "parquet", history=True), 1)
    rows = queries.summary()
    assert len([r for r in rows if r.champion]) >= 80, f"{len(rows)} summary rows"  # the fleet is there
    return figures


@contextmanager
def store(kind: str):
    """A fresh, empty store of `kind`: (the URI to seed through, what the queries use)."""
    import mlflow

    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="gf-bench-fleet-") as tmp:
            uri = f"sqlite:///{tmp}/mlflow.db"
            with mock.patch.dict(os.environ, {"MLFLOW_TRACKING_URI": uri}):
                mlflow.set_tracking_uri(uri)
                yield uri, "sqlite file"
        return
    from bench.logging_cost import STACK, temporary_stack
    from gfcore.stack import local

    with temporary_stack() as (folder, env):
        secret, ports = local.load_secrets(folder), json.loads((folder / "run" / "ports.json").read_text())
        # Seeding goes through MLflow's store on the stack's PostgreSQL (what the server itself runs), not 30,000
        # HTTP requests; the queries go through the server, as a user's do.
        db = f"postgresql://mlflow:{secret['MLFLOW_DB_PASSWORD']}@127.0.0.1:{ports['postgres']}/mlflow"
        mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
        yield db, STACK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "stack"], default=["sqlite", "stack"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md as it is")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

    results: dict[tuple[str, int], dict[str, float]] = {}
    seeded: dict[tuple[str, int], str] = {}
    for kind in args.stores:
        for n in args.sizes:
            with store(kind) as (seed_uri, what), tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                written = seed(n, seed_uri)
                seeded[(kind, n)] = (f"{written['runs']} runs, {written['registered_models']} registered models, "
                                     f"{written['versions']} versions, seeded in {time.perf_counter() - t0:.0f} s")
                print(f"{kind} {n}: {seeded[(kind, n)]} ({what})", flush=True)
                results[(kind, n)] = measure(args.rounds, Path(out), history=n <= 1000)
                print("   " + ", ".join(f"{k} {v:.2f} s" for k, v in results[(kind, n)].items()), flush=True)
    section = report(results, seeded, args)
    print(section)
    if not args.no_write:
        from bench.results import write_section

        write_section("fleet scale", section)


def report(results: dict, seeded: dict, args: argparse.Namespace) -> str:
    small, large = min(args.sizes), max(args.sizes)
    lines = ["## fleet scale", "",
             f"`python bench/fleet_scale.py --sizes {' '.join(map(str, args.sizes))} --stores {' '.join(args.stores)} "
             f"--rounds {args.rounds}` ({time.strftime('%Y-%m-%d')}, 2 CPU cores; median of {args.rounds}, "
             "seconds, in-process: the queries without the interpreter's start-up).", ""]
    for (kind, n), text in seeded.items():
        lines.append(f"- {kind}, {n} runs: {text}")
    names = list(next(iter(results.values())))
    lines += ["", "| store | runs | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for (kind, n), figures in results.items():
        lines.append(f"| {kind} | {n} | " + " | ".join(f"{figures[k]:.2f}" if k in figures else "-" for k in names)
                     + " |")
    if small != large:
        lines += ["", f"Growth from {small} to {large} runs ({large // small}x the runs):", ""]
        for kind in args.stores:
            a, b = results.get((kind, small)), results.get((kind, large))
            if a and b:
                lines.append(f"- {kind}: " + ", ".join(f"{k} {b[k] / a[k]:.2f}x" for k in b if k in a))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
