"""Wrapping an old script: run it unchanged in its own folder and record what it did as an MLflow run.

The script runs with the current Python, without a shell, its arguments built from the registry's template
(each value one argument, so nothing needs quoting). Its output streams to the console and into
stdout.txt / stderr.txt; the files it created or changed are collected by kind; a model file it wrote is
registered under the site's name. Its environment has no MLFLOW_RUN_ID, so a script that uses MLflow itself
starts runs of its own (in the same experiment) and cannot take over or end the wrapper's run.
"""

from __future__ import annotations

import collections
import logging
import os
import shlex
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import IO

from gfcore.config.schema import TrackingConfig, check_name_part
from gfcore.core import interrupts
from gfcore.core.errors import ConfigError
from gfcore.core.vocabulary import (
    ERROR_TAG,
    EXP_TYPE,
    EXP_VERSION,
    MAX_TAG_VALUE,
    SCRIPT_OUTPUT,
    SITE_CUSTOMER,
    SITE_PLANT,
    SITE_REGION,
    SITE_ZONE,
    TASK_CLASSES,
    TASK_TYPE,
    VERSION_BACKEND,
    VERSION_IMGSZ,
    VERSION_PRECISION,
    VERSION_RUN_ID,
    VERSION_TASK,
    WRAP,
    WRAP_TYPE,
    WRAPPED,
    WRAPPED_ARGS,
    WRAPPED_EXPERIMENT,
    WRAPPED_PATTERN,
    WRAPPED_SCRIPT,
    WRAPPED_SOURCE_DIR,
    RunKind,
)
from gfcore.legacy.experiments_registry import Chosen, Entry
from gfcore.registry.register import register_model
from gfcore.tracking.naming import experiment_name, registered_model_name, variant_model_name, wrap_run_name
from gfcore.tracking.run import ensure_experiment, last_system_sample
from gfcore.tracking.server import check_tracking_store

log = logging.getLogger(__name__)

KINDS = {  # what a produced file is, by suffix
    "weights": {".pt", ".pth", ".onnx", ".engine", ".tflite", ".xml", ".bin", ".safetensors"},
    "plots": {".png", ".jpg", ".jpeg", ".svg", ".pdf"},
    "results": {".csv", ".json", ".txt", ".log", ".tsv"},
    "configs": {".yaml", ".yml", ".toml", ".ini", ".cfg"},
}
SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints"}
STDERR_TAIL = 20
# MLflow's system metrics (system/*: CPU, memory, disk, network, GPU) every this many seconds, as an entry point's runs
SYSTEM_METRICS_INTERVAL_S = TrackingConfig.system_metrics_interval_s


@dataclass
class WrapResult:
    run_id: str
    status: str  # FINISHED, FAILED or KILLED
    exit_code: int | None
    collected: dict[str, list[str]] = field(default_factory=dict)
    registered: list[tuple[str, str]] = field(default_factory=list)
    run_name: str = ""
    chosen: str = ""  # how the script was chosen, when a pattern of the registry chose it


def build_args(template: str | None, params: dict[str, str]) -> list[str]:
    """The script's arguments: the template's fields filled from `params`, or `--key value` per param."""
    if not template:
        return [a for key, value in params.items() for a in (f"--{key}", value)]
    tokens = shlex.split(template)
    fields = {f for token in tokens for _, f, _, _ in string.Formatter().parse(token) if f}
    missing = sorted(fields - set(params))
    if missing:
        raise ConfigError(f"the arguments template {template!r} needs {', '.join(missing)}: pass "
                          + " ".join(f"-p {m}=VALUE" for m in missing) + ".")
    unused = sorted(set(params) - fields)
    if unused:
        log.warning("-p %s: not in the template %r; recorded as params, not passed to the script",
                    ", ".join(unused), template)
    return [token.format(**params) for token in tokens]


