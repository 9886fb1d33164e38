"""A small fleet seeded through MLflow's own APIs, with figures the tests know: two sites, champions and candidates
with their version tags, a variant, runs over several days, a failed run, and a site without a model. Used on a
sqlite store (tests/fleet) and on the server stack (the Grafana panels' SQL)."""

from __future__ import annotations

import time

import mlflow
from mlflow.entities import Metric

DAY = 86_400_000
NOW = int(time.time() * 1000)


def _run(client, exp_id, days_ago, tags, metrics, status="FINISHED"):
    start = NOW - days_ago * DAY
    run = client.create_run(exp_id, start_time=start, tags=tags)
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, start, 0) for k, v in metrics.items()])
    client.set_terminated(run.info.run_id, status, end_time=start + 60_000)
    return run.info.run_id


def _site_tags(customer, zone, task, exp_type, **extra):
    return {"site.customer": customer, "site.region": "r", "site.plant": "p1", "site.zone": zone,
            "task.type": task, "exp.type": exp_type, "model.architecture": "yolov8n", **extra}


def _version(client, name, run_id, tags, aliases=()):
    customer, _, zone, task = name.split("__")[0].split(".")
    try:
        client.create_registered_model(name, tags={"site.customer": customer, "task.type": task,
                                                   "gf.path": f"{customer}/r-p1/{zone}/{task}"})
    except mlflow.exceptions.MlflowException:
        pass
    mv = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, tags=tags)
    for alias in aliases:
        client.set_registered_model_alias(name, alias, mv.version)
    return mv.version


def seed(client) -> dict[str, str]:
    """Two sites and three site models with known figures; returns the run ids the tests look up."""
    a = client.create_experiment("acme/r-p1/gate")
    b = client.create_experiment("beta/r-p1/dock")
    basis = {"eval.split": "test", "eval.dataset_digest": "d1"}
    # acme: v1 champion (trained 20 days ago), v2 candidate on the same basis, an OpenVINO variant champion.
    t1 = _run(client, a, 20, _site_tags("acme", "gate", "ppe", "train"), {"det.mAP50": 0.80, "det.mAP50_95": 0.50})
    t2 = _run(client, a, 2, _site_tags("acme", "gate", "ppe", "train"), {"det.mAP50": 0.85, "det.mAP50_95": 0.55})
    q1 = _run(client, a, 19, _site_tags("acme", "gate", "ppe", "quant", **{"backend.name": "openvino",
                                                                          "backend.precision": "int8"}),
              {"det.mAP50": 0.79, "sys.latency_p50_ms": 4.0})
    _run(client, a, 18, _site_tags("acme", "gate", "ppe", "infer", **{"source.run_id": q1, "backend.name": "openvino",
                                                                     "backend.precision": "int8"}),
         {"det.mAP50": 0.79, "mot.hota": 0.7, "mot.idf1": 0.75, "sys.latency_p50_ms": 4.2})
    _run(client, a, 1, _site_tags("acme", "gate", "ppe", "train"), {}, status="FAILED")
    _version(client, "acme.r-p1.gate.ppe", t1, {**basis, "det.mAP50": "0.8", "det.mAP50_95": "0.5",
                                               "sys.latency_p50_ms": "12.0"}, ["champion"])
    _version(client, "acme.r-p1.gate.ppe", t2, {**basis, "det.mAP50": "0.85", "det.mAP50_95": "0.55"}, ["candidate"])
    _version(client, "acme.r-p1.gate.ppe__openvino_int8", q1,
             {**basis, "det.mAP50": "0.79", "sys.latency_p50_ms": "4.0", "sys.latency_p95_ms": "4.5"}, ["champion"])
    # beta: a champion and a candidate measured on another split; a fire site with runs only.
    t3 = _run(client, b, 5, _site_tags("beta", "dock", "ppe", "train"), {"det.mAP50": 0.6, "det.mAP50_95": 0.3})
    t4 = _run(client, b, 3, _site_tags("beta", "dock", "ppe", "train"), {"det.mAP50": 0.7, "det.mAP50_95": 0.35})
    _version(client, "beta.r-p1.dock.ppe", t3, {**basis, "det.mAP50": "0.6"}, ["champion"])
    _version(client, "beta.r-p1.dock.ppe", t4, {"eval.split": "val", "eval.dataset_digest": "d1"}, ["candidate"])
    _run(client, b, 4, _site_tags("beta", "dock", "fire", "train"), {"det.mAP50": 0.4})
    _run(client, b, 60, _site_tags("beta", "dock", "fire", "train"), {"det.mAP50": 0.3})
    return {"t1": t1, "t2": t2, "q1": q1}
