"""Resuming a train run that crashed or was stopped (`guardianflow resume RUN_ID`, `-P resume_run_id=RUN_ID`, a
rerun of `full_pipeline`): Ultralytics' resume from the run's last checkpoint, into the same MLflow run.

Where the checkpoint is, in this order:
1. the run's local work folder (tag `gf.work_dir`; Ultralytics saves `ultralytics/train/weights/last.pt` there
   after every epoch), when this machine has it and the file loads;
2. the run's artifact `checkpoints/last.pt` (uploaded every `train.checkpoint_every` epochs, with best.pt), for
   a run that ran on another machine, downloaded into this process's work folder.

Everything is checked before the run is touched: it exists and is a train run (`exp.type`), it is FAILED or
KILLED, or RUNNING with its process gone (tag `gf.process`: a SIGKILL, a lost node); its logged params equal
the config being resumed; its data is the same; the checkpoint is found and loads. A ResumeError says what was
wrong and changes nothing.

The epoch history stays one series: metrics are logged at step=epoch, a resumed training logs only the epochs
after its checkpoint, an epoch whose checkpoint was saved but whose metrics were not (the crash fell between
the two) is logged from the checkpoint's own results table, and an epoch already in the history is not logged
again (a checkpoint older than the history, from the artifact store, trains it again).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore.core.errors import ResumeError
from gfcore.core.paths import cache_dir, run_work_dir
from gfcore.core.vocabulary import DATA_HASH, EXP_TYPE, LR, PROCESS, TRAIN, TRAINER, VAL, WORK_DIR, RunKind
from gfcore.tracking.params import config_params

if TYPE_CHECKING:
    from gfcore.config.schema import Config

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"  # the run's artifact folder of uploaded checkpoints (train.checkpoint_every)
RESUMABLE = ("FAILED", "KILLED")


def save_dir_of(work: Path) -> Path:
    """Ultralytics' folder inside a train run's work folder (project `ultralytics`, name `train`)."""
    return work / "ultralytics" / "train"


def local_checkpoint(work: Path) -> Path:
    return save_dir_of(work) / "weights" / "last.pt"


# --- who owns a run now


def process_tag() -> str:
    """`host pid start-time` of this process: with it a later resume tells a crashed run from a running one."""
    import psutil

    return f"{socket.gethostname()} {os.getpid()} {psutil.Process().create_time():.2f}"


def process_alive(tag: str) -> bool | None:
    """Whether the process a `gf.process` tag names still runs; None when it is another machine's (or unknown)."""
    import psutil

    try:
        host, pid, started = tag.split()
        pid_n, started_s = int(pid), float(started)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    try:
        proc = psutil.Process(pid_n)
        return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - started_s) < 1.0
    except psutil.Error:
        return False


# --- what is checked


def check_run(run_id: str) -> Any:
    """The run, if it is a train run that can be resumed (FAILED, KILLED, or RUNNING with its process gone);
    else ResumeError."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from gfcore.tracking.server import check_tracking_store

    check_tracking_store()  # also sends what the crashed process left in its journal: the history is whole
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        raise ResumeError(f"run {run_id!r} does not exist in {mlflow.get_tracking_uri()}: check the id and "
                          "MLFLOW_TRACKING_URI.") from None
    if run.info.lifecycle_stage == "deleted":
        raise ResumeError(f"run {run_id} is deleted: restore it (`mlflow runs restore --run-id {run_id}`) to "
                          "resume it, or start a new training run.")
    kind = run.data.tags.get(EXP_TYPE)
    if kind != RunKind.train:
        raise ResumeError(f"run {run_id} is not a train run (exp.type={kind!r}): only train runs continue from a "
                          "checkpoint. Rerun a pipeline with the same command (its finished steps are reused and an "
                          f"unfinished train step resumes), or repeat this run with `guardianflow reproduce {run_id}`.")
    if run.data.tags.get(TRAINER):
        raise ResumeError(f"run {run_id} trained with an old folder's own code ({TRAINER}="
                          f"{run.data.tags[TRAINER]}), which has no resume: start it again with "
                          f"`guardianflow reproduce {run_id}`.")
    status = run.info.status
    if status == "FINISHED":
        raise ResumeError(f"run {run_id} is FINISHED: its training completed, there is nothing to resume. To train "
                          "longer, start a new train run (e.g. `guardianflow run train scenario=... train.epochs=N "
                          "model.weights=PATH/best.pt`).")
    if status == "RUNNING":
        owner = run.data.tags.get(PROCESS, "")
        alive = process_alive(owner) if owner else None
        if alive:
            raise ResumeError(f"run {run_id} is RUNNING: its process ({owner}) is still training it. Stop it first "
                              "(SIGTERM or Ctrl-C ends it KILLED), then resume it.")
        if alive is None:
            where = f"process {owner.split()[1]} on {owner.split()[0]}" if owner else "a process GuardianFlow does not know"
            raise ResumeError(f"run {run_id} is RUNNING in {where}, which this machine cannot check. If that "
                              "process is gone, resume the run on that machine, or mark it KILLED first: python -c "
                              f"\"import mlflow; mlflow.MlflowClient().set_terminated('{run_id}', 'KILLED')\".")
    elif status not in RESUMABLE:
        raise ResumeError(f"run {run_id} is {status}: only a FAILED, KILLED or crashed RUNNING train run resumes.")
    return run


def check_config(run: Any, cfg: Config) -> None:
    """The config resumed with must be the run's own: every param the run logged, the same."""
    logged = run.data.params
    now = config_params(cfg, RunKind.train)
    differ = sorted(k for k in now.keys() & logged.keys() if now[k] != logged[k])
    if differ:
        shown = "; ".join(f"{k}: the run has {logged[k]!r}, this config {now[k]!r}" for k in differ[:5])
        more = f" (and {len(differ) - 5} more)" if len(differ) > 5 else ""
        raise ResumeError(f"run {run.info.run_id} cannot resume with a different config: {shown}{more}. A resume "
                          "continues the training the checkpoint holds, with the run's own settings: drop these "
                          f"overrides (`guardianflow resume {run.info.run_id}` takes the run's logged config), or "
                          "start a new run to change them.")


