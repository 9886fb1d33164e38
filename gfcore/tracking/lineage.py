"""Dataset lineage through MLflow's dataset tracking: each split is a run input with the data's digest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfcore.core.vocabulary import DATA_HASH, EVAL_DATASET, EVAL_DATASET_DIGEST, EVAL_SPLIT, INPUT_IMAGES

if TYPE_CHECKING:
    from gfcore.data.dataset import DatasetInfo


def split_dataset(dataset: DatasetInfo, split: str, path: Path | None = None) -> Any:
    """One split as an MLflow dataset: `{name}-{split}` with the data's digest (what metrics are measured on)."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    folders = dataset.splits.get(split) or [dataset.root]
    folder = path or folders[0]
    if dataset.source:  # a cached copy: the lineage names where the data lives (s3://...)
        from mlflow.data.dataset_source_registry import resolve_dataset_source

        from gfcore.data.s3 import split_source

        source = resolve_dataset_source(split_source(dataset.source, dataset.root, folder))
    else:
        source = LocalArtifactDatasetSource(str(folder))
    return MetaDataset(source=source, name=f"{dataset.name}-{split}", digest=dataset.digest)


def eval_tags(dataset: DatasetInfo, split: str) -> dict[str, str]:
    """The evaluation basis of headline figures: two runs or versions are comparable when these match."""
    return {EVAL_SPLIT: split, EVAL_DATASET: f"{dataset.name}-{split}", EVAL_DATASET_DIGEST: dataset.digest}


def log_dataset_inputs(dataset: DatasetInfo, contexts: dict[str, str]) -> None:
    """Log each split named in `contexts` (split -> MLflow input context) as an input of the active run."""
    import mlflow

    for split, context in contexts.items():
        for path in dataset.splits.get(split, []):
            ds = split_dataset(dataset, split, path)
            tags = {DATA_HASH: dataset.hash, INPUT_IMAGES: str(dataset.counts[split])}
            try:
                mlflow.log_input(ds, context=context, tags=tags)
            except mlflow.exceptions.MlflowException as exc:
                # Parallel sweep jobs logging the same new dataset race on the store's unique key; the
                # loser's retry finds the winner's row and only links it to this run.
                if "UNIQUE constraint failed: datasets" not in str(exc) and "duplicate key" not in str(exc):
                    raise
                mlflow.log_input(ds, context=context, tags=tags)