def wrap(entry: Entry, kind: str, script: str | None = None, params: dict[str, str] | None = None,
         timeout: float | None = None, register: bool = True, name: str | None = None, version: str = "v1",
         system_metrics_interval_s: float | None = SYSTEM_METRICS_INTERVAL_S) -> WrapResult:
    """Run `entry`'s `kind` script (`script`, else the registry's default, else its best pattern match) as run
    `{task}-{name}-wrap-{version}` (`name`: the script's name unless given), with MLflow's system metrics sampled
    every `system_metrics_interval_s` seconds while it runs (None or 0: none)."""
    import mlflow

    params = dict(params or {})
    if name is not None:
        check_name_part("wrap --name", name)
    check_name_part("wrap --version", version)
    chosen = entry.choose(kind, script)
    if chosen.said:
        log.info("%s", chosen.said)
    path = chosen.path
    if path.suffix == ".ipynb":
        raise ConfigError(f"{path.name} is a notebook: export it first (jupyter nbconvert --to script "
                          f"{path.name}) and wrap the script.")
    scripts = entry.scripts(kind)
    args = build_args(scripts.args_template if scripts else None, params)
    check_tracking_store()
    experiment = experiment_name(entry.spec.site)
    experiment_id = ensure_experiment(experiment)

    system_metrics = bool(system_metrics_interval_s and system_metrics_interval_s > 0)
    if system_metrics:
        mlflow.set_system_metrics_sampling_interval(system_metrics_interval_s)
        mlflow.set_system_metrics_samples_before_logging(1)

    before = _snapshot(entry.folder)
    run_name = wrap_run_name(entry.spec.task.type.value, name or path.stem, version)
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, log_system_metrics=system_metrics,
                           tags={**_tags(entry, kind, path, chosen), EXP_VERSION: version})
    mlflow.log_params({**params, WRAPPED_ARGS: " ".join(shlex.quote(a) for a in args)})
    status, code = "FAILED", None
    try:
        with tempfile.TemporaryDirectory(prefix="gf-wrap-") as tmp:
            try:
                code, error, duration = _run(path, args, entry.folder, _child_env(experiment), timeout, Path(tmp))
                status = "FINISHED" if code == 0 else ("KILLED" if error.startswith("timed out") else "FAILED")
            finally:
                for name in ("stdout.txt", "stderr.txt"):
                    mlflow.log_artifact(str(Path(tmp) / name))
            mlflow.log_metrics({f"{WRAP}exit_code": code if code is not None else -1, f"{WRAP}duration_s": duration})
            collected = _collect(entry.folder, before)
            registered = _register(entry, collected, params, run.info.run_id) if register and status == "FINISHED" else []
            if status != "FINISHED":
                mlflow.set_tag(ERROR_TAG, error[:MAX_TAG_VALUE])
            if system_metrics:  # a script shorter than one interval still gets a sample: its state at the end
                last_system_sample(run.info.run_id)
    except BaseException as exc:
        from gfcore.tracking.run import end_run, record_failure

        killed = isinstance(exc, KeyboardInterrupt)
        record_failure("interrupted (Ctrl-C or SIGTERM)" if killed else f"{type(exc).__name__}: {exc}", exc)
        end_run("KILLED" if killed else "FAILED")
        raise
    mlflow.end_run(status)
    return WrapResult(run.info.run_id, status, code, {k: sorted(v) for k, v in collected.items()}, registered,
                      run_name, chosen.said)


def _tags(entry: Entry, kind: str, path: Path, chosen: Chosen) -> dict[str, str]:
    site, task = entry.spec.site, entry.spec.task
    return {EXP_TYPE: RunKind.wrap.value, WRAP_TYPE: kind, WRAPPED: "true", WRAPPED_EXPERIMENT: entry.name,
            WRAPPED_SCRIPT: str(path.relative_to(entry.folder)), WRAPPED_SOURCE_DIR: str(entry.folder),
            SITE_CUSTOMER: site.customer, SITE_REGION: site.region, SITE_PLANT: site.plant,
            SITE_ZONE: site.zone, TASK_TYPE: task.type.value, TASK_CLASSES: ",".join(task.classes),
            **({WRAPPED_PATTERN: chosen.pattern} if chosen.pattern else {})}


