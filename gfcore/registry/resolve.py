"""Which model `infer` measures: a `models:/` or `runs:/` URI, a path, or the model of a train or quant run,
fetched to a local file or folder that Ultralytics loads. Everything is checked before a run exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gfcore.core.errors import ConfigError, ModelError
from gfcore.core.vocabulary import BACKEND_PRECISION, EXP_TYPE, VERSION_PRECISION, RunKind, version_tag
from gfcore.registry.formats import backend_of
from gfcore.tracking.source import WEIGHTS, finished_run, has_weights

MLMODEL = "MLmodel"


@dataclass
class ResolvedModel:
    path: Path  # the weights: .pt, .onnx, .engine, or an OpenVINO folder
    backend: str  # pytorch, onnx, openvino, tensorrt: follows the file
    uri: str  # what was asked for
    source_run_id: str | None = None  # the run that produced the model, where known
    precision: str | None = None
    imgsz: int | None = None  # the input size it was trained or exported at, where recorded


def resolve_model(model_uri: str | None, source_run_id: str | None, dst: Path) -> ResolvedModel:
    if model_uri:
        if model_uri.startswith("models:/"):
            return _from_registry(model_uri, dst)
        if model_uri.startswith("runs:/"):
            return _from_artifacts(model_uri, dst)
        if "://" in model_uri or model_uri.startswith(("models:", "runs:")):
            raise ConfigError(f"infer.model_uri={model_uri!r} is neither a models:/NAME@alias, models:/NAME/VERSION "
                              "or runs:/RUN_ID/PATH URI nor a local path.")
        path = Path(model_uri).expanduser()
        if not path.exists():
            raise ConfigError(f"infer.model_uri={model_uri!r}: no such file or folder. Give a model file (.pt, "
                              ".onnx, .engine), an OpenVINO folder, or a models:/ or runs:/ URI.")
        return ResolvedModel(path=path, backend=backend_of(path, ModelError), uri=model_uri,
                             precision="fp32" if path.suffix == ".pt" else None)
    if source_run_id:
        return _from_run(source_run_id, dst)
    raise ConfigError("infer needs a model: set infer.model_uri=models:/NAME@champion (or a runs:/ URI or a path), "
                      "or pass the train or quant run with -P source_run_id=RUN_ID (infer.source_run_id=RUN_ID).")


def _from_registry(uri: str, dst: Path) -> ResolvedModel:
    import mlflow
    from mlflow.exceptions import MlflowException

    rest = uri[len("models:/"):]
    client = mlflow.MlflowClient()
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        elif "/" in rest:
            name, version = rest.rsplit("/", 1)
            mv = client.get_model_version(name, version)
        else:
            raise ConfigError(f"infer.model_uri={uri!r} names no version: use models:/{rest}@champion (an alias) or "
                              f"models:/{rest}/1 (a version).")
    except MlflowException as exc:
        raise ConfigError(f"infer.model_uri={uri!r} does not resolve in {mlflow.get_tracking_uri()}: "
                          f"{exc.message.splitlines()[0]}. See `guardianflow models` and `guardianflow versions "
                          "NAME` for what is registered.") from None
    resolved = _from_logged_model(f"models:/{mv.name}/{mv.version}", dst, uri)
    resolved.precision = resolved.precision or version_tag(mv.tags, VERSION_PRECISION)
    return resolved


def _from_artifacts(uri: str, dst: Path) -> ResolvedModel:
    import mlflow

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    except Exception as exc:  # MlflowException, OSError: either way the URI does not give a model
        raise ConfigError(f"infer.model_uri={uri!r} does not resolve: {str(exc).splitlines()[0][:300]}. Check the "
                          "run id and the path within the run (mlflow ui shows both).") from None
    if (local / MLMODEL).is_file():
        return _read_pyfunc(local, uri)
    run_id = uri[len("runs:/"):].split("/", 1)[0]
    return ResolvedModel(path=local, backend=backend_of(local, ModelError), uri=uri, source_run_id=run_id,
                         **_run_record(run_id))


def _from_run(run_id: str, dst: Path) -> ResolvedModel:
    """A train run's weights/best.pt, or the logged (exported) model of a quant run."""
    run = finished_run(run_id)
    if has_weights(run_id):
        return _from_artifacts(f"runs:/{run_id}/{WEIGHTS}", dst)
    if run.data.tags.get(EXP_TYPE) == RunKind.quant:
        outputs = run.outputs.model_outputs if run.outputs else []
        if outputs:  # the run's logged model, whatever it is named
            uri = f"models:/{outputs[-1].model_id}"
            return _from_logged_model(uri, dst, uri)
    raise ConfigError(f"source run {run_id} (exp.type={run.data.tags.get(EXP_TYPE, '?')}) holds no model: use a "
                      "train run (weights/best.pt) or a quant run (its exported model).")


def _from_logged_model(uri: str, dst: Path, asked: str) -> ResolvedModel:
    import mlflow

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    except Exception as exc:
        raise ConfigError(f"{asked} does not resolve to a model: {str(exc).splitlines()[0][:300]}") from None
    return _read_pyfunc(local, asked)


def _read_pyfunc(folder: Path, asked: str) -> ResolvedModel:
    """A GuardianFlow pyfunc model folder: its weights artifact, input size and producing run."""
    import yaml

    meta = yaml.safe_load((folder / MLMODEL).read_text())
    pyfunc = meta.get("flavors", {}).get("python_function", {})
    weights = pyfunc.get("artifacts", {}).get("weights", {}).get("path")
    if not weights or not (folder / weights).exists():
        raise ModelError(f"{asked} is an MLflow model without a `weights` artifact: it was not logged by "
                         "GuardianFlow (train or quant), so infer cannot find its model file.")
    path = folder / weights
    run_id = meta.get("run_id")
    record = _run_record(run_id) if run_id else {}
    imgsz = pyfunc.get("config", {}).get("imgsz") or record.get("imgsz")
    return ResolvedModel(path=path, backend=backend_of(path, ModelError), uri=asked, source_run_id=run_id,
                         precision=record.get("precision"), imgsz=int(imgsz) if imgsz else None)


def _run_record(run_id: str) -> dict:
    """Precision and input size as the producing run recorded them."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        return {}
    imgsz = run.data.params.get("model.imgsz")
    # The tag where the run set it; a train run's precision is its config's (the param of the same name).
    precision = run.data.tags.get(BACKEND_PRECISION) or (run.data.params.get(BACKEND_PRECISION)
                                                         if run.data.tags.get(EXP_TYPE) == RunKind.train else None)
    return {"precision": precision, "imgsz": int(imgsz) if imgsz else None}