def check_data(run: Any, data_hash: str) -> None:
    then = run.data.tags.get(DATA_HASH)
    if then and then != data_hash:
        raise ResumeError(f"run {run.info.run_id} trained on data with hash {then[:16]}, but the dataset its config "
                          f"names has hash {data_hash[:16]} now: a resume must see the same images. Restore that "
                          "data version, or start a new run on the new data.")


@dataclass
class Found:
    """Where a run's checkpoint can be had: a local file, and / or the run's artifact; `looked` says where."""

    local: Path | None = None
    artifact: bool = False
    looked: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.local is not None or self.artifact


def find_checkpoint(run: Any) -> Found:
    """Where the run's checkpoint is, without loading it (ResumeError when nowhere)."""
    import mlflow

    found = Found()
    work = run.data.tags.get(WORK_DIR)
    if work:
        path = local_checkpoint(Path(work))
        if path.is_file():
            found.local = path
        found.looked.append(f"{path} (the run's work folder, tag {WORK_DIR}; "
                            f"{'there' if found.local else 'not on this machine, ' + socket.gethostname()})")
    else:
        found.looked.append(f"no local work folder (the run has no tag {WORK_DIR})")
    try:
        names = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, CHECKPOINT_DIR)}
    except Exception as err:  # an artifact store out of reach is one place less to look
        names = set()
        log.warning("could not list the run's artifacts: %s", err)
    found.artifact = f"{CHECKPOINT_DIR}/last.pt" in names
    found.looked.append(f"the artifact {CHECKPOINT_DIR}/last.pt in {run.info.artifact_uri} "
                        f"({'there' if found.artifact else 'none: train.checkpoint_every=0 uploads none'})")
    if not found:
        raise ResumeError(f"run {run.info.run_id} has no checkpoint to resume from. Looked for "
                          f"{'; and for '.join(found.looked)}. Resume it on the machine that has its work folder, "
                          f"or start it again with `guardianflow reproduce {run.info.run_id}`.")
    return found


def resumable(run_id: str, cfg: Config, data_hash: str) -> str | None:
    """Why run `run_id` cannot be resumed with `cfg`, or None when it can (`prepare` without fetching an uploaded
    checkpoint)."""
    try:
        prepare(cfg, data_hash, download=False, run_id=run_id)
    except ResumeError as err:
        return str(err)
    return None


# --- the resume point


@dataclass
class ResumePoint:
    run_id: str
    checkpoint: Path  # last.pt to resume from, on this machine
    epoch: int  # the epochs it completed (1-based: the last one it holds)
    epochs: int  # train.epochs
    where: str  # where it came from, in words
    save_dir: Path  # Ultralytics' folder the training continues in
    work: Path  # the run's work folder from now on (tag gf.work_dir)
    own_folder: bool  # the work folder is the run's alone (removed once the run finished)
    logged_through: int  # the last epoch in the run's history
    results: dict[str, list[Any]]  # the checkpoint's results table (results.csv)

    @property
    def note(self) -> str:
        """The value of the resume's tag gf.resume.N."""
        text = f"epoch {self.epoch} of {self.epochs} from {self.where}"
        if self.logged_through < self.epoch:
            text += f"; epochs {self.logged_through + 1}..{self.epoch} logged from the checkpoint's results"
        elif self.logged_through > self.epoch:
            text += (f"; epochs {self.epoch + 1}..{self.logged_through} trained again, the figures logged for them "
                     "before stay")
        return text


