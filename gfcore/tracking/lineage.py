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
            mlflow.log_input(ds, context=context, tags={"data.hash": dataset.hash, "images": str(dataset.counts[split])})
