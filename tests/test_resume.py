"""Resuming a train run after a crash (gfcore.jobs.resume): real Ultralytics training on the smoke set, killed with
SIGKILL mid-training, then `guardianflow resume RUN_ID` (or a rerun of full_pipeline, or `mlflow run -P
resume_run_id=`) continues it from its last checkpoint into the same run, every epoch once in its history. And
every run that cannot resume is refused with exit code 2, the run left exactly as it was."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from gfcore.cli import main as cli_main
from tests.conftest import REPO, artifact_paths, run_project, runs_of

EPOCHS = 5
KILL_AFTER = 2  # SIGKILL once this epoch is in the run's history
MODEL = "demo.local-plant1.yard.ppe"
PER_EPOCH = ("val.mAP50", "val.mAP50_95", "val.precision", "val.recall", "val.f1", "train.box_loss",
             "train.cls_loss", "train.dfl_loss", "val.box_loss", "lr.pg0")


def _steps(client, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def _env(uri: str) -> dict[str, str]:
    """The environment of a command against `uri`, whose tables are made first (here, not by the command while
    this process polls the same new database)."""
    mlflow.MlflowClient(uri).search_experiments()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    for var in ("MLFLOW_RUN_ID", "PYTEST_CURRENT_TEST", "MLFLOW_EXPERIMENT_ID"):
        env.pop(var, None)
    return env


def _kill_when_logged(proc: subprocess.Popen, uri: str, epoch: int, runs_of_kind=lambda runs: runs) -> str:
    """Poll the store until a (train) run has logged `epoch`, then SIGKILL the process group and all it started (a
    crash: nothing gets to end its run). Returns the run id."""
    import psutil

    client = mlflow.MlflowClient()
    deadline = time.time() + 600
    while time.time() < deadline:
        runs = runs_of_kind(runs_of(uri))
        if runs and max(_steps(client, runs[0].info.run_id, "val.mAP50"), default=0) >= epoch:
            break
        assert proc.poll() is None, f"ended with {proc.returncode} before epoch {epoch}: {proc.stderr.read()[-3000:]}"
        time.sleep(0.05)
    else:
        pytest.fail(f"training never logged epoch {epoch}")
    tree = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)
    for child in tree:
        try:
            child.kill()
        except psutil.Error:
            pass
    proc.wait(timeout=60)
    psutil.wait_procs(tree, timeout=30)
    return runs[0].info.run_id


def _snapshot(client, run_id: str) -> tuple:
    """Everything a refused resume must leave as it was."""
    run = client.get_run(run_id)
    history = {k: [(m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, k)]
               for k in run.data.metrics}
    return (run.info.status, run.info.end_time, run.info.lifecycle_stage, dict(run.data.tags),
            dict(run.data.params), history, artifact_paths(client, run_id))


def test_kill_9_mid_training_then_resume_continues_the_same_run(mlflow_store, tmp_path):
    env = _env(mlflow_store)
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "guardianflow.train", "scenario=smoke", f"train.epochs={EPOCHS}",
                             f"hydra.run.dir={tmp_path}/outputs"], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        rid = _kill_when_logged(proc, mlflow_store, KILL_AFTER)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    killed_at_ms = int(time.time() * 1000)
    client = mlflow.MlflowClient()
    crashed = client.get_run(rid)
    assert crashed.info.status == "RUNNING", "SIGKILL leaves the run RUNNING: nothing got to end it"
    lost_at = max(_steps(client, rid, "val.mAP50"))  # the last epoch in the history when the process died
    assert KILL_AFTER <= lost_at < EPOCHS

    started = time.time()
    resumed = subprocess.run([sys.executable, "-m", "guardianflow", "resume", rid], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    print(f"\nresume took {time.time() - started:.1f} s, killed at {killed_at_ms / 1000 - t0:.1f} s")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    [run] = runs_of(mlflow_store)  # one run: the same, continued
    assert run.info.run_id == rid and run.info.status == "FINISHED"
    tags = run.data.tags
    # The checkpoint is the last epoch Ultralytics saved: the history's last epoch, or the next one when the kill
    # fell between saving last.pt and logging that epoch's metrics (then that epoch is logged from the checkpoint).
    note = tags["gf.resume.1"]
    resumed_from = int(note.split()[1])
    # (The artifact only when the kill cut last.pt short mid-write: then the upload of the epoch before.)
    assert note.startswith((f"epoch {resumed_from} of {EPOCHS} from the run's work folder (",
                            f"epoch {resumed_from} of {EPOCHS} from the artifact checkpoints/last.pt")), note
    assert resumed_from in (lost_at, lost_at + 1), (note, lost_at)
    assert ("logged from the checkpoint" in note) == (resumed_from == lost_at + 1)
    assert "gf.resume.2" not in tags and "gf.error" not in tags
    # The resumed process trained only the epochs after its checkpoint: at most the interrupted one is lost.
    assert f"from epoch {resumed_from + 1} to {EPOCHS} total epochs" in resumed.stdout + resumed.stderr
    # Every per-epoch series: steps 1..N, each once; what came after the crash is exactly the missing epochs.
    for key in PER_EPOCH:
        assert _steps(client, rid, key) == list(range(1, EPOCHS + 1)), key
        after = sorted(m.step for m in client.get_metric_history(rid, key) if m.timestamp >= killed_at_ms)
        assert after == list(range(lost_at + 1, EPOCHS + 1)), key
    for key in (k for k in run.data.metrics if k.startswith("system/")):
        steps = _steps(client, rid, key)
        assert len(steps) == len(set(steps)), f"{key} repeats a step after the resume"
    # Start-up of the first process at step 0, of the resume at step 1 (gf.resume.1).
    assert _steps(client, rid, "sys.startup_s") == [0, 1]
    # Registered as a train run is, and the resume points (checkpoints/) are gone from the finished run.
    version = client.get_model_version_by_alias(MODEL, "candidate")
    assert version.run_id == rid
    arts = artifact_paths(client, rid)
    assert {"weights/best.pt", "weights/last.pt", "results/results.csv"} <= arts
    assert not any(a.startswith("checkpoints/") for a in arts)
    csv = Path(mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="results/results.csv",
                                                   dst_path=str(tmp_path / "csv"))).read_text().splitlines()
    assert [int(float(line.split(",")[0])) for line in csv[1:]] == list(range(1, EPOCHS + 1))
    print(f"\nresumed from epoch {resumed_from} (history at {lost_at}): re-trained {EPOCHS - resumed_from} of "
          f"{EPOCHS - lost_at} missing epochs; start-up "
          f"{[m.value for m in client.get_metric_history(rid, 'sys.startup_s')]} s")

    # A finished run resumes no more: refused, and the run stays as it is.
    before = _snapshot(client, rid)
    again = subprocess.run([sys.executable, "-m", "guardianflow", "resume", rid], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2, again.stderr[-3000:]
    assert f"run {rid} is FINISHED: its training completed, there is nothing to resume" in again.stderr
    assert _snapshot(client, rid) == before


@pytest.mark.slow
def test_a_rerun_of_a_killed_pipeline_resumes_its_train_step(mlflow_store, tmp_path):
    env = _env(mlflow_store)
    args = [sys.executable, "-m", "guardianflow.full_pipeline", "scenario=smoke", f"train.epochs={EPOCHS}",
            "pipeline.quant_backends=[]", "tracking.system_metrics=false"]
    proc = subprocess.Popen([*args, f"hydra.run.dir={tmp_path}/first"], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    trains = lambda runs: [r for r in runs if r.data.tags.get("exp.type") == "train"]  # noqa: E731
    try:
        rid = _kill_when_logged(proc, mlflow_store, KILL_AFTER, trains)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    client = mlflow.MlflowClient()
    assert client.get_run(rid).info.status == "RUNNING"
    lost_at = max(_steps(client, rid, "val.mAP50"))

    again = subprocess.run([*args, f"hydra.run.dir={tmp_path}/again"], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    out = again.stdout + again.stderr
    assert f"step train: resuming its unfinished run {rid}" in out, out[-5000:]
    runs = runs_of(mlflow_store)
    [train] = trains(runs)  # the same train run, not a second one
    parent = [r for r in runs if r.data.tags.get("exp.type") == "pipeline"][-1]
    assert train.info.run_id == rid and train.info.status == "FINISHED" and parent.info.status == "FINISHED"
    assert train.data.tags["mlflow.parentRunId"] == parent.info.run_id == client.get_run(rid).data.tags[
        "mlflow.parentRunId"]
    assert parent.data.tags["gf.step.train"] == rid and parent.data.tags["gf.pipeline.reused"] == "none"
    resumed_from = int(train.data.tags["gf.resume.1"].split()[1])
    assert resumed_from in (lost_at, lost_at + 1)
    for key in PER_EPOCH:
        assert _steps(client, rid, key) == list(range(1, EPOCHS + 1)), key
    [infer] = [r for r in runs if r.data.tags.get("exp.type") == "infer"]
    assert infer.data.tags["source.run_id"] == rid and infer.info.status == "FINISHED"


# --- runs that cannot resume, and `mlflow run -P resume_run_id=`


@pytest.fixture(scope="module")
def failed_store(tmp_path_factory):
    """A store with a train run (3 epochs) that failed in its third epoch (in-process: its checkpoint is in its
    own work folder under GF_CACHE_DIR, and uploaded as checkpoints/), and an infer-kind run."""
    from gfcore.config import compose, to_typed
    from gfcore.jobs.train import train
    from gfcore.yolo import training

    path = tmp_path_factory.mktemp("resume")
    uri = f"sqlite:///{path / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        mp.delenv(var, raising=False)
    mlflow.set_tracking_uri(uri)
    real_fit = training._fit

    def failing_fit(model, args):
        def boom(trainer):
            if trainer.epoch == 2:
                raise RuntimeError("injected failure in epoch 3")
        model.add_callback("on_train_epoch_start", boom)
        real_fit(model, args)

    mp.setattr(training, "_fit", failing_fit)
    try:
        with pytest.raises(RuntimeError, match="injected failure"):
            train(to_typed(compose(["scenario=smoke", "train.epochs=3", "tracking.system_metrics=false"])))
        mp.setattr(training, "_fit", real_fit)
        [run] = runs_of(uri)
        client = mlflow.MlflowClient()
        other = client.create_run(run.info.experiment_id, tags={"exp.type": "infer"}, run_name="an-infer-run")
        client.set_terminated(other.info.run_id, "FINISHED")
        yield uri, run.info.run_id, other.info.run_id
    finally:
        mlflow.set_tracking_uri(None)
        mp.undo()


@pytest.mark.parametrize("case", ["not a train run", "different config", "checkpoint missing"])
def test_a_run_that_cannot_resume_is_refused_and_left_as_it_was(failed_store, case, capsys):
    uri, failed, other = failed_store
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    run = client.get_run(failed)
    assert run.info.status == "FAILED" and "injected failure in epoch 3" in run.data.tags["gf.error"]
    target = other if case == "not a train run" else failed
    before = _snapshot(client, target)
    args = ["resume", target]
    hidden: list[tuple[Path, Path]] = []
    if case == "different config":
        args += ["train.lr0=0.01", "train.batch=4"]
    if case == "checkpoint missing":  # neither its work folder nor its artifact: as on a machine without either
        work = Path(run.data.tags["gf.work_dir"])
        uploaded = Path(run.info.artifact_uri.removeprefix("file://")) / "checkpoints"
        assert (work / "ultralytics/train/weights/last.pt").is_file() and (uploaded / "last.pt").is_file()
        hidden = [(work, work.with_name(work.name + ".hidden")), (uploaded, uploaded.with_name("hidden"))]
        for src, dst in hidden:
            src.rename(dst)
    try:
        code = cli_main(args)
    finally:
        for src, dst in hidden:
            dst.rename(src)
    err = capsys.readouterr().err
    assert code == 2, err
    message = err.split("guardianflow: error: ", 1)[1]
    assert "\n" not in message.strip(), err  # one paragraph
    expected = {
        "not a train run": [f"run {other} is not a train run (exp.type='infer')", "guardianflow reproduce"],
        "different config": [f"run {failed} cannot resume with a different config",
                             "train.batch: the run has '8', this config '4'",
                             "train.lr0: the run has '0.002', this config '0.01'", "drop these overrides"],
        "checkpoint missing": [f"run {failed} has no checkpoint to resume from",
                               f"{hidden[0][0] if hidden else ''}/ultralytics/train/weights/last.pt (the run's work "
                               "folder", "the artifact checkpoints/last.pt in", "guardianflow reproduce"],
    }[case]
    for text in expected:
        assert text in err, (text, err)
    assert _snapshot(client, target) == before


def test_the_train_entry_point_refuses_a_different_config_too(failed_store, tmp_path):
    """`python -m guardianflow.train train.resume_run_id=ID ...` (what `-P resume_run_id=` runs) checks the same."""
    uri, failed, _ = failed_store
    client = mlflow.MlflowClient(uri)
    before = _snapshot(client, failed)
    proc = subprocess.run([sys.executable, "-m", "guardianflow.train", "scenario=smoke", "train.epochs=4",
                           "tracking.system_metrics=false", f"train.resume_run_id={failed}",
                           f"hydra.run.dir={tmp_path}/outputs"], cwd=REPO, env=_env(uri), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "train.epochs: the run has '3', this config '4'" in proc.stderr
    assert _snapshot(client, failed) == before


def test_mlflow_run_with_resume_run_id_continues_the_failed_run_from_its_artifact(failed_store, tmp_path):
    """Last in this module: it finishes the fixture's failed run, as on another machine (its work folder is not
    here): from the checkpoint it uploaded. MLflow files a run of its own for the command: it only points to the
    run it resumed (tag gf.resumed_into), where everything is logged."""
    uri, failed, other = failed_store
    client = mlflow.MlflowClient(uri)
    work = Path(client.get_run(failed).data.tags["gf.work_dir"])
    shutil.rmtree(work)
    proc = run_project("train", uri, {"scenario": "smoke", "resume_run_id": failed,
                                      "overrides": f"train.epochs=3 tracking.system_metrics=false "
                                                   f"hydra.run.dir={tmp_path}/outputs"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = client.get_run(failed)
    assert run.info.status == "FINISHED"
    assert run.data.tags["gf.resume.1"].startswith("epoch 2 of 3 from the artifact checkpoints/last.pt")
    assert run.data.tags["gf.work_dir"] == str((tmp_path / "outputs").resolve())  # where it went on from
    assert "injected failure in epoch 3" in run.data.tags["gf.resume.1"] and "gf.error" not in run.data.tags
    for key in PER_EPOCH:
        assert _steps(client, failed, key) == [1, 2, 3], key
    assert client.get_model_version_by_alias(MODEL, "candidate").run_id == failed
    [stub] = [r for r in runs_of(uri) if r.info.run_id not in (failed, other)]
    assert stub.data.tags["gf.resumed_into"] == failed and stub.info.status == "FINISHED"
    assert "exp.type" not in stub.data.tags and not stub.data.metrics
    csv = (tmp_path / "outputs/ultralytics/train/results.csv").read_text().splitlines()
    assert [int(float(line.split(",")[0])) for line in csv[1:]] == [1, 2, 3]
    assert not any(a.startswith("checkpoints/") for a in artifact_paths(client, failed))
