"""Challenger vs champion (`guardianflow challenge NAME`): both versions measured on the same data and machine,
back to back, in one run, with a verdict that promotion gates and alerts read.

The run (exp.type=challenge, in the site's experiment) takes the candidate's logged scenario, measures det.* of
both on the current evaluation split, batch-1 latency alternating between the two models round by round (so a
noisy neighbour slows both, not one), and tracking (HOTA, IDF1) where the data has sequences. It records both
models' figures (`candidate.*`, `champion.*`), the differences (`delta.*`), a table and a chart; the verdict and
the run id become tags of the candidate version (`challenge.verdict`, `challenge.run_id`,
`challenge.champion_version`). Without a champion the candidate is measured alone, verdict `unopposed`.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gfcore.config import to_typed
from gfcore.config.schema import ChallengeConfig, Config, ExpDesign
from gfcore.core.errors import ConfigError, RegistryError
from gfcore.core.paths import work_dir
from gfcore.core.vocabulary import (
    CHALLENGE_CANDIDATE_VERSION,
    CHALLENGE_CHAMPION_VERSION,
    CHALLENGE_MODEL,
    CHALLENGE_REASONS,
    CHALLENGE_RUN_ID,
    CHALLENGE_VERDICT,
    DELTA,
    DET_MAP50,
    DET_MAP50_95,
    DET_PRECISION,
    DET_RECALL,
    LATENCY_PROTOCOL,
    MODEL_URI,
    MOT,
    MOT_HOTA,
    MOT_IDF1,
    SYS_LATENCY_P50_MS,
    SYS_LATENCY_P95_MS,
    SYS_MODEL_SIZE_MB,
    RunKind,
)
from gfcore.data.dataset import resolve_dataset, split_images
from gfcore.jobs import measure
from gfcore.jobs.infer import as_measured, check_runtime, load_checked, sequences_of, track_and_score
from gfcore.jobs.plots import source_vs_variant
from gfcore.mot import COMBINED
from gfcore.orchestration.results import FIGURES, Report
from gfcore.registry import client as registry
from gfcore.registry.register import CANDIDATE, CHAMPION
from gfcore.registry.resolve import resolve_model
from gfcore.tracking.lineage import eval_tags, log_dataset_inputs
from gfcore.tracking.naming import arch_name
from gfcore.tracking.run import owned_run
from gfcore.yolo import env as yolo_env

log = logging.getLogger(__name__)

ROLES = ("candidate", "champion")
VERDICTS = ("better", "tie", "worse", "unopposed")
# The figures whose differences (`delta.*`) a challenge records.
COMPARED = (DET_MAP50, DET_MAP50_95, DET_PRECISION, DET_RECALL, SYS_LATENCY_P50_MS, SYS_LATENCY_P95_MS,
            SYS_MODEL_SIZE_MB, MOT_HOTA, MOT_IDF1)


@dataclass
class ChallengeResult:
    model: str
    candidate: str
    champion: str | None
    verdict: str
    reasons: list[str]
    run_id: str
    figures: dict[str, dict[str, float]] = field(default_factory=dict)  # role -> metric -> value
    deltas: dict[str, float] = field(default_factory=dict)  # candidate - champion
    table: str = ""  # the result table, for the terminal


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
    """The latest finished challenge of `version` against `champion`: its run id and both models' figures."""
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
            **figures}


def decide(figures: dict[str, dict[str, float]], c: ChallengeConfig) -> tuple[str, list[str]]:
    """The verdict and its reasons: worse when a figure is worse than the champion's by more than its tolerance,
    better when none is and one is better by more than it, else tie."""
    if "champion" not in figures:
        return "unopposed", ["no champion to compare with: the candidate was measured alone"]
    cand, champ = figures["candidate"], figures["champion"]
    worse, better = [], []
    checks = ((DET_MAP50, c.map_tolerance, False), (MOT_HOTA, c.hota_tolerance, False),
              (SYS_LATENCY_P95_MS, c.latency_tolerance, True))
    for metric, tolerance, relative in checks:
        if metric not in cand or metric not in champ:
            continue
        a, b = cand[metric], champ[metric]
        if relative:  # lower is better; compared as a ratio
            ratio = a / b if b > 0 else 1.0
            if ratio > 1 + tolerance:
                worse.append(f"{metric} {a:.2f} is {ratio:.2f}x the champion's {b:.2f} (tolerance {tolerance:.0%})")
            elif ratio < 1 - tolerance:
                better.append(f"{metric} {a:.2f} is {ratio:.2f}x the champion's {b:.2f}")
        elif a < b - tolerance:
            worse.append(f"{metric} {a:.4f} < the champion's {b:.4f} - {tolerance:g}")
        elif a > b + tolerance:
            better.append(f"{metric} {a:.4f} > the champion's {b:.4f} + {tolerance:g}")
    if worse:
        return "worse", worse
    if better:
        return "better", better
    return "tie", ["every compared figure is within its tolerance of the champion's"]


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
        merged = OmegaConf.merge(OmegaConf.structured(Config), logged, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"the scenario logged by run {run_id} with overrides {list(overrides)} does not fit "
                          f"today's config: {exc}".strip()) from None
    return to_typed(merged)


