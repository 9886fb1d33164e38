"""Challenger vs champion (`guardianflow challenge NAME`): both versions measured on the same data and machine,
back to back, in one run, with a verdict that says how sure it is (gfcore.verdicts).

The run (exp.type=challenge, in the site's experiment) takes the candidate's logged scenario, measures det.* of
both on the current evaluation split (kept per image, with the figures at the site's operating confidence),
batch-1 latency alternating between the two models round by round (so a noisy neighbour slows both, not one), and
tracking (HOTA, IDF1) where the data has sequences. It records both models' figures (`candidate.*`,
`champion.*`), the differences (`delta.*`) with their 95 % intervals and the smallest difference the split can
show, a table and a chart; the verdict and the run id become tags of the candidate version (`challenge.verdict`,
`challenge.run_id`, `challenge.champion_version`). Without a champion the candidate is measured alone, verdict
`unopposed`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Any

from gfcore.automation.challenge_report import ChallengeResult, report
from gfcore.config import explain, to_typed
from gfcore.config.schema import ChallengeConfig, Config, ExpDesign
from gfcore.core.errors import ConfigError, RegistryError
from gfcore.core.paths import work_dir
from gfcore.core.vocabulary import (
    CHALLENGE_BOOTSTRAP,
    CHALLENGE_CANDIDATE_VERSION,
    CHALLENGE_CHAMPION_VERSION,
    CHALLENGE_MODEL,
    CHALLENGE_REASONS,
    CHALLENGE_RUN_ID,
    CHALLENGE_VERDICT,
    CI_HIGH,
    CI_LOW,
    DELTA,
    DET_MAP50,
    DET_OP,
    LATENCY_PROTOCOL,
    MDE,
    MODEL_URI,
    MOT,
    MOT_HOTA,
    MOT_IDF1,
    RATIO,
    SYS_LATENCY_P50_MS,
    SYS_LATENCY_P95_MS,
    SYS_MODEL_SIZE_MB,
    RunKind,
)
from gfcore.data.dataset import resolve_dataset, split_images
from gfcore.jobs import measure
from gfcore.jobs.infer import as_measured, check_runtime, load_checked, sequences_of, track_and_score
from gfcore.mot import COMBINED
from gfcore.registry import client as registry
from gfcore.registry.register import CANDIDATE, CHAMPION
from gfcore.registry.resolve import resolve_model
from gfcore.tracking.lineage import eval_tags, log_dataset_inputs
from gfcore.tracking.naming import arch_name
from gfcore.tracking.run import owned_run
from gfcore.verdicts.bootstrap import Interval, detection_intervals, latency_intervals
from gfcore.verdicts.decide import Reading, decide
from gfcore.yolo import env as yolo_env

log = logging.getLogger(__name__)

ROLES = ("candidate", "champion")
VERDICTS = ("better", "tie", "worse", "unopposed")
# The figures whose differences (`delta.*`) a challenge records besides every det.* (which get intervals too).
COMPARED = (SYS_LATENCY_P50_MS, SYS_LATENCY_P95_MS, SYS_MODEL_SIZE_MB, MOT_HOTA, MOT_IDF1)
LATENCY_QUANTILES = {SYS_LATENCY_P50_MS: 50, SYS_LATENCY_P95_MS: 95}


def challenge(name: str, candidate: str | None = None, variant: str | None = None,
              overrides: list[str] | tuple[str, ...] = ()) -> ChallengeResult:
    """Measure the candidate (default: the `candidate` alias) of `name` (or of its `variant`, e.g.
    openvino_int8) against the champion; `overrides` (key=value) change the candidate's logged scenario, e.g. the
    data."""
    model = f"{name}__{variant}" if variant else name
    client = registry.mlflow_client()
    registry.require_model(client, model)
    aliases = registry.aliases_of(client, model)
    version = str(candidate) if candidate else aliases.get(CANDIDATE)
    if version is None:
        raise RegistryError(f"{model} has no candidate to challenge: name a version with --candidate "
                            f"(see `guardianflow versions {model}`).")
    mv = registry.require_version(client, model, version)
    champion = aliases.get(CHAMPION)
    if champion == version:
        raise RegistryError(f"version {version} is the champion of {model}: challenge another version "
                            "(--candidate V).")
    versions = {"candidate": version, **({"champion": champion} if champion else {})}
    cfg = config_of(mv.run_id, overrides)
    result = _measure(cfg, model, versions, mv.run_id)
    for key, value in ((CHALLENGE_VERDICT, result.verdict), (CHALLENGE_RUN_ID, result.run_id),
                       (CHALLENGE_CHAMPION_VERSION, champion or "none")):
        client.set_model_version_tag(model, version, key, value)
    return result


def latest(model: str, version: str, champion: str) -> dict[str, Any] | None:
    """The latest finished challenge of `version` against `champion`: its run id, both models' figures and the
    intervals of the differences ({figure: {"low", "high", "ratio"}})."""
    import mlflow

    client = mlflow.MlflowClient()
    tags = client.get_model_version(model, version).tags or {}
    run_id = tags.get(CHALLENGE_RUN_ID)
    if not run_id or tags.get(CHALLENGE_CHAMPION_VERSION) != str(champion):
        return None
    run = client.get_run(run_id)
    if run.info.status != "FINISHED":
        return None
    figures: dict[str, dict[str, float]] = {role: {} for role in ROLES}
    for key, value in run.data.metrics.items():
        role, _, metric = key.partition(".")
        if role in figures:
            figures[role][metric] = value
    return {"run_id": run_id, "champion_version": str(champion), "verdict": run.data.tags.get(CHALLENGE_VERDICT),
            "intervals": recorded_intervals(run.data.metrics), **figures}


def recorded_intervals(metrics: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The intervals a challenge run logged: `delta.X.ci_low` / `.ci_high` (of candidate - champion) and
    `ratio.X.ci_low` / `.ci_high` (of candidate / champion)."""
    out = {}
    for prefix, ratio in ((DELTA, False), (RATIO, True)):
        for key, low in metrics.items():
            if key.startswith(prefix) and key.endswith(CI_LOW):
                figure = key[len(prefix):-len(CI_LOW)]
                high = metrics.get(f"{prefix}{figure}{CI_HIGH}")
                if high is not None:
                    out[figure] = {"low": low, "high": high, "ratio": ratio}
    return out


