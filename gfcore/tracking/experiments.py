"""Experiments as a person meets them in the MLflow UI: created on first use, described, and marked as model
development (the tag `mlflow.experimentKind`), so the UI opens on runs and models rather than on GenAI traces.

Site experiments are `{customer}/{region}-{plant}/{zone}` (gfcore.tracking.naming); GuardianFlow's own are
`guardianflow/fleet`, `guardianflow/alerts` and `guardianflow/automation`.
"""

from __future__ import annotations

from gfcore.core.errors import TrackingError
from gfcore.core.vocabulary import EXPERIMENT_KIND_TAG, NOTE_TAG
from gfcore.tracking.offline import store as offline_store

KIND = "custom_model_development"


def site_description(name: str) -> str:
    """What a site experiment holds, in Markdown."""
    customer, _, rest = name.partition("/")
    region_plant, _, zone = rest.partition("/")
    prefix = f"{customer}.{region_plant}.{zone}"
    return (f"**Site {name}** (customer `{customer}`, {region_plant}, zone `{zone}`): GuardianFlow's runs for this "
            "site's models.\n\n"
            "- `train` runs train a YOLO detector and register it as `" + prefix + ".{task}`; `quant` runs export "
            "it for an edge runtime and register `" + prefix + ".{task}__{backend}_{precision}`; `infer` runs "
            "benchmark a model (detection, latency per batch size, tracking).\n"
            "- `pipeline`, `sweep` and `compare` runs are parents: their nested children are the steps, and their "
            "description holds the result table.\n"
            "- The tag `exp.type` says which a run is. Headline figures (`det.*`, batch-1 `sys.latency_*`) are "
            "measured on the split named by the tag `eval.split`: compare runs and versions whose `eval.split` "
            "and `eval.dataset_digest` match.")


def ensure_experiment(name: str, description: str | None = None) -> str:
    """The id of experiment `name`, created (described, kind-tagged) if it does not exist."""
    import mlflow

    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise TrackingError(f"experiment {name!r} is deleted: restore it (mlflow experiments restore "
                                f"--experiment-id {found.experiment_id}) or delete it for good before running.")
        describe(found.experiment_id, name, found.tags, description)
        return found.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=offline_store.artifact_location(name),
                                        tags=_tags(name, description))
    except mlflow.exceptions.MlflowException:
        # Another job of a parallel sweep created it first.
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def describe(experiment_id: str, name: str | None = None, tags: dict[str, str] | None = None,
             description: str | None = None) -> None:
    """Give an existing experiment (e.g. one `mlflow run --experiment-name` created) its kind and description,
    without overwriting what is there (a description a person wrote stays)."""
    import mlflow

    client = mlflow.MlflowClient()
    if tags is None or name is None:
        experiment = client.get_experiment(experiment_id)
        tags, name = experiment.tags, experiment.name
    for key, value in _tags(name, description).items():
        if key not in tags:
            client.set_experiment_tag(experiment_id, key, value)


def _tags(name: str | None, description: str | None) -> dict[str, str]:
    tags = {EXPERIMENT_KIND_TAG: KIND}
    text = description or (site_description(name) if name and name.count("/") == 2 else None)
    if text:
        tags[NOTE_TAG] = text
    return tags
