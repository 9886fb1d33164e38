"""Sending journal entries to the server: each entry is applied so that applying it twice leaves the same
records (metric points are keyed by key, step, timestamp and value; params may be written again with the same
value; tags, status and artifacts are overwritten with the same content; a registration checks for the version
it made before)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from gfcore.tracking.journal.intercept import sending

if TYPE_CHECKING:
    from gfcore.tracking.journal.store import Journal

log = logging.getLogger(__name__)


class Refused(Exception):
    """The server answered and will never accept this entry (kept aside, the rest goes on)."""


class RunGone(Exception):
    """The run the journal belongs to was deleted on the server."""


def is_permanent(exc: BaseException) -> bool:
    """A 4xx answer (other than 429) from an MLflow server: sending it again cannot help."""
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException):
        return False
    status = exc.get_http_status_code()
    return 400 <= status < 500 and status != 429


def apply(journal: Journal, run_id: str, entry: dict[str, Any]) -> None:
    """Send one entry of `journal` for run `run_id` (raises what the server raised)."""
    from mlflow import MlflowClient

    client = MlflowClient(journal.tracking_uri or None)
    op = entry["op"]
    with sending():
        if op == "batch":
            from mlflow.entities import Metric, Param, RunTag

            client.log_batch(run_id, metrics=[Metric(**m) for m in entry["metrics"]],
                             params=[Param(k, v) for k, v in entry["params"]],
                             tags=[RunTag(k, v) for k, v in entry["tags"]])
        elif op == "delete_tag":
            try:
                client.delete_tag(run_id, entry["key"])
            except Exception as exc:  # deleted before: done
                if not is_permanent(exc):
                    raise
        elif op == "update":
            from mlflow.entities import RunStatus

            status = RunStatus.from_string(entry["status"]) if entry["status"] else None
            client._tracking_client.store.update_run_info(run_id, status, entry["end_time"], entry["name"])
        elif op in ("artifact", "artifacts"):
            src = journal.file(entry["files"]["src"])
            if op == "artifact":
                client.log_artifact(run_id, str(src), entry["path"])
            else:
                client.log_artifacts(run_id, str(src), entry["path"])
        elif op == "inputs":
            from mlflow.entities import DatasetInput, LoggedModelInput

            client.log_inputs(run_id, datasets=[DatasetInput.from_proto(_proto(DatasetInput, d))
                                                for d in entry["datasets"]] or None,
                              models=[LoggedModelInput.from_proto(_proto(LoggedModelInput, m))
                                      for m in entry["models"]] or None)
        elif op == "outputs":
            from mlflow.entities import LoggedModelOutput

            client.log_outputs(run_id, [LoggedModelOutput.from_proto(_proto(LoggedModelOutput, m))
                                        for m in entry["models"]])
        elif op == "call":
            module, _, name = entry["fn"].partition(":")
            fn = getattr(importlib.import_module(module), name)
            kwargs = dict(entry["kwargs"])
            for key, rel in entry.get("files", {}).items():
                kwargs[key] = str(journal.file(rel))
            with acting_for(run_id):
                fn(run_id=run_id, **kwargs)
        else:
            raise Refused(f"unknown journal operation {op!r}")


# The protobuf message each journaled entity is written as (MessageToDict of its to_proto()).
_PROTOS = {"DatasetInput": "DatasetInput", "LoggedModelInput": "ModelInput", "LoggedModelOutput": "ModelOutput"}


def _proto(entity: type, data: dict[str, Any]) -> Any:
    from google.protobuf.json_format import ParseDict
    from mlflow.protos import service_pb2

    return ParseDict(data, getattr(service_pb2, _PROTOS[entity.__name__])())


@contextmanager
def acting_for(run_id: str) -> Iterator[None]:
    """Make `run_id` the active run of this thread only, without starting or ending it: what a replayed call
    logs through MLflow's fluent API (a model, its metrics) lands on the journal's run."""
    from mlflow import MlflowClient
    from mlflow.tracking import fluent

    stack = fluent._active_run_stack.get()
    stack.append(fluent.ActiveRun(MlflowClient().get_run(run_id)))
    try:
        yield
    finally:
        stack.pop()