def readings(intervals: dict[str, Interval], c: ChallengeConfig, safety_classes: list[str], images: str,
             calls: str, sequences: int) -> list[Reading]:
    """The figures the verdict reads, each with its tolerance: det.mAP50, the latency ratio (challenge.latency_figure,
    p50 by default), mot.hota (the range of its per-sequence differences: a handful of sequences is too few for an
    interval) and the recall at the operating confidence of each safety class."""
    out = []
    if DET_MAP50 in intervals:
        out.append(Reading(DET_MAP50, intervals[DET_MAP50], c.map_tolerance, basis=images))
    for cls in safety_classes:
        key = f"{DET_OP}recall.{cls}"
        if key in intervals:
            out.append(Reading(key, intervals[key], c.safety_recall_tolerance, basis=images,
                               label=f"safety class {cls}: {key}"))
    if c.latency_figure in intervals:
        out.append(Reading(c.latency_figure, intervals[c.latency_figure], c.latency_tolerance,
                           higher_is_better=False, ratio=True, basis=calls, guard=True))
    if MOT_HOTA in intervals:
        out.append(Reading(MOT_HOTA, intervals[MOT_HOTA], c.hota_tolerance,
                           basis=f"{sequences} sequences (their range: too few for an interval)"))
    return out


def config_of(run_id: str, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The scenario a run logged (`config/resolved.yaml`) on today's schema, with `key=value` overrides."""
    import mlflow
    import yaml
    from mlflow.exceptions import MlflowException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="config/resolved.yaml")
    except (MlflowException, OSError):
        raise ConfigError(f"run {run_id} has no logged config (config/resolved.yaml): its model cannot be measured "
                          "on its own scenario.") from None
    logged = yaml.safe_load(Path(path).read_text())
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), logged)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"the scenario logged by run {run_id} does not fit today's config: {exc}".strip()) from None
    try:  # apart, so that a bad override is said as one line naming it (gfcore.config.explain)
        merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as exc:
        said = explain.one_line(exc, overrides)
        raise ConfigError(said or f"the overrides {list(overrides)} do not fit the scenario of run {run_id}: "
                                  f"{exc}".strip()) from None
    return to_typed(merged)