def _measure(cfg: Config, model: str, versions: dict[str, str], source_run_id: str) -> ChallengeResult:

    yolo_env.configure()
    dataset = resolve_dataset(cfg.data, cfg.task)
    split = cfg.registry.eval_split
    images = split_images(dataset, split, "registry.eval_split")
    sequences = sequences_of(cfg) if cfg.infer.tracking.enabled else []
    device = cfg.backend.device
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
        tags = {CHALLENGE_MODEL: model, CHALLENGE_CANDIDATE_VERSION: versions["candidate"],
                CHALLENGE_CHAMPION_VERSION: versions.get("champion", "none"), MODEL_URI: refs["candidate"].uri,
                **eval_tags(dataset, split),
                LATENCY_PROTOCOL: f"batch 1: {cfg.latency.warmup} untimed warm-up, then "
                f"{cfg.challenge.runs or cfg.latency.runs} timed predict() calls per model on the "
                f"{dataset.counts.get(split, 0)} {split} images (cycled), imgsz {sizes['candidate']}, device {device}; "
                f"the two models alternate in {cfg.challenge.rounds} rounds, each figure the median over the rounds"}
        with owned_run(measured, RunKind.challenge, data_hash=dataset.hash, source_run_id=source_run_id,
                       extra_tags=tags, name=name) as run:
            log_dataset_inputs(dataset, contexts={split: "evaluation"})
            figures = {role: measure.detection(models[role], dataset.data_yaml, split, sizes[role], device,
                                               dataset.names, conf=cfg.infer.conf, iou=cfg.infer.iou)
                       for role in versions}
            for role, lat in _latency_back_to_back(models, sizes, images, device, cfg).items():
                figures[role].update(lat)
                figures[role][SYS_MODEL_SIZE_MB] = measure.model_size_mb(refs[role].path)
            if sequences:
                figures = _with_tracking(figures, models, sizes, cfg, sequences, device, work)
            verdict, reasons = decide(figures, cfg.challenge)
            deltas = {m: figures["candidate"][m] - figures["champion"][m] for m in COMPARED
                      if "champion" in figures and m in figures["candidate"] and m in figures["champion"]}
            for role, values in figures.items():
                run.log_metrics({f"{role}.{k}": v for k, v in values.items()})
            run.log_metrics({f"{DELTA}{k}": v for k, v in deltas.items()})
            run.set_tags({CHALLENGE_VERDICT: verdict, CHALLENGE_REASONS: "; ".join(reasons)[:4000]})
            result = ChallengeResult(model, versions["candidate"], versions.get("champion"), verdict, reasons,
                                     run.run_id, figures, deltas)
            _report(result, measured, work)
    log.info("challenge %s v%s vs %s: %s (run %s)", model, result.candidate, against, verdict, result.run_id)
    return result


def _latency_back_to_back(models: dict[str, Any], sizes: dict[str, int], images: list[Path], device: str,
                          cfg: Config) -> dict[str, dict[str, float]]:
    """Batch-1 latency of each model: the timed calls split into rounds that alternate which model goes first; each
    figure is the median over the rounds of that round's figure. A burst of load on this shared machine lasts
    seconds and lands in one round of one model: pooled, its slow calls would move that model's p95; as one round
    in five it moves nothing (bench/challenge_fidelity.py measures both)."""
    from tqdm import tqdm

    rounds, roles = cfg.challenge.rounds, list(models)
    per_round = max(1, (cfg.challenge.runs or cfg.latency.runs) // rounds)
    frames = measure.read_frames(images)
    figures: dict[str, list[dict[str, float]]] = {role: [] for role in roles}
    total = len(roles) * (cfg.latency.warmup + rounds * (per_round + 2))
    with tqdm(total=total, desc="latency (back to back)", unit="call") as bar:
        for role in roles:
            measure.time_batches(models[role], frames, sizes[role], device, 1, cfg.latency.warmup, 0, bar.update)
        for r in range(rounds):
            for role in (roles if r % 2 == 0 else roles[::-1]):
                # Two untimed calls: the other model just ran and may have taken the caches.
                got = measure.time_batches(models[role], frames, sizes[role], device, 1, 2, per_round, bar.update)
                figures[role].append(measure.batch_metrics(got))
    return {role: {k: statistics.median(f[k] for f in per) for k in per[0]} for role, per in figures.items()}


def _with_tracking(figures: dict[str, dict[str, float]], models: dict[str, Any], sizes: dict[str, int], cfg: Config,
                   sequences: list[Any], device: str, work: Path) -> dict[str, dict[str, float]]:
    import mlflow

    for role, model in models.items():
        tracks = work / "tracking" / role
        results = track_and_score(model, cfg, sequences, sizes[role], device, tracks, label=f" {role}")
        figures[role].update({f"{MOT}{k}": v for k, v in results[COMBINED].items()})
        mlflow.log_artifacts(str(tracks), f"tracking/{role}")
    return figures


def _report(result: ChallengeResult, cfg: Config, work: Path) -> None:
    """The table (description, MLflow table, CSV / JSON) and the chart."""
    import mlflow

    label = {role: f"{role} v{getattr(result, role)}" for role in ROLES if getattr(result, role)}
    rows = [{"variant": label[role], **{k: v for k, v in result.figures[role].items() if k in FIGURES},
             "registered_model": result.model, "registered_version": getattr(result, role)}
            for role in ROLES if role in result.figures]
    if result.deltas:
        rows.append({"variant": "candidate - champion", **{k: v for k, v in result.deltas.items() if k in FIGURES}})
    sentence = f"Verdict: **{result.verdict}**. " + "; ".join(result.reasons) + "."
    title = f"Challenge of {result.model}: {' vs '.join(label.values())}"
    report = Report(title, rows, None, sentence, "challenge")
    report.publish(mlflow.MlflowClient(), result.run_id, work, echo=False)
    result.table = report.text()
    if cfg.tracking.log_plots and "champion" in result.figures:
        chart = source_vs_variant(result.figures["champion"], result.figures["candidate"], label["candidate"],
                                  work / "plots" / "challenge.png", base_label=label["champion"],
                                  heading=f"{title}: {result.verdict}")
        mlflow.log_artifact(str(chart), "plots")