def prepare(cfg: Config, data_hash: str, download: bool = True, run_id: str | None = None) -> ResumePoint | None:
    """Every check of a resume of run `run_id` (default `cfg.train.resume_run_id`) with `cfg`, and its checkpoint on
    this machine; the run itself is not changed. Without `download`, a checkpoint that only the artifact store has
    is found, not fetched, and None returned (a check before launching the process that will fetch it)."""
    run_id = run_id or cfg.train.resume_run_id or ""
    run = check_run(run_id)
    check_config(run, cfg)
    check_data(run, data_hash)
    found = find_checkpoint(run)
    errors: list[str] = []
    if found.local is not None:
        ckpt = _load(found.local, errors)
        if ckpt is not None:
            work = Path(run.data.tags[WORK_DIR])
            own = work == cache_dir().resolve() / "train" / run_id
            return _point(run, cfg, ckpt, found.local, f"the run's work folder ({found.local})", work, own)
    if found.artifact and not download:
        return None
    if found.artifact:
        work, own = run_work_dir("train", run_id)
        weights = save_dir_of(work) / "weights"
        last = _download(run_id, weights, errors)
        ckpt = _load(last, errors) if last is not None else None
        if ckpt is not None:
            return _point(run, cfg, ckpt, last, f"the artifact {CHECKPOINT_DIR}/last.pt", work, own)
    raise ResumeError(f"run {run_id}'s checkpoint cannot be read: {'; '.join(errors)}. Start the run again with "
                      f"`guardianflow reproduce {run_id}`.")


def _point(run: Any, cfg: Config, ckpt: dict[str, Any], path: Path, where: str, work: Path,
           own: bool) -> ResumePoint:
    run_id, epochs = run.info.run_id, cfg.train.epochs
    epoch = int(ckpt.get("epoch", -1)) + 1
    if epoch < 1 or ckpt.get("optimizer") is None:
        raise ResumeError(f"run {run_id}'s checkpoint {path} holds a completed training (no epoch or optimizer "
                          "state to continue from): there is nothing to resume. Start a new run with "
                          f"`guardianflow reproduce {run_id}`.")
    if epoch >= epochs:
        raise ResumeError(f"run {run_id} trained all {epochs} epochs before it stopped (checkpoint {path}): "
                          "only its final evaluation and registration were cut short, which a resume does not "
                          f"redo. Register its best.pt, or start the run again with `guardianflow reproduce {run_id}`.")
    return ResumePoint(run_id=run_id, checkpoint=path, epoch=epoch, epochs=epochs, where=where,
                       save_dir=save_dir_of(work), work=work, own_folder=own,
                       logged_through=logged_through(run_id), results=ckpt.get("train_results") or {})


def _load(path: Path, errors: list[str]) -> dict[str, Any] | None:
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
        if not isinstance(ckpt, dict):
            raise ValueError("not an Ultralytics checkpoint")
        return ckpt
    except Exception as err:  # a file a kill cut short mid-write: try the next place
        errors.append(f"{path} does not load ({type(err).__name__}: {str(err)[:200]})")
        log.warning("checkpoint %s does not load: %s", path, err)
        return None


def _download(run_id: str, weights: Path, errors: list[str]) -> Path | None:
    """The run's uploaded checkpoints (last.pt, best.pt) into `weights`; last.pt's path."""
    import mlflow

    try:
        with tempfile.TemporaryDirectory(prefix="gf-checkpoint-") as tmp:
            got = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=CHECKPOINT_DIR, dst_path=tmp))
            weights.mkdir(parents=True, exist_ok=True)
            for f in got.iterdir():
                shutil.move(str(f), weights / f.name)
    except Exception as err:
        errors.append(f"the artifact {CHECKPOINT_DIR}/ does not download ({type(err).__name__}: {str(err)[:200]})")
        return None
    return weights / "last.pt"


def logged_through(run_id: str) -> int:
    """The last epoch in the run's per-epoch history (val.*, train.*, lr.* at step=epoch); 0 when none."""
    import mlflow

    client = mlflow.MlflowClient()
    keys = [k for k in client.get_run(run_id).data.metrics if k.startswith((VAL, TRAIN, LR))]
    return max((m.step for k in keys for m in client.get_metric_history(run_id, k)), default=0)
