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
    if dataset.pin:  # a pushed version or a DVC revision: the lineage names where it can be fetched again
        source = _pinned_source(dataset.pin.uri)
    elif dataset.source:  # a cached copy: the lineage names where the data lives (s3://...)
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


def _pinned_source(uri: str) -> Any:
    """An S3 source for a pushed version's manifest; a git source (DVC) otherwise, which MLflow has no class for."""
    from mlflow.data.dataset_source import DatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    if uri.startswith("s3://"):
        return resolve_dataset_source(uri)

    class GitDatasetSource(DatasetSource):
        """git+REPO#PATH@REV: a DVC-tracked dataset (`dvc get REPO PATH --rev REV` fetches it)."""

        def __init__(self, uri: str):
            self.uri = uri

        @staticmethod
        def _get_source_type() -> str:
            return "dvc"

        def load(self) -> Any:
            raise NotImplementedError("fetch it with `guardianflow reproduce` or `dvc get`")

        @staticmethod
        def _can_resolve(raw_source: Any) -> bool:
            return isinstance(raw_source, str) and raw_source.startswith("git+")

        @classmethod
        def _resolve(cls, raw_source: Any) -> DatasetSource:
            return cls(raw_source)

        def to_dict(self) -> dict[str, Any]:
            return {"uri": self.uri}

        @classmethod
        def from_dict(cls, source_dict: dict[Any, Any]) -> DatasetSource:
            return cls(source_dict["uri"])

    return GitDatasetSource(uri)
