"""Publishing ended offline runs on the server, each as it was recorded.

Parents before their children (pipeline steps keep their parent), run ids that one run names of another (a
quant run's source, a child's parent) mapped to the server's, metric points with their own steps and
timestamps, artifacts, logged models, and each model version registered offline registered again on the
server, alias `candidate`. A published run is tagged in the offline store, so publishing twice does nothing.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from gfcore.core.vocabulary import (
    OFFLINE_RUN_ID,
    OFFLINE_TAG,
    PARENT_TAG,
    PUBLISHED_AS,
    REGISTERED_VERSION,
    SWEEP_BEST_OF,
    SWEEP_TRIAL_OF,
)
from gfcore.tracking.offline import store

log = logging.getLogger(__name__)


@dataclass
class Published:
    offline_run_id: str
    tracking_uri: str
    published_run_id: str | None = None
    outcome: str = "published"  # published | would publish | failed
    detail: str = ""


def _target() -> str | None:
    """The server offline runs go to: MLFLOW_TRACKING_URI now (when it is not the offline store itself), else the
    server the box was pointed at when it went offline."""
    now = os.environ.get("MLFLOW_TRACKING_URI", "")
    if now and now != store.uri():
        return now
    return os.environ.get(store.TARGET_ENV) or None


def pending_runs(run_id: str | None = None) -> list[Any]:
    """Ended runs of the offline store not published yet, parents first."""
    from mlflow import MlflowClient

    if not (store.folder() / "mlflow.db").is_file():
        return []
    client = MlflowClient(store.uri())
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, "attributes.status != 'RUNNING'", max_results=5000,
                              order_by=["attributes.start_time ASC"]) if experiments else []
    runs = [r for r in runs if PUBLISHED_AS not in r.data.tags]
    if run_id:
        runs = [r for r in runs if r.info.run_id == run_id]
    return runs


def publish_pending(run_id: str | None = None, dry_run: bool = False) -> list[Published]:
    runs = pending_runs(run_id)
    if not runs:
        return []
    target = _target()
    if target is None:
        return [Published(r.info.run_id, "", outcome="failed",
                          detail="no server to publish to: set MLFLOW_TRACKING_URI to the tracking server") for r in runs]
    if dry_run:
        return [Published(r.info.run_id, target, outcome="would publish") for r in runs]
    from mlflow import MlflowClient

    from gfcore.tracking.server import check_tracking_store

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line per run says enough
    mapping: dict[str, str] = {}
    local, remote = MlflowClient(store.uri()), MlflowClient(target)
    results = []
    with _tracking_uri(target):
        check_tracking_store()
        for run in runs:
            try:
                new_id = _publish(run, local, remote, mapping)
            except Exception as exc:  # one run's failure is said; the others go on
                results.append(Published(run.info.run_id, target, outcome="failed",
                                         detail=str(exc).splitlines()[0][:300]))
                continue
            mapping[run.info.run_id] = new_id
            local.set_tag(run.info.run_id, PUBLISHED_AS, new_id)
            results.append(Published(run.info.run_id, target, new_id))
    return results


class _tracking_uri:
    """MLflow's fluent calls (model registration) aimed at `uri` inside, restored after."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def __enter__(self) -> None:
        import mlflow

        self.before = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(self.uri)

    def __exit__(self, *exc: object) -> None:
        import mlflow

        mlflow.set_tracking_uri(self.before)


def _mapped(value: str, mapping: dict[str, str]) -> str:
    return mapping.get(value, value)