def _child_env(experiment: str) -> dict[str, str]:
    import mlflow

    env = dict(os.environ)
    env.pop("MLFLOW_RUN_ID", None)  # never the wrapper's run
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    env["MLFLOW_EXPERIMENT_NAME"] = experiment  # the script's own runs land beside the wrapper's
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):  # relative: the script runs elsewhere
        uri = f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    env["MLFLOW_TRACKING_URI"] = uri
    env.setdefault("YOLO_OFFLINE", "1")  # nothing downloads at run time, wrapped or not
    env.setdefault("YOLO_AUTOINSTALL", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(path: Path, args: list[str], cwd: Path, env: dict[str, str], timeout: float | None,
         out: Path) -> tuple[int | None, str, float]:
    """Run the script, streaming both outputs live and into files; (exit code, error text, seconds)."""
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
    start = time.monotonic()
    with (out / "stdout.txt").open("w") as out_fh, (out / "stderr.txt").open("w") as err_fh, interrupts.sigterm_raises():
        proc = subprocess.Popen([sys.executable, str(path), *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        pumps = [threading.Thread(target=_pump, args=(proc.stdout, sys.stdout, out_fh, None), daemon=True),
                 threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, err_fh, tail), daemon=True)]
        for p in pumps:
            p.start()
        deadline = None if timeout is None else start + timeout
        try:
            # Short waits, not one blocking waitpid: a signal may be delivered to a pump thread, and the main
            # thread only sees Ctrl-C or SIGTERM when it runs Python code again.
            while True:
                try:
                    code = proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    if deadline is not None and time.monotonic() >= deadline:
                        _kill_group(proc)
                        return (None, f"timed out after {timeout:g} s; the script's whole process group was killed",
                                time.monotonic() - start)
        except BaseException:
            _kill_group(proc)  # Ctrl-C or SIGTERM: never leave the script running
            raise
        finally:
            for p in pumps:
                p.join(timeout=5)
    duration = time.monotonic() - start
    if code != 0:
        return code, f"exit code {code}: " + "".join(tail).strip(), duration
    return code, "", duration


def _pump(src: IO[str], console: IO[str], copy: IO[str], tail: collections.deque | None) -> None:
    for line in src:
        console.write(line)
        console.flush()
        copy.write(line)
        if tail is not None:
            tail.append(line)


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for path in folder.rglob("*"):
        if path.is_file() and not SKIP_DIRS & set(path.relative_to(folder).parts):
            st = path.stat()
            out[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


def _collect(folder: Path, before: dict[str, tuple[int, int]]) -> dict[str, list[str]]:
    """Log the files the script created or changed, under outputs/{weights,results,plots,configs,other}/."""
    import mlflow

    collected: dict[str, list[str]] = {}
    for rel, stat in sorted(_snapshot(folder).items()):
        if before.get(rel) == stat:
            continue
        kind = next((k for k, suffixes in KINDS.items() if Path(rel).suffix.lower() in suffixes), "other")
        parent = Path(rel).parent
        mlflow.log_artifact(str(folder / rel), f"outputs/{kind}" + ("" if parent == Path(".") else f"/{parent}"))
        collected.setdefault(kind, []).append(rel)
    return collected


def _register(entry: Entry, collected: dict[str, list[str]], params: dict[str, str], run_id: str) -> list[tuple[str, str]]:
    """The model files the script wrote: a .pt as the site's base model, exports as the matching variants."""
    from gfcore.registry.pyfunc import log_detector

    weights = collected.get("weights", [])
    picks: dict[tuple[str, str], str] = {}
    pts = [w for w in weights if w.endswith((".pt", ".pth"))]
    if pts:
        picks[("pytorch", "")] = next((w for w in pts if Path(w).name == "best.pt"), pts[-1])
    for w in weights:
        name = w.lower()
        if name.endswith(".onnx"):
            picks.setdefault(("onnx", _precision(name)), w)
        elif name.endswith(".engine"):
            picks.setdefault(("tensorrt", _precision(name)), w)
        elif name.endswith(".xml") and "_openvino_model" in name:
            picks.setdefault(("openvino", _precision(name)), str(Path(w).parent))
    cfg = SimpleNamespace(site=entry.spec.site, task=entry.spec.task)
    base = registered_model_name(cfg)
    imgsz = int(params.get("imgsz", 640))
    done = []
    for (backend, precision), rel in picks.items():
        name = base if backend == "pytorch" else variant_model_name(base, backend, precision)
        tags = {VERSION_RUN_ID: run_id, VERSION_BACKEND: backend, VERSION_PRECISION: precision or "fp32",
                WRAPPED: "true", SCRIPT_OUTPUT: rel, VERSION_IMGSZ: imgsz, VERSION_TASK: entry.spec.task.type.value}
        # Not measured by GuardianFlow: no headline figures and no eval.* basis on this version.
        info = log_detector(entry.folder / rel, imgsz, None, "cpu",
                            name=f"{entry.spec.task.type.value}-wrapped-{backend}_{precision or 'fp32'}")
        reg = register_model(info.model_uri, name, cfg, run_id, tags)
        log.info("registered %s version %s (alias candidate) from %s", reg.name, reg.version, rel)
        done.append((reg.name, reg.version))
    return done


def _precision(name: str) -> str:
    return "int8" if "int8" in name else "fp16" if ("fp16" in name or "half" in name) else "fp32"
