"""`pipeline.launcher=slurm` on the one-node cluster: each step's `mlflow run` is a SLURM job, a failed job
fails its step with the job's own error output, and a rerun resumes from the cache as a local pipeline does."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.cluster import slurm
from tests.conftest import REPO, run_entrypoint, runs_of
from tests.mot.conftest import gt_line, write_frames, write_seq

pytestmark = slurm.needed

FAST = ["scenario=smoke", "train.epochs=1", "tracking.system_metrics=false", "pipeline.launcher=slurm",
        "pipeline.quant_backends=[onnx_fp32]"]


def _steps(uri, parent):
    return [r for r in runs_of(uri) if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


def test_steps_as_slurm_jobs_a_failed_job_quoted_and_a_resume(cluster, mlflow_store, tmp_path):
    seqs = tmp_path / "seqs"  # ground truth with frame 14 in a 10-frame sequence: the infer step fails there
    write_seq(seqs, None, "cam1", [gt_line(1, 1, 10), gt_line(14, 1, 12)], None, length=10)
    write_frames(seqs / "cam1", 10)
    args = ["guardianflow.full_pipeline", *FAST, f"data.sequences_dir={seqs}"]
    proc = run_entrypoint(args, mlflow_store, tmp_path / "first", timeout=900, **cluster)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "step infer pytorch_fp32 failed in SLURM job" in proc.stderr, proc.stderr[-3000:]
    assert "frame 14 is outside the sequence" in proc.stderr, "the job's own error output is quoted"
    [parent] = [r for r in runs_of(mlflow_store) if r.data.tags.get("exp.type") == "pipeline"]
    steps = {r.data.tags["mlflow.project.entryPoint"]: r for r in _steps(mlflow_store, parent)}
    assert parent.info.status == "FAILED" and set(steps) == {"train", "quant", "infer"}
    assert steps["train"].info.status == "FINISHED" and steps["quant"].info.status == "FINISHED"
    assert steps["infer"].info.status == "FAILED"
    jobs = {name: r.data.tags["slurm.job_id"] for name, r in steps.items()}
    assert len(set(jobs.values())) == 3 and all(j.isdigit() for j in jobs.values()), "one SLURM job per step"
    assert steps["train"].data.tags["slurm.node"], "the step's own run says where it ran"

    # Fixed ground truth, same command: train and quant come from the cache, the two infer steps run as jobs.
    write_seq(tmp_path / "fixed", None, "cam1", [gt_line(1, 1, 10), gt_line(4, 1, 12)], None, length=10)
    (seqs / "cam1" / "gt" / "gt.txt").write_text((tmp_path / "fixed" / "cam1" / "gt" / "gt.txt").read_text())
    proc = run_entrypoint(args, mlflow_store, tmp_path / "again", timeout=900, **cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [resumed] = [r for r in runs_of(mlflow_store) if r.data.tags.get("exp.type") == "pipeline"][1:]
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags["gf.pipeline.reused"] == "train, quant onnx_fp32"
    infers = _steps(mlflow_store, resumed)
    assert len(infers) == 2 and all(r.info.status == "FINISHED" and r.data.tags["slurm.job_id"] for r in infers)


def test_sigterm_to_the_pipeline_cancels_the_running_step(cluster, mlflow_store, tmp_path):
    """SIGTERM while train (300 epochs) runs in its SLURM job: the job is cancelled, its run and the pipeline's end
    KILLED, and no job is left in the queue."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store, **cluster}
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.Popen([sys.executable, "-m", "guardianflow.full_pipeline", *FAST, "train.epochs=300",
                             f"hydra.run.dir={tmp_path}/outputs"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err = slurm.sigterm_when(proc, lambda: [r for r in runs_of(mlflow_store) if r.data.tags.get("exp.type") == "train"
                                            and r.info.status == "RUNNING" and "slurm.node" in r.data.tags])
    assert proc.returncode == 143, err[-3000:]
    runs = runs_of(mlflow_store)
    [parent] = [r for r in runs if r.data.tags.get("exp.type") == "pipeline"]
    [train] = [r for r in runs if r.data.tags.get("exp.type") == "train"]
    assert parent.info.status == "KILLED" and train.info.status == "KILLED"
    assert not slurm.queue(cluster), "the step's job was cancelled"
