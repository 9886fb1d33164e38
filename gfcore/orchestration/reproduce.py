"""Rerunning a past run with the config it logged (`guardianflow reproduce RUN_ID`), resuming an unfinished train
run from its checkpoint into the same run (`guardianflow resume RUN_ID`), and launching an entry point as an
MLflow Project run filed under its site's experiment (`guardianflow run ENTRY ...`)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from gfcore.config import compose, searchpath, to_typed
from gfcore.config.schema import Config, DataKind, SiteConfig
from gfcore.core.codeversion import code_version
from gfcore.core.errors import ConfigError, DataError, GuardianFlowError, ResumeError
from gfcore.core.vocabulary import (
    BEST_RUN_ID,
    CODE_VERSION,
    DATA_HASH,
    DATA_REV,
    DATA_URI,
    DATA_VERSION,
    EXP_TYPE,
    REPRODUCED_FROM,
    RunKind,
)
from gfcore.data import dvc
from gfcore.data.dataset import resolve_dataset
from gfcore.data.versions.store import Store
from gfcore.jobs import resume as resuming
from gfcore.orchestration import launcher
from gfcore.tracking.naming import experiment_name

# exp.type -> entry point module; sweep parents are reproduced through their children (train runs).
ENTRY_OF_TYPE = {RunKind.train: "train", RunKind.quant: "quant", RunKind.infer: "infer",
                 RunKind.pipeline: "full_pipeline", RunKind.compare: "compare"}
ENTRY_POINTS = ("train", "quant", "infer", "sweep", "compare", "full_pipeline")


def reproduce(run_id: str, dry_run: bool = False) -> int:
    """Run the run's entry point again with its logged `config/resolved.yaml`; returns the exit code."""
    import mlflow
    import yaml
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"run {run_id!r} does not exist in {mlflow.get_tracking_uri()}: check the id and "
                          "MLFLOW_TRACKING_URI.") from None
    exp_type = run.data.tags.get(EXP_TYPE)
    if exp_type == RunKind.sweep:
        raise ConfigError(f"run {run_id} is a sweep's parent: reproduce one of its children (best.run_id is "
                          f"{run.data.tags.get(BEST_RUN_ID, 'not set')}), or rerun the sweep command.")
    if exp_type not in ENTRY_OF_TYPE:
        raise ConfigError(f"run {run_id} has exp.type={exp_type!r}: only GuardianFlow's train, quant, infer, pipeline "
                          "and compare runs can be reproduced.")
    if "config/resolved.yaml" not in {a.path for a in client.list_artifacts(run_id, "config")}:
        raise ConfigError(f"run {run_id} has no logged config (config/resolved.yaml), so there is nothing to rerun "
                          "it with; nothing was started.")
    logged = yaml.safe_load(Path(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="config/resolved.yaml")).read_text())

    then, now = run.data.tags.get(CODE_VERSION), code_version()
    if then != now:
        print(f"guardianflow: note: run {run_id} ran with code version {then or 'unknown'}, this checkout is {now}: "
              "the code differs, so results may too.", file=sys.stderr)
    _pin_data(run_id, run.data.tags, logged)
    entry = ENTRY_OF_TYPE[exp_type]
    folder = _config_folder(logged, "reproduce")
    argv = ["--config-dir", str(folder), "--config-name", "reproduce"]
    print(f"reproducing run {run_id} ({exp_type}): {' '.join(launcher.module_command(entry, argv))}", file=sys.stderr)
    if dry_run:
        return 0
    # Filed, like the run it repeats, under its site's experiment, and tagged with that run before it starts.
    site = SiteConfig(**{k: logged["site"][k] for k in ("customer", "region", "plant", "zone")})
    try:
        launcher.launch(entry, argv=argv, experiment_name=experiment_name(site), tags={REPRODUCED_FROM: run_id})
    except launcher.LaunchFailed as exc:
        return exc.exit_code if exc.exit_code is not None else 1
    return 0


def _pin_data(run_id: str, tags: dict[str, str], logged: dict) -> None:
    """Point the logged config at the exact data the run used (a pushed version, a DVC commit) and fetch it now, so
    a version that cannot be fetched is refused before anything starts; data that was not pinned (a local folder,
    an s3:// prefix) is what it is now: say whether it still hashes the same."""
    what = pin_logged(tags, logged)
    try:
        cfg = to_typed(compose_logged(logged))
        dataset = resolve_dataset(cfg.data, cfg.task)
    except GuardianFlowError as exc:
        if what:
            raise DataError(f"run {run_id} trained on {what}, which cannot be fetched: {exc} Nothing was started."
                            ) from None
        raise
    if what:
        print(f"reproducing on the same data: {what}", file=sys.stderr)
    elif cfg.data.kind != DataKind.demo:  # the demo set is generated from its settings: always the same
        then = tags.get(DATA_HASH)
        same = "hashes as it did then" if dataset.hash == then else \
            f"hashes {dataset.hash[:12]} now, the run's data hashed {(then or 'unknown')[:12]}: results may differ"
        print(f"guardianflow: note: run {run_id} read {cfg.data.path}, which is not a pinned version (push it with "
              f"`guardianflow data push`): it {same}.", file=sys.stderr)