def _publish(run: Any, local: Any, remote: Any, mapping: dict[str, str]) -> str:
    from mlflow.entities import Metric, Param, RunTag

    from gfcore.tracking.experiments import ensure_experiment

    old = run.info.run_id
    experiment = local.get_experiment(run.info.experiment_id).name
    exp_id = ensure_experiment(experiment)
    tags = {k: _mapped(v, mapping) for k, v in run.data.tags.items()}
    if tags.get(PARENT_TAG) and tags[PARENT_TAG] not in mapping.values():
        tags.pop(PARENT_TAG)  # its parent was not published (deleted offline): a top-level run
    tags.update({OFFLINE_RUN_ID: old, OFFLINE_TAG: f"recorded offline as run {old}; published by `guardianflow sync`"})
    tags.pop(REGISTERED_VERSION, None)  # the server's version number replaces the offline one below
    new = remote.create_run(exp_id, start_time=run.info.start_time, run_name=run.info.run_name).info.run_id
    params = [Param(k, _mapped(v, mapping)) for k, v in run.data.params.items()]
    for i in range(0, len(params), 100):
        remote.log_batch(new, params=params[i:i + 100])
    tag_list = [RunTag(k, v) for k, v in tags.items() if not k.startswith("mlflow.log-model")]
    for i in range(0, len(tag_list), 100):
        remote.log_batch(new, tags=tag_list[i:i + 100])
    models = _publish_models(old, new, exp_id, local, remote)
    points = []
    for key in run.data.metrics:
        for m in local.get_metric_history(old, key):
            points.append(Metric(m.key, m.value, m.timestamp, m.step, model_id=models.get(m.model_id, None)
                                 if m.model_id else None, dataset_name=m.dataset_name, dataset_digest=m.dataset_digest))
    for i in range(0, len(points), 1000):
        remote.log_batch(new, metrics=points[i:i + 1000])
    if run.inputs and run.inputs.dataset_inputs:
        remote.log_inputs(new, datasets=list(run.inputs.dataset_inputs))
    with tempfile.TemporaryDirectory(prefix="gf-publish-") as tmp:
        if local.list_artifacts(old):
            remote.log_artifacts(new, local.download_artifacts(old, "", tmp))
    _register_versions(old, new, models, local, remote)
    remote.set_terminated(new, run.info.status, end_time=run.info.end_time)
    log.warning("published offline run %s as run %s on %s", old, new, remote.tracking_uri)
    return new


def _publish_models(old: str, new: str, exp_id: str, local: Any, remote: Any) -> dict[str, str]:
    """The run's logged models, created again on the server with their files; offline model id -> server's."""
    from mlflow.entities import LoggedModelStatus

    found = local.search_logged_models(experiment_ids=[local.get_run(old).info.experiment_id],
                                       filter_string=f"source_run_id = '{old}'")
    mapping = {}
    for model in found:
        created = remote.create_logged_model(exp_id, name=model.name, source_run_id=new, tags=model.tags,
                                             params=model.params, model_type=model.model_type)
        with tempfile.TemporaryDirectory(prefix="gf-publish-model-") as tmp:
            from mlflow.artifacts import download_artifacts

            path = download_artifacts(artifact_uri=model.artifact_location, dst_path=tmp,
                                      tracking_uri=local.tracking_uri)
            remote.log_model_artifacts(created.model_id, path)
        remote.finalize_logged_model(created.model_id, LoggedModelStatus.READY)
        mapping[model.model_id] = created.model_id
    return mapping


def _register_versions(old: str, new: str, models: dict[str, str], local: Any, remote: Any) -> None:
    """Each version the run registered offline, registered on the server from the published model."""
    from gfcore.registry.register import CANDIDATE

    for version in local.search_model_versions(f"run_id = '{old}'"):
        # The offline registry may not say the version's model id; its source (models:/m-...) does.
        offline_model = getattr(version, "model_id", None) or (
            version.source[len("models:/"):].split("/")[0] if version.source.startswith("models:/") else "")
        model_id = models.get(offline_model)
        source = f"models:/{model_id}" if model_id else version.source
        registered = local.get_registered_model(version.name)
        try:
            remote.get_registered_model(version.name)
        except Exception:  # not there yet: created with the offline model's tags and description
            remote.create_registered_model(version.name, tags=registered.tags, description=registered.description)
        tags = {k: _mapped(v, {old: new}) for k, v in version.tags.items()}
        made = remote.create_model_version(version.name, source, run_id=new, tags=tags,
                                           description=version.description, model_id=model_id or None)
        # A sweep's job is `candidate` only when its sweep chose it (gfcore.orchestration.sweep).
        chosen = SWEEP_TRIAL_OF not in version.tags or SWEEP_BEST_OF in version.tags
        if chosen:
            remote.set_registered_model_alias(version.name, CANDIDATE, made.version)
        remote.set_tag(new, REGISTERED_VERSION, made.version)
        log.warning("registered %s version %s (%s) from offline run %s", version.name, made.version,
                    "alias candidate" if chosen else "no alias: a sweep's job its sweep did not choose", old)