def _measure(cfg: Config, model: str, versions: dict[str, str], source_run_id: str) -> ChallengeResult:
    started = time.perf_counter()
    yolo_env.configure()
    dataset = resolve_dataset(cfg.data, cfg.task)
    split = cfg.registry.eval_split
    images = split_images(dataset, split, "registry.eval_split")
    sequences = sequences_of(cfg) if cfg.infer.tracking.enabled else []
    device, c = cfg.backend.device, cfg.challenge
    with work_dir("gf-challenge-") as work:
        refs, models, sizes = {}, {}, {}
        for role, version in versions.items():  # everything loads and runs before the run exists
            refs[role] = ref = resolve_model(f"models:/{model}/{version}", None, work / role)
            check_runtime(ref, device)
            sizes[role] = ref.imgsz or cfg.model.imgsz
            models[role] = load_checked(ref, images[0], sizes[role], device, dataset.names)
        measured = as_measured(cfg, refs["candidate"])
        measured = dataclasses.replace(measured, exp=dataclasses.replace(measured.exp, design=ExpDesign.comparison))
        against = f"v{versions['champion']}" if "champion" in versions else "alone"
        name = (f"{cfg.task.type.value}-{arch_name(cfg.model.architecture)}-challenge-{measured.backend.variant}-"
                f"v{versions['candidate']}-vs-{against}")
        n_images, calls = dataset.counts.get(split, 0), c.runs or cfg.latency.runs
        basis = {"images": f"{n_images} {split} images", "calls": f"{calls} timed calls per model"}
        tags = {CHALLENGE_MODEL: model, CHALLENGE_CANDIDATE_VERSION: versions["candidate"],
                CHALLENGE_CHAMPION_VERSION: versions.get("champion", "none"), MODEL_URI: refs["candidate"].uri,
                **eval_tags(dataset, split),
                LATENCY_PROTOCOL: f"batch 1: {cfg.latency.warmup} untimed warm-up, then {calls} timed predict() "
                f"calls per model on the {n_images} {split} images (cycled), imgsz {sizes['candidate']}, device "
                f"{device}; the two models alternate in {c.rounds} rounds, each figure the median over the rounds",
                CHALLENGE_BOOTSTRAP: f"paired bootstrap over the {n_images} {split} images, {c.resamples} "
                f"resamples, seed {c.seed}; latency: the timed calls resampled within each of the {c.rounds} "
                "rounds" + (f"; tracking: {len(sequences)} sequences, their range (too few for an interval)"
                            if sequences else "")}
        with owned_run(measured, RunKind.challenge, data_hash=dataset.hash, data_pin=dataset.pin, source_run_id=source_run_id,
                       extra_tags=tags, name=name) as run:
            log_dataset_inputs(dataset, contexts={split: "evaluation"})
            figures, per_image = {}, {}
            for role in versions:
                figures[role], per_image[role] = measure.detection_results(
                    models[role], dataset.data_yaml, split, sizes[role], device, dataset.names, conf=cfg.infer.conf,
                    iou=cfg.infer.iou, op_conf=cfg.site.conf_threshold)
            rounds = _latency_back_to_back(models, sizes, images, device, cfg)
            for role, (lat, _) in rounds.items():
                figures[role].update(lat)
                figures[role][SYS_MODEL_SIZE_MB] = measure.model_size_mb(refs[role].path)
            per_sequence = _with_tracking(figures, models, sizes, cfg, sequences, device, work) if sequences else {}
            t0 = time.perf_counter()
            intervals = _intervals(figures, per_image, rounds, per_sequence, c) if "champion" in versions else {}
            bootstrap_s = time.perf_counter() - t0
            read = readings(intervals, c, list(cfg.task.safety_classes), basis["images"], basis["calls"],
                            len(sequences))
            verdict, reasons = decide(read) if "champion" in versions else (
                "unopposed", ["no champion to compare with: the candidate was measured alone"])
            deltas = {m: i.point for m, i in intervals.items() if m not in LATENCY_QUANTILES}
            deltas.update({m: figures["candidate"][m] - figures["champion"][m] for m in COMPARED
                           if "champion" in figures and m in figures["candidate"] and m in figures["champion"]})
            for role, values in figures.items():
                run.log_metrics({f"{role}.{k}": v for k, v in values.items()})
            run.log_metrics({f"{DELTA}{k}": v for k, v in deltas.items()})
            run.log_metrics(interval_metrics(intervals))
            run.set_tags({CHALLENGE_VERDICT: verdict, CHALLENGE_REASONS: "; ".join(reasons)[:4000]})
            result = ChallengeResult(model, versions["candidate"], versions.get("champion"), verdict, reasons,
                                     run.run_id, figures, deltas, intervals, read, bootstrap_s=bootstrap_s)
            report(result, measured, work, per_sequence)
    result.wall_s = time.perf_counter() - started
    log.info("challenge %s v%s vs %s: %s (run %s)", model, result.candidate, against, verdict, result.run_id)
    return result