def pin_logged(tags: dict[str, str], logged: dict) -> str | None:
    """Set the logged config's data to the version or DVC commit the run recorded (an alias or a branch may have
    moved since); returns what it names, None for data that was not pinned."""
    data = logged.setdefault("data", {})
    if data.get("kind") == DataKind.versioned.value and tags.get(DATA_VERSION):
        data["version"] = tags[DATA_VERSION]
        if tags.get(DATA_URI):  # the store it came from, whatever $GF_DATA_STORE says here
            data["store"] = Store.of_manifest(tags[DATA_URI])[0].uri
        return f"{data.get('name')}@{tags[DATA_VERSION]} ({tags.get(DATA_URI, 'its store')})"
    if tags.get(DATA_REV):
        where = data.get("path")
        if tags.get(DATA_URI):  # the repository it came from, named as the run saw it
            data["repo"], data["path"], _ = dvc.parse_uri(tags[DATA_URI])
        data["rev"] = tags[DATA_REV]
        return f"{where} at git {tags[DATA_REV][:12]} ({tags.get(DATA_URI, data.get('repo') or '')})"
    return None


def compose_logged(logged: dict) -> Any:
    """The logged config on the schema, as the entry point will compose it."""
    from omegaconf import OmegaConf

    return OmegaConf.merge(OmegaConf.structured(Config), {k: v for k, v in logged.items() if k != "hydra"})


def _config_folder(logged: dict, name: str) -> Path:
    """A folder with the logged config as the primary config `name`, on the same schema: it is validated like any
    other."""
    import yaml

    folder = Path(tempfile.mkdtemp(prefix=f"gf-{name}-"))
    # Its files under the user's work folder, as conf/config.yaml puts every run's (the launcher hands it on).
    hydra = {"job": {"chdir": False}, "run": {"dir": "${oc.env:GF_WORK_DIR,.}/outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}"}}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({"defaults": ["gf_schema", "_self_"], **logged,
                                                         "hydra": hydra}, sort_keys=False))
    return folder


def resume(run_id: str, overrides: list[str] | tuple[str, ...] = ()) -> int:
    """Continue the unfinished train run `run_id` from its last checkpoint, into the same run, with the config it
    logged (`overrides` may only repeat it): the train entry point in a process of its own, through the launcher
    (which ends the run KILLED if this is stopped). Everything is checked here first (gfcore.jobs.resume), so a
    run that cannot resume is refused before anything starts. Returns the entry point's exit code."""
    import mlflow
    import yaml
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    run = resuming.check_run(run_id)
    if "config/resolved.yaml" not in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "config")}:
        raise ResumeError(f"run {run_id} has no logged config (config/resolved.yaml) to resume it with: run the "
                          f"train entry point with train.resume_run_id={run_id} and the run's scenario and overrides.")
    logged = yaml.safe_load(Path(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="config/resolved.yaml")).read_text())
    pin_logged(run.data.tags, logged)  # the same data version, even if `latest` moved since the crash
    folder = _config_folder(logged, "resume")
    args = [f"train.resume_run_id={run_id}", *overrides]
    with initialize_config_dir(config_dir=str(folder), version_base="1.3"):
        cfg = to_typed(hydra_compose(config_name="resume", overrides=args))
    # The checks the train entry point makes before it touches the run, here before anything starts: a resume
    # refused later would leave a crashed (RUNNING) run FAILED. Only an uploaded checkpoint is not fetched here.
    resuming.prepare(cfg, resolve_dataset(cfg.data, cfg.task).hash, download=False)
    argv = ["--config-dir", str(folder), "--config-name", "resume", *args]
    print(f"resuming run {run_id}: {' '.join(launcher.module_command('train', argv))}", file=sys.stderr)
    try:
        launcher.launch("train", argv=argv, experiment_id=run.info.experiment_id, run_id=run_id)
    except launcher.LaunchFailed as exc:
        return exc.exit_code if exc.exit_code is not None else 1
    return 0


def launch(entry: str, overrides: list[str], env_manager: str = "local") -> str:
    """`mlflow run` this project's entry point, filed under the scenario's site experiment; returns the run id."""
    if entry not in ENTRY_POINTS:
        raise ConfigError(f"unknown entry point {entry!r}: use one of {', '.join(ENTRY_POINTS)}.")
    overrides = searchpath.prepare(overrides)  # a scenario file made absolute: the entry point runs in PROJECT
    scenario = next((o.split("=", 1)[1] for o in overrides if o.startswith("scenario=")), "demo")
    rest = [o for o in overrides if not o.startswith("scenario=")]
    # Sweep values (a,b) are not one config: compose the base to learn the site.
    plain = [o for o in rest if entry != "sweep" or "," not in o.split("=", 1)[-1]]
    cfg = to_typed(compose([f"scenario={scenario}", *plain]))
    params = {"scenario": scenario, "overrides": " ".join(rest)}
    return launcher.launch(entry, params, experiment_name=experiment_name(cfg.site), env_manager=env_manager).run_id
