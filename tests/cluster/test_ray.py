"""Sweeps on Ray (`launcher=ray`): a two-job sweep on an existing Ray head started at 127.0.0.1, whose workers
get the jobs' environment only through runtime_env (they are not the sweep's children)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import run_entrypoint, runs_of
from tests.stack.servers import free_port

RAY = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")
# CI (GF_REQUIRE_CLUSTER=1) installs the `ray` extra: there a missing Ray fails instead of skipping.
needs_ray = pytest.mark.skipif(not os.path.exists(RAY) and not os.environ.get("GF_REQUIRE_CLUSTER"),
                                reason='needs Ray: pip install -e ".[ray]"')

FAST = ["scenario=smoke", "train.epochs=1", "registry.register=false", "tracking.system_metrics=false"]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """`ray start --head` on 127.0.0.1 with 2 CPUs, in a folder of its own; stopped afterwards."""
    port = free_port()
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    for key in [k for k in env if k.startswith(("MLFLOW_", "GF_"))]:
        env.pop(key)  # the head knows nothing of the sweep: what the jobs need must come through runtime_env
    subprocess.run([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                   env=env, check=True, capture_output=True, text=True, timeout=180)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


@needs_ray
def test_two_job_sweep_on_a_ray_head(ray_head, mlflow_store, tmp_path):
    proc = run_entrypoint(["guardianflow.sweep", *FAST, "launcher=ray", f"hydra.launcher.address={ray_head}",
                           "train.lr0=0.001,0.002", f"hydra.sweep.dir={tmp_path}/multirun"], mlflow_store, tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_of(mlflow_store)
    [parent] = [r for r in runs if r.data.tags["exp.type"] == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 2, "both jobs nested under the sweep's parent"
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.data.params["train.lr0"] for c in children} == {"0.001", "0.002"}
    assert parent.data.tags["best.run_id"] in {c.info.run_id for c in children}


def test_what_reaches_the_workers(monkeypatch, tmp_path):
    """The tracking URI made absolute (a worker's working directory is another), the driver's own run id left
    out, and no object store size when connecting to a cluster (Ray refuses it there)."""
    from gfcore.cluster import ray_jobs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    monkeypatch.setenv("MLFLOW_RUN_ID", "0" * 32)
    monkeypatch.setenv("GF_PARENT_RUN_ID", "1" * 32)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    env = ray_jobs.worker_env()
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/mlflow.db"
    assert env["GF_PARENT_RUN_ID"] == "1" * 32 and env["AWS_ACCESS_KEY_ID"] == "key" and "MLFLOW_RUN_ID" not in env
    assert ray_jobs.absolute_uri("http://mlflow:5000") == "http://mlflow:5000"
    connect = ray_jobs.init_args("10.0.0.1:6379", {"object_store_memory": 1, "namespace": "gf"}, env)
    assert connect["address"] == "10.0.0.1:6379" and "object_store_memory" not in connect
    assert connect["namespace"] == "gf" and connect["runtime_env"] == {"env_vars": env}
    local = ray_jobs.init_args(None, {}, env)
    assert "address" not in local and local["include_dashboard"] is False and local["object_store_memory"] > 0
