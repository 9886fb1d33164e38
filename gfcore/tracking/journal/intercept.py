"""Where MLflow's writes of a journaled run are turned into journal entries.

Every GuardianFlow job records through MLflow (fluent calls, MlflowClient, its system-metrics monitor, model
logging): all of them reach the tracking store through `TrackingServiceClient`. While a run has a journal, the
store MLflow is handed records that run's params, tags, metrics, inputs, outputs and status changes into the
journal instead of sending them, and `log_artifact(s)` copy the files into it; reads, other runs and the
journal's own sender go to the server as before."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gfcore.tracking.journal.store import Journal

_journals: dict[str, Journal] = {}  # run id -> its journal, for the runs this process records
_local = threading.local()
_installed = False
_wake: list[Any] = []  # callables told of each new entry (the senders)
_flush: dict[str, Any] = {}  # run id -> wait until what was written for it has been sent


def _nothing() -> None:
    return None


def journal_of(run_id: str | None) -> Journal | None:
    """The journal a write to `run_id` goes to, or None to send it (no journal, or this is the sender)."""
    if not run_id or getattr(_local, "sending", False):
        return None
    return _journals.get(run_id)


@contextmanager
def sending() -> Iterator[None]:
    """Calls made inside go to the server itself (the sender replaying a journal)."""
    before = getattr(_local, "sending", False)
    _local.sending = True
    try:
        yield
    finally:
        _local.sending = before


def attach(run_id: str, journal: Journal, wake: Any, flush: Any) -> None:
    install()
    _journals[run_id] = journal
    _wake.append(wake)
    _flush[run_id] = flush


def detach(run_id: str, wake: Any = None) -> None:
    _journals.pop(run_id, None)
    _flush.pop(run_id, None)
    if wake in _wake:
        _wake.remove(wake)


def record(run_id: str, entry: dict[str, Any], files: dict[str, Path] | None = None) -> None:
    journal = _journals[run_id]
    journal.append(entry, files)
    for wake in list(_wake):
        wake()


def metric_dict(m: Any) -> dict[str, Any]:
    return {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step, "model_id": m.model_id,
            "dataset_name": m.dataset_name, "dataset_digest": m.dataset_digest}


def _proto_dicts(items: Any) -> list[dict[str, Any]]:
    from google.protobuf.json_format import MessageToDict

    return [MessageToDict(x.to_proto()) for x in items or ()]


def _journaling_class(store_cls: type) -> type:
    """A subclass of the real store whose run writes go to the run's journal when it has one."""

    class JournalingStore(store_cls):  # type: ignore[misc, valid-type]
        def get_run(self, run_id):
            if journal_of(run_id) is not None:
                _flush.get(run_id, _nothing)()
            return super().get_run(run_id)

        def get_metric_history(self, run_id, metric_key, *args, **kwargs):
            if journal_of(run_id) is not None:
                _flush.get(run_id, _nothing)()
            return super().get_metric_history(run_id, metric_key, *args, **kwargs)

        def log_batch(self, run_id, metrics, params, tags):
            if journal_of(run_id) is None:
                return super().log_batch(run_id, metrics, params, tags)
            record(run_id, {"op": "batch", "metrics": [metric_dict(m) for m in metrics],
                            "params": [[p.key, p.value] for p in params], "tags": [[t.key, t.value] for t in tags]})

        def log_metric(self, run_id, metric):
            return self.log_batch(run_id, [metric], [], [])

        def log_param(self, run_id, param):
            return self.log_batch(run_id, [], [param], [])

        def set_tag(self, run_id, tag):
            return self.log_batch(run_id, [], [], [tag])

        def delete_tag(self, run_id, key):
            if journal_of(run_id) is None:
                return super().delete_tag(run_id, key)
            record(run_id, {"op": "delete_tag", "key": key})

        def update_run_info(self, run_id, run_status, end_time, run_name):
            if journal_of(run_id) is None:
                return super().update_run_info(run_id, run_status, end_time, run_name)
            from mlflow.entities import RunStatus

            record(run_id, {"op": "update", "status": RunStatus.to_string(run_status) if run_status else None,
                            "end_time": end_time, "name": run_name})

        def log_inputs(self, run_id, datasets=None, models=None):
            if journal_of(run_id) is None:
                return super().log_inputs(run_id, datasets=datasets, models=models)
            record(run_id, {"op": "inputs", "datasets": _proto_dicts(datasets), "models": _proto_dicts(models)})

        def log_outputs(self, run_id, models):
            if journal_of(run_id) is None:
                return super().log_outputs(run_id, models)
            record(run_id, {"op": "outputs", "models": _proto_dicts(models)})

    JournalingStore.__name__ = JournalingStore.__qualname__ = f"Journaling{store_cls.__name__}"
    return JournalingStore


_classes: dict[type, type] = {}
_proxies: dict[int, Any] = {}


def _journaling(store: Any) -> Any:
    """The same store (same state, same class for isinstance checks) with journaling writes."""
    proxy = _proxies.get(id(store))
    if proxy is None:
        cls = _classes.setdefault(type(store), _journaling_class(type(store)))
        proxy = object.__new__(cls)
        proxy.__dict__ = store.__dict__  # shares the real store's state, not a copy
        _proxies[id(store)] = proxy
    return proxy


def install() -> None:
    """Route MLflow's store and artifact writes through here (once per process; inert without journals)."""
    global _installed
    if _installed:
        return
    from mlflow.tracking._tracking_service import client as tsc
    from mlflow.tracking._tracking_service import utils

    cls = tsc.TrackingServiceClient
    original_log_artifact, original_log_artifacts = cls.log_artifact, cls.log_artifacts

    def store(self):
        real = utils._get_store(self.tracking_uri)
        return _journaling(real) if _journals else real

    def log_artifact(self, run_id, local_path, artifact_path=None):
        if journal_of(run_id) is None:
            return original_log_artifact(self, run_id, local_path, artifact_path)
        record(run_id, {"op": "artifact", "path": artifact_path}, {"src": Path(local_path)})

    def log_artifacts(self, run_id, local_dir, artifact_path=None):
        if journal_of(run_id) is None:
            return original_log_artifacts(self, run_id, local_dir, artifact_path)
        record(run_id, {"op": "artifacts", "path": artifact_path}, {"src": Path(local_dir)})

    original_set_terminated = cls.set_terminated

    def set_terminated(self, run_id, status=None, end_time=None):
        # MLflow's own would first read the run back to print its URL: not while the server may be away.
        if journal_of(run_id) is None:
            return original_set_terminated(self, run_id, status, end_time)
        from mlflow.utils.time import get_current_time_millis

        record(run_id, {"op": "update", "status": status or "FINISHED", "end_time": end_time or
                        get_current_time_millis(), "name": None})

    cls.store = property(store)
    cls.set_terminated = set_terminated
    cls.log_artifact = log_artifact
    cls.log_artifacts = log_artifacts
    _installed = True