def _intervals(figures: dict[str, dict[str, float]], per_image: dict[str, Any],
               rounds: dict[str, tuple[dict[str, float], list[Any]]], per_sequence: dict[str, dict[str, dict]],
               c: ChallengeConfig) -> dict[str, Interval]:
    """Every det.* difference (paired bootstrap over images), the p50 / p95 latency ratios (calls resampled within
    rounds) and, where there is tracking, the combined HOTA / IDF1 difference with the range over sequences."""
    out = detection_intervals(per_image["candidate"], per_image["champion"], c.resamples, c.seed)
    out.update(latency_intervals(rounds["candidate"][1], rounds["champion"][1], c.resamples, c.seed,
                                 LATENCY_QUANTILES))
    for metric in (MOT_HOTA, MOT_IDF1):
        key = metric[len(MOT):]
        seqs = [s for s in per_sequence.get("candidate", {}) if s != COMBINED and s in per_sequence["champion"]]
        if seqs and metric in figures["candidate"] and metric in figures["champion"]:
            diffs = [per_sequence["candidate"][s][key] - per_sequence["champion"][s][key] for s in seqs]
            point = figures["candidate"][metric] - figures["champion"][metric]
            out[metric] = Interval(point, min(diffs), max(diffs))
    return out


def interval_metrics(intervals: dict[str, Interval]) -> dict[str, float]:
    """`delta.X.ci_low` / `.ci_high` / `.mde` (latency: `ratio.X` with its interval; tracking: `delta.X.seq_min`
    / `.seq_max`, the range over sequences)."""
    out = {}
    for figure, i in intervals.items():
        if figure in LATENCY_QUANTILES:
            out.update({f"{RATIO}{figure}": i.point, f"{RATIO}{figure}{CI_LOW}": i.low,
                        f"{RATIO}{figure}{CI_HIGH}": i.high})
            if i.mde is not None:
                out[f"{RATIO}{figure}{MDE}"] = i.mde
        elif figure.startswith(MOT):
            out.update({f"{DELTA}{figure}.seq_min": i.low, f"{DELTA}{figure}.seq_max": i.high})
        else:
            out.update({f"{DELTA}{figure}{CI_LOW}": i.low, f"{DELTA}{figure}{CI_HIGH}": i.high})
            if i.mde is not None:
                out[f"{DELTA}{figure}{MDE}"] = i.mde
    return {k: v for k, v in out.items() if math.isfinite(v)}


def _latency_back_to_back(models: dict[str, Any], sizes: dict[str, int], images: list[Path], device: str,
                          cfg: Config) -> dict[str, tuple[dict[str, float], list[Any]]]:
    """Batch-1 latency of each model: the timed calls split into rounds that alternate which model goes first; each
    figure is the median over the rounds of that round's figure. A burst of load on this shared machine lasts
    seconds and lands in one round of one model: pooled, its slow calls would move that model's p95; as one round
    in five it moves nothing (bench/challenge_fidelity.py measures both). Returned with each round's wall times,
    which the latency intervals resample."""
    from tqdm import tqdm

    rounds, roles = cfg.challenge.rounds, list(models)
    per_round = max(1, (cfg.challenge.runs or cfg.latency.runs) // rounds)
    frames = measure.read_frames(images)
    figures: dict[str, list[dict[str, float]]] = {role: [] for role in roles}
    walls: dict[str, list[Any]] = {role: [] for role in roles}
    total = len(roles) * (cfg.latency.warmup + rounds * (per_round + 2))
    with tqdm(total=total, desc="latency (back to back)", unit="call") as bar:
        for role in roles:
            measure.time_batches(models[role], frames, sizes[role], device, 1, cfg.latency.warmup, 0, bar.update)
        for r in range(rounds):
            for role in (roles if r % 2 == 0 else roles[::-1]):
                # Two untimed calls: the other model just ran and may have taken the caches.
                got = measure.time_batches(models[role], frames, sizes[role], device, 1, 2, per_round, bar.update)
                figures[role].append(measure.batch_metrics(got))
                walls[role].append(got.wall_ms)
    return {role: ({k: statistics.median(f[k] for f in per) for k in per[0]}, walls[role])
            for role, per in figures.items()}


def _with_tracking(figures: dict[str, dict[str, float]], models: dict[str, Any], sizes: dict[str, int], cfg: Config,
                   sequences: list[Any], device: str, work: Path) -> dict[str, dict[str, dict[str, float]]]:
    """mot.* of each model into `figures`; returns each model's per-sequence results."""
    import mlflow

    per_sequence = {}
    for role, model in models.items():
        tracks = work / "tracking" / role
        per_sequence[role] = results = track_and_score(model, cfg, sequences, sizes[role], device, tracks,
                                                       label=f" {role}")
        figures[role].update({f"{MOT}{k}": v for k, v in results[COMBINED].items()})
        mlflow.log_artifacts(str(tracks), f"tracking/{role}")
    return per_sequence
