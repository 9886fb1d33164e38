"""`guardianflow optimize`: triggers that fire exactly when they should, real smoke actions launched as `mlflow run`
(quant + infer, challenge, sweep, promote with auto_promote), cooldowns kept in MLflow, `run` acting only once
confirmed (a terminal's `y` or --yes), and a sweep making only its best trial the candidate."""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

import mlflow
import pytest

from gfcore import cli
from gfcore.automation import launcher, optimize
from gfcore.core.vocabulary import (
    AUTOMATION_LAUNCHED,
    AUTOMATION_MODEL,
    AUTOMATION_OPTIMIZE_RUN_ID,
    AUTOMATION_TRIGGER,
    SWEEP_BEST_OF,
    SWEEP_PID,
    SWEEP_TRIAL_OF,
)
from tests.conftest import smoke_versions

NAME = "demo.local-plant1.yard.ppe"
SITE = "demo/local-plant1/yard"
# The champion is "slow" (a budget no model meets) and, with threshold 1.01, "inaccurate"; onnx_fp32 is the
# quickest export to launch.
FIRE = [f"+budgets_ms={{{SITE}: 0.001}}", "target_backend=onnx_fp32", "triggers.low_accuracy.threshold=1.01",
        "triggers.low_accuracy.trials=3"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Champion v1 and candidate v2 of the demo model (smoke, one epoch each). v2's scenario judges it with wide
    tolerances: the verdict between two one-epoch models timed 10 times is the machine's noise, and this test is
    about what automation does with a verdict that is not `worse` (tests/automation/test_challenge.py measures)."""
    wide = ["challenge.map_tolerance=1", "challenge.hota_tolerance=1", "challenge.latency_tolerance=100"]
    with smoke_versions(tmp_path_factory, "optimize", seeds=(0, 1), promote_first=True, later=wide) as uri:
        yield uri


class _Terminal(io.StringIO):
    """stdin as a person at a terminal who types `answer`."""

    def isatty(self):
        return True


def _optimize(capsys, mode, *args):
    code = cli.main(["optimize", mode, "--json", *args, *(["--yes"] if mode == "run" else [])])
    out = json.loads(capsys.readouterr().out)
    return code, {(d["trigger"], d["model"]): d for d in out["decisions"]}, out["run_id"]


def _site_runs():
    exp = mlflow.get_experiment_by_name(SITE)
    return mlflow.MlflowClient().search_runs([exp.experiment_id], max_results=1000)


def _aliases(name=NAME):
    return {k: str(v) for k, v in mlflow.MlflowClient().get_registered_model(name).aliases.items()}


def _records():
    exp = mlflow.get_experiment_by_name(optimize.EXPERIMENT)
    return mlflow.MlflowClient().search_runs([exp.experiment_id]) if exp else []


def test_run_acts_only_when_confirmed(store, capsys, monkeypatch):
    """`optimize run` prints its plan first; without a terminal and without --yes it acts on nothing (exit 2, for a
    cron line missing --yes), at a terminal it asks, and `n` (or nothing) declines; an unknown --model is an error
    with a did-you-mean, not "nothing fired"."""
    runs, records = len(_site_runs()), len(_records())
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # cron: no terminal
    assert cli.main(["optimize", "run", *FIRE]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("plan:\n") and "mlflow run -e sweep" in out and "mlflow run -e quant, then -e infer" in out
    assert "would run" in out and "guardianflow: not run: pass --yes to act (for cron)" in err
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert cli.main(["optimize", "run", *FIRE]) == 0
    out, err = capsys.readouterr()
    assert "plan:" in out and "Go ahead? [y/N]" in err and "not run: declined" in err
    assert (len(_site_runs()), len(_records())) == (runs, records), "a plan launches and records nothing"

    for mode in ("check", "run"):
        assert cli.main(["optimize", mode, "--model", NAME[:-1]]) == 2
        err = capsys.readouterr().err
        assert f"no registered model named '{NAME[:-1]}' (did you mean {NAME}?)" in err, err
        assert "`guardianflow models` lists the registered models" in err


def test_check_run_and_cooldown(store, capsys, monkeypatch):
    client = mlflow.MlflowClient()
    champion_run = client.get_model_version(NAME, "1").run_id
    before = len(_site_runs())

    # check: what fires, and what must not (the data is unchanged, there is no GPU figure, no challenge yet).
    code, fired, run_id = _optimize(capsys, "check", *FIRE)
    assert code == 0 and set(fired) == {("low_accuracy", NAME), ("high_latency", NAME), ("new_candidate", NAME)}
    assert fired[("new_candidate", NAME)]["version"] == "2" and fired[("high_latency", NAME)]["version"] == "1"
    assert all(d["status"] == "would run" for d in fired.values()) and len(_site_runs()) == before
    record = client.get_run(run_id)
    assert record.info.status == "FINISHED" and record.info.run_name == "optimize-check-3-fired-0-launched"
    assert "| high_latency | demo.local-plant1.yard.ppe | 1 |" in record.data.tags["mlflow.note.content"]
    assert set(_optimize(capsys, "check")[1]) == {("low_accuracy", NAME), ("new_candidate", NAME)}, \
        "the demo site sets no latency budget: no high_latency (a one-epoch model is below 0.75 mAP50)"
    assert set(_optimize(capsys, "check", "triggers.low_accuracy.threshold=0")[1]) == {("new_candidate", NAME)}

    # run, confirmed at a terminal: quant + infer of the champion and the candidate's challenge, launched as tagged
    # `mlflow run`s.
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    code = cli.main(["optimize", "run", "--json", *FIRE, "+triggers.low_accuracy.enabled=false"])
    out, err = capsys.readouterr()
    assert "Go ahead? [y/N]" in err and "mlflow run -e challenge" in err, "the plan, on stderr beside --json"
    out = json.loads(out)
    fired, run_id = {(d["trigger"], d["model"]): d for d in out["decisions"]}, out["run_id"]
    assert code == 0, fired
    slow, new = fired[("high_latency", NAME)], fired[("new_candidate", NAME)]
    assert slow["status"] == "launched" and new["status"] == "launched"
    quant, infer = (client.get_run(r) for r in slow["runs"])
    assert quant.data.tags["exp.type"] == "quant" and quant.data.tags["source.run_id"] == champion_run
    assert quant.data.params["backend.name"] == "onnx" and quant.data.params["scenario"] == "smoke"
    assert shlex.split(quant.data.params["overrides"])[0].split() == ["++train.epochs=1", "backend=onnx_fp32",
                                                      f"quant.source_run_id={champion_run}"], \
        "the champion's scenario is carried over: what differs from its preset today"
    assert infer.data.tags["exp.type"] == "infer" and infer.data.tags["source.run_id"] == quant.info.run_id
    for r in (quant, infer):
        assert r.info.status == "FINISHED" and r.data.tags[AUTOMATION_TRIGGER] == "high_latency"
        assert r.data.tags[AUTOMATION_OPTIMIZE_RUN_ID] == run_id and r.data.tags["mlflow.project.entryPoint"] in ("quant", "infer")
    [challenge] = (client.get_run(r) for r in new["runs"])
    assert challenge.data.tags["exp.type"] == "challenge"
    assert challenge.data.tags[AUTOMATION_TRIGGER] == "new_candidate"
    assert client.get_model_version(NAME, "2").tags["challenge.run_id"] == challenge.info.run_id
    assert client.get_model_version(NAME, "2").tags["challenge.verdict"] in ("better", "tie"), "wide tolerances"
    assert client.get_run(run_id).data.metrics["automation.launched"] == 3

    # run with auto_promote: the challenged candidate is promoted, the sweep (3 trials) and the variant's challenge
    # launch, the quantization (same trigger, same model) is in its cooldown.
    code, fired, run_id = _optimize(capsys, "run", *FIRE, "auto_promote=true", "gates=['det.mAP50>=champion-1']")
    variant = f"{NAME}__onnx_fp32"
    assert code == 0, fired
    assert fired[("challenger_passes", NAME)]["status"] == "promoted" and _aliases()["champion"] == "2"
    assert client.get_model_version(NAME, "2").tags["gf.gates"] == "det.mAP50>=champion-1"
    assert fired[("high_latency", NAME)]["status"].startswith("skipped: cooldown")
    assert fired[("new_candidate", variant)]["status"] == "launched"
    [sweep] = (client.get_run(r) for r in fired[("low_accuracy", NAME)]["runs"])
    assert sweep.info.status == "FINISHED" and sweep.data.tags["exp.type"] == "sweep"
    children = client.search_runs([sweep.info.experiment_id], f"tags.`mlflow.parentRunId` = '{sweep.info.run_id}'")
    assert len(children) == 3, "three Optuna trials"
    # Only the best trial (by sweep.metric) is the candidate; every trial registered its version, without an alias.
    metric = sweep.data.tags["gf.sweep.metric"]
    best = client.get_run(sweep.data.tags["best.run_id"])
    assert best.data.metrics[metric] == max(c.data.metrics[metric] for c in children)
    versions = {c.info.run_id: client.get_model_version(NAME, c.data.tags["gf.registered_version"]) for c in children}
    assert all(v.tags[SWEEP_TRIAL_OF] == sweep.info.run_id for v in versions.values())
    chosen = versions[best.info.run_id]
    assert _aliases()["candidate"] == str(chosen.version) and chosen.tags[SWEEP_BEST_OF] == sweep.info.run_id
    assert best.data.tags[SWEEP_BEST_OF] == sweep.info.run_id
    assert all(not v.aliases and SWEEP_BEST_OF not in v.tags for r, v in versions.items() if r != best.info.run_id)
    assert f"{NAME} version {chosen.version} is now `candidate`." in sweep.data.tags["mlflow.note.content"]

    # Inside the cooldown a second run launches nothing (and without auto_promote promotes nothing).
    before = len(_site_runs())
    code, fired, _ = _optimize(capsys, "run", *FIRE)
    assert fired and all(d["status"].startswith("skipped") for d in fired.values()), fired
    assert not any(d["runs"] for d in fired.values()) and len(_site_runs()) == before
    assert fired[("challenger_passes", variant)]["status"].startswith("skipped: automation.auto_promote is false")
    assert _aliases(variant) == {"candidate": "1"}


def test_data_and_gpu_triggers(store, capsys):
    """data_changed fires when the champion's data hashes differently now and no candidate was trained on the new
    data; low_gpu_utilization when the champion's latest infer run kept the GPU under `pct`."""
    client = mlflow.MlflowClient()
    champion = client.get_model_version(NAME, _aliases()["champion"])
    now = client.get_run(champion.run_id).data.tags["data.hash"]
    key = ("data_changed", NAME)
    only = ["+triggers.low_accuracy.enabled=false", "+triggers.new_candidate.enabled=false"]
    assert key not in _optimize(capsys, "check", *only)[1], "unchanged data"
    client.set_tag(champion.run_id, "data.hash", "0" * 64)
    candidate = client.get_model_version(NAME, _aliases()["candidate"])
    try:
        assert key not in _optimize(capsys, "check", *only)[1], "the candidate was trained on the data as it is now"
        client.set_tag(candidate.run_id, "data.hash", "0" * 64)
        fired = _optimize(capsys, "check", *only)[1]
        assert fired[key]["evidence"] == {"data_hash_then": "0" * 64, "data_hash_now": now}
        assert fired[key]["action"] == "retrain with the champion's scenario on the new data"
    finally:
        client.set_tag(champion.run_id, "data.hash", now)
        client.set_tag(candidate.run_id, "data.hash", now)

    exp = mlflow.get_experiment_by_name(SITE).experiment_id
    key = ("low_gpu_utilization", NAME)
    for pct, fires in ((80.0, False), (20.0, True)):  # the newest infer run of the champion counts
        run = client.create_run(exp, tags={"exp.type": "infer", "source.run_id": champion.run_id})
        client.log_param(run.info.run_id, "infer.batch_sizes", "[1, 8]")
        client.log_metric(run.info.run_id, "sys.gpu_utilization_pct", pct)
        client.set_terminated(run.info.run_id, "FINISHED")
        fired = _optimize(capsys, "check", *only)[1]
        assert (key in fired) is fires, pct
    evidence = fired[key]["evidence"]
    assert evidence["batch_sizes"] == [2, 16] and evidence["infer_run_id"] == run.info.run_id


def test_sigterm_stops_the_launched_run_and_ends_the_record_killed(store):
    """SIGTERM to `optimize run` while an action runs: the launched run is stopped and ends KILLED (or FAILED), the
    optimize run KILLED; nothing stays RUNNING. (After test_data_and_gpu_triggers, low GPU utilisation fires.)"""
    client = mlflow.MlflowClient()
    only = [f"+triggers.{t}.enabled=false" for t in ("low_accuracy", "new_candidate", "challenger_passes")]
    proc = subprocess.Popen([sys.executable, "-m", "gfcore.cli", "optimize", "run", "--yes", *only],
                            env={**os.environ}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    launched = []
    while not launched and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        launched = client.search_runs([mlflow.get_experiment_by_name(SITE).experiment_id],
                                      f"tags.`{AUTOMATION_TRIGGER}` = 'low_gpu_utilization'")
    assert launched, f"nothing was launched: {proc.stderr.read() if proc.poll() is not None else 'still running'}"
    time.sleep(3)  # inside the launched infer
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    [run] = launched
    assert client.get_run(run.info.run_id).info.status in ("KILLED", "FAILED")
    record = client.get_run(run.data.tags[AUTOMATION_OPTIMIZE_RUN_ID])
    assert record.info.status == "KILLED" and record.data.tags["exp.type"] == "optimize"


def test_a_running_launch_blocks_the_next(store, capsys):
    """Single instance: while a run launched for (trigger, model) is RUNNING nothing else launches for it, even
    past the cooldown."""
    client = mlflow.MlflowClient()
    exp = mlflow.get_experiment_by_name(SITE).experiment_id
    running = client.create_run(exp, tags={AUTOMATION_TRIGGER: "data_changed", AUTOMATION_MODEL: NAME})
    try:
        assert "still RUNNING" in launcher.blocked("data_changed", NAME, cooldown_hours=0)
        assert launcher.blocked("data_changed", "other.model", cooldown_hours=0) is None
    finally:
        client.set_terminated(running.info.run_id, "KILLED")
    assert launcher.blocked("data_changed", NAME, cooldown_hours=0) is None


def test_hydra_values_read_back():
    from omegaconf import OmegaConf

    from gfcore.config import compose

    values = {"a": "plain", "b": "with space", "c": "it's", "d": [1, 2], "e": None, "f": True, "g": 0.5,
              "h": "null", "i": "/data/x.yaml"}
    overrides = [f"++x.{k}={launcher.hydra_value(v)}" for k, v in values.items()]
    assert OmegaConf.to_container(compose(overrides, config_name="config"))["x"] == values


def test_unknown_trigger_refused():
    from hydra.errors import ConfigCompositionException

    from gfcore.core.errors import ConfigError

    with pytest.raises((ConfigError, ConfigCompositionException)):
        optimize.load_config(["+triggers.sometimes={}"])


def test_sigterm_stops_the_whole_sweep_it_launched(store):
    """SIGTERM to `guardianflow optimize run` while the Optuna sweep it launched trains: within 15 s no process of
    the sweep is left (the tree seen before the signal, and the pids its jobs' runs name), nothing registers a model
    version after the signal, no run stays RUNNING, and the record named the sweep while it ran and still does.

    The signal is sent as a job starts plotting its labels: Ultralytics' TryExcept around its plots swallows every
    exception, so the stop must stick (before, the job trained on, registered, and was killed 10 s later)."""
    import psutil

    client = mlflow.MlflowClient()
    only = [f"+triggers.{t}.enabled=false" for t in ("high_latency", "low_gpu_utilization", "data_changed",
                                                      "new_candidate", "challenger_passes")]
    start_ms = int(time.time() * 1000)
    aliases = _aliases()
    proc = subprocess.Popen([sys.executable, "-m", "guardianflow", "optimize", "run", "--yes", *only,
                             "triggers.low_accuracy.threshold=1.01", "triggers.low_accuracy.trials=3",
                             "cooldown_hours=0"], env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    plotting: list[float] = []  # when a sweep job started plotting its labels (Ultralytics, on stdout)
    output: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            output.append(line)
            if "Plotting labels to" in line:
                plotting.append(time.monotonic())

    threading.Thread(target=read, daemon=True).start()
    site = mlflow.get_experiment_by_name(SITE).experiment_id
    deadline, jobs = time.monotonic() + 240, []
    while not jobs and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)  # a sweep job's run, RUNNING: the sweep trains
        jobs = client.search_runs([site], f"attributes.start_time > {start_ms} and attributes.status = 'RUNNING' "
                                          "and tags.`gf.sweep.pid` != ''")
    assert jobs, "no sweep job started: " + "".join(output[-50:])
    [sweep] = client.search_runs([site], f"attributes.start_time > {start_ms} and tags.`exp.type` = 'sweep'")
    [record] = client.search_runs([mlflow.get_experiment_by_name(optimize.EXPERIMENT).experiment_id],
                                  "attributes.status = 'RUNNING'")
    assert record.data.tags[AUTOMATION_LAUNCHED] == f"sweep:{sweep.info.run_id}", "named while it runs"
    assert record.info.run_name == f"optimize-run-launched-sweep-{sweep.info.run_id[:8]}"
    ready = time.monotonic()
    while not [t for t in plotting if t > ready] and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    tree = psutil.Process(proc.pid).children(recursive=True)
    signalled_ms = int(time.time() * 1000)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130, "".join(output[-50:])

    pids = {int(r.data.tags[SWEEP_PID]) for r in client.search_runs([site], f"attributes.start_time > {start_ms}")
            if SWEEP_PID in r.data.tags}
    tree += [p for p in (_process(pid) for pid in pids) if p is not None]
    deadline = time.monotonic() + 15
    while (left := [p for p in tree if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"processes of the sweep left behind: {left}"

    late = [(v.name, v.version) for v in client.search_model_versions() if v.creation_timestamp >= signalled_ms]
    assert not late, f"model versions registered after the signal: {late}"
    running = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                 "attributes.status = 'RUNNING'")
    assert not running, f"runs left RUNNING: {[(r.info.run_name, r.info.run_id) for r in running]}"
    assert client.get_run(sweep.info.run_id).info.status == "KILLED"
    assert {client.get_run(j.info.run_id).info.status for j in jobs} == {"KILLED"}
    record = client.get_run(record.info.run_id)
    assert record.info.status == "KILLED" and record.data.tags[AUTOMATION_LAUNCHED] == f"sweep:{sweep.info.run_id}"
    assert record.info.run_name == "optimize-run-1-fired-1-launched"
    assert _aliases() == aliases, "a stopped sweep chooses no candidate"


def _process(pid):
    import psutil

    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _alive(p) -> bool:
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
