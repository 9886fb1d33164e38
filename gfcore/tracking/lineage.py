"""Dataset lineage through MLflow's dataset tracking: each split is a run input with the data's digest."""

from __future__ import annotations

from gfcore.data.dataset import DatasetInfo


def log_dataset_inputs(dataset: DatasetInfo, contexts: dict[str, str]) -> None:
    """Log each split named in `contexts` (split -> MLflow input context) as an input of the active run."""
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    for split, context in contexts.items():
        for path in dataset.splits.get(split, []):
            ds = MetaDataset(source=LocalArtifactDatasetSource(str(path)), name=f"{dataset.name}-{split}",
                             digest=dataset.digest)
            tags = {"data.hash": dataset.hash, "images": str(dataset.counts[split])}
            try:
                mlflow.log_input(ds, context=context, tags=tags)
            except mlflow.exceptions.MlflowException as exc:
                # Parallel sweep jobs logging the same new dataset race on the store's unique key; the
                # loser's retry finds the winner's row and only links it to this run.
                if "UNIQUE constraint failed: datasets" not in str(exc) and "duplicate key" not in str(exc):
                    raise
                mlflow.log_input(ds, context=context, tags=tags)
