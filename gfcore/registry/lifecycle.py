"""Which model runs at a site: listing, promotion behind gates, rollback, and custom aliases.

Aliases: `candidate` (new, not yet trusted), `champion` (what the site runs), `rollback` (the previous
champion). promote: the old champion becomes `rollback`, the target `champion`, and `candidate` goes if
it pointed at the target. rollback: `rollback` becomes champion again, the demoted champion becomes
`candidate`, and `rollback` is removed until the next promotion.

Changes to one model are serialized by a lock file on this machine and verified after writing, so two
promotions at once cannot leave a lost rollback or an alias on the wrong version.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gfcore.core import paths
from gfcore.core.errors import RegistryError
from gfcore.core.vocabulary import (
    CHALLENGE_CHAMPION_VERSION,
    CHALLENGE_VERDICT,
    DET_MAP50,
    DET_MAP50_95,
    GATES,
    GATES_CHALLENGE_RUN_ID,
    MODEL_PATH,
    PROMOTED_AT,
    PROMOTED_BY,
    PROMOTED_FROM,
    ROLLED_BACK_AT,
    ROLLED_BACK_BY,
    ROLLED_BACK_FROM,
    SITE_CUSTOMER,
    SYS_LATENCY_P50_MS,
    TASK_TYPE,
    VERSION_BACKEND,
    VERSION_PRECISION,
    version_tag,
)
from gfcore.registry import gates as gating
from gfcore.registry.client import aliases_of, all_registered_models, mlflow_client, require_model, require_version
from gfcore.registry.register import CANDIDATE, CHAMPION, HEADLINE, ROLLBACK

MANAGED_ALIASES = (CHAMPION, CANDIDATE, ROLLBACK)
KEY_METRICS = (DET_MAP50, DET_MAP50_95, SYS_LATENCY_P50_MS)
@dataclass
class VersionInfo:
    version: str
    aliases: list[str]
    run_id: str | None
    status: str
    created: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)  # headline figures on its eval split, as numbers

    @property
    def verdict(self) -> str | None:
        """Of its challenge (tag challenge.verdict): better, tie, worse, unopposed."""
        return self.tags.get(CHALLENGE_VERDICT)

    @property
    def verdict_against(self) -> str | None:
        """The champion version it was challenged against ("none": measured alone)."""
        return self.tags.get(CHALLENGE_CHAMPION_VERSION)

    @property
    def backend(self) -> str | None:
        return version_tag(self.tags, VERSION_BACKEND)

    @property
    def precision(self) -> str | None:
        return version_tag(self.tags, VERSION_PRECISION)


@dataclass
class ModelSummary:
    name: str
    path: str
    aliases: dict[str, str]  # alias -> version
    champion_metrics: dict[str, float]


def list_models(customer: str | None = None, task: str | None = None) -> list[ModelSummary]:
    client = mlflow_client()
    out = []
    for rm in all_registered_models(client):
        if customer and rm.tags.get(SITE_CUSTOMER) != customer:
            continue
        if task and rm.tags.get(TASK_TYPE) != task:
            continue
        aliases = {alias: str(v) for alias, v in (rm.aliases or {}).items()}
        champ = aliases.get(CHAMPION)
        out.append(ModelSummary(
            name=rm.name, path=rm.tags.get(MODEL_PATH, ""), aliases=aliases,
            champion_metrics=_version_metrics(client, rm.name, champ) if champ else {}))
    return sorted(out, key=lambda m: m.name)


def list_versions(name: str) -> list[VersionInfo]:
    client = mlflow_client()
    rm = require_model(client, name)
    # Search results do not carry aliases: take them from the registered model.
    by_version: dict[str, list[str]] = {}
    for alias, v in (rm.aliases or {}).items():
        by_version.setdefault(str(v), []).append(alias)
    versions = client.search_model_versions(f"name='{name}'")
    out = []
    for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
        out.append(VersionInfo(
            version=str(mv.version), aliases=sorted(by_version.get(str(mv.version), [])), run_id=mv.run_id,
            status=mv.status,
            created=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            metrics=run_metrics(client, mv.run_id), tags=dict(mv.tags or {})))
        out[-1].figures = headline_figures(out[-1].tags, out[-1].metrics)
    return out


def headline_figures(tags: dict[str, str], metrics: dict[str, float]) -> dict[str, float]:
    """A version's headline figures as numbers. Its tags hold them to 6 significant digits (for people on the
    registry page) and its run holds them unrounded: the run's value where it is the tag's figure, else the tag's."""
    out = {}
    for key in HEADLINE:
        try:
            value = float(tags[key])
        except (KeyError, ValueError):
            continue
        raw = metrics.get(key)
        out[key] = raw if raw is not None and f"{raw:.6g}" == tags[key] else value
    return out


def promote(name: str, version: str | None = None, requires: list[str] | tuple[str, ...] = (),
            evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    """Make `version` (default: the candidate) the champion, if every gate passes.

    A gate on `champion` (`det.mAP50>=champion-0.005`) reads `evidence`: a challenge of this version against the
    current champion (its run id, `champion_version` and both models' figures; gfcore.automation.promotion finds
    or runs one). Without a champion there is nothing to compare with: such gates do not apply, and the version's
    tags say so."""
    gates = [gating.parse_gate(g) for g in requires]
    client = mlflow_client()
    require_model(client, name)
    aliases = aliases_of(client, name)
    target = str(version) if version else aliases.get(CANDIDATE)
    if target is None:
        raise RegistryError(f"{name} has no candidate to promote: train a new version, or name one with "
                            f"--version (see `guardianflow versions {name}`).")
    require_version(client, name, target)
    if any(g.on_champion for g in gates) and aliases.get(CHAMPION) not in (None, target) and evidence is None:
        raise RegistryError(f"a gate on `champion` needs a challenge of version {target} against the champion "
                            f"(version {aliases[CHAMPION]}) of {name} on the same data, and there is none: run "
                            f"`guardianflow challenge {name} --candidate {target}` first, or add --challenge. "
                            "Aliases are unchanged.")
    with _model_lock(name):
        aliases = aliases_of(client, name)
        mv = require_version(client, name, target)
        old = aliases.get(CHAMPION)
        if evidence is not None and evidence["champion_version"] != old:
            raise RegistryError(f"the champion of {name} changed to version {old} while version {target} was being "
                                "challenged; aliases are unchanged. Repeat the command to challenge the new champion.")
        relative = [g for g in gates if g.on_champion]
        if relative and evidence is None:
            gates = [g for g in gates if not g.on_champion]  # no champion to compare with: recorded below
        passed = gating.check(name, target, gates, run_metrics(client, mv.run_id), evidence)
        if old == target:
            return {"name": name, "champion": target, "rollback": aliases.get(ROLLBACK), "changed": False}
        if old is not None:
            client.set_registered_model_alias(name, ROLLBACK, old)
        client.set_registered_model_alias(name, CHAMPION, target)
        if aliases.get(CANDIDATE) == target:
            client.delete_registered_model_alias(name, CANDIDATE)
        stamp = _stamp()
        described = ", ".join(map(str, gates)) or "none"
        if relative and evidence is None:
            described += f" ({', '.join(map(str, relative))} not applied: no champion yet)"
        client.set_model_version_tag(name, target, PROMOTED_AT, stamp)
        client.set_model_version_tag(name, target, PROMOTED_FROM, old or "none")
        client.set_model_version_tag(name, target, PROMOTED_BY, _user())
        client.set_model_version_tag(name, target, GATES, described)
        if evidence is not None:
            client.set_model_version_tag(name, target, GATES_CHALLENGE_RUN_ID, evidence["run_id"])
        expected = {CHAMPION: target, ROLLBACK: old or aliases.get(ROLLBACK)}
        if aliases.get(CANDIDATE) != target:
            expected[CANDIDATE] = aliases.get(CANDIDATE)
        _verify(client, name, expected)
        return {"name": name, "champion": target, "rollback": old, "changed": True, "promoted_at": stamp,
                "gates": passed, "challenge_run_id": evidence["run_id"] if evidence else None}


def rollback(name: str) -> dict[str, Any]:
    """The `rollback` version becomes champion again; the demoted champion becomes `candidate`."""
    client = mlflow_client()
    require_model(client, name)
    with _model_lock(name):
        aliases = aliases_of(client, name)
        back = aliases.get(ROLLBACK)
        if back is None:
            raise RegistryError(f"{name} has no rollback version: a rollback exists only after a promotion "
                                "replaced a champion.")
        demoted = aliases.get(CHAMPION)
        client.set_registered_model_alias(name, CHAMPION, back)
        if demoted is not None and demoted != back:
            client.set_registered_model_alias(name, CANDIDATE, demoted)
        client.delete_registered_model_alias(name, ROLLBACK)
        stamp = _stamp()
        client.set_model_version_tag(name, back, ROLLED_BACK_AT, stamp)
        client.set_model_version_tag(name, back, ROLLED_BACK_FROM, demoted or "none")
        client.set_model_version_tag(name, back, ROLLED_BACK_BY, _user())
        expected = {CHAMPION: back, ROLLBACK: None}
        if demoted is not None and demoted != back:
            expected[CANDIDATE] = demoted
        _verify(client, name, expected)
        return {"name": name, "champion": back, "candidate": demoted, "rolled_back_at": stamp}


def set_alias(name: str, alias: str, version: str) -> dict[str, str]:
    """A custom alias (e.g. `edge-box-3`); the lifecycle aliases change only through promote / rollback."""
    if alias in MANAGED_ALIASES:
        raise RegistryError(f"alias {alias!r} is managed by GuardianFlow: use `guardianflow promote` or "
                            "`guardianflow rollback`.")
    if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise RegistryError(f"alias {alias!r} is reserved by MLflow ('latest' and 'v<number>' name versions); "
                            "pick another name, e.g. 'edge-box-3'.")
    if not re.fullmatch(r"[\w\-]+", alias):
        raise RegistryError(f"alias {alias!r} may contain only letters, digits, '_' and '-'.")
    client = mlflow_client()
    require_model(client, name)
    require_version(client, name, version)
    with _model_lock(name):
        client.set_registered_model_alias(name, alias, version)
        _verify(client, name, {alias: str(version)})
    return {"name": name, "alias": alias, "version": str(version)}


def choose_candidate(name: str, version: str, tags: dict[str, str]) -> str | None:
    """`version` becomes `candidate` (a sweep's best job, registered without an alias), tagged with `tags`; the
    previous candidate (returned) keeps its version, without the alias. Under the model's lock, like promote."""
    client = mlflow_client()
    require_version(client, name, version)
    with _model_lock(name):
        before = aliases_of(client, name).get(CANDIDATE)
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        client.set_registered_model_alias(name, CANDIDATE, version)
        _verify(client, name, {CANDIDATE: str(version)})
    return before


# -- helpers -------------------------------------------------------------------------------------------


def run_metrics(client: Any, run_id: str | None) -> dict[str, float]:
    if not run_id:
        return {}
    try:
        return dict(client.get_run(run_id).data.metrics)
    except Exception:  # a deleted run leaves the version without figures, not broken
        return {}


def _version_metrics(client: Any, name: str, version: str) -> dict[str, float]:
    """The version's headline figures (its tags: on its eval split), else its run's."""
    mv = client.get_model_version(name, version)
    metrics = run_metrics(client, mv.run_id)
    figures = {**metrics, **headline_figures(dict(mv.tags or {}), metrics)}
    return {k: figures[k] for k in KEY_METRICS if k in figures}


def _verify(client: Any, name: str, expected: dict[str, str | None]) -> None:
    """Read the aliases back: another writer (from another machine) may have interleaved."""
    actual = aliases_of(client, name)
    wrong = {alias: (want, actual.get(alias)) for alias, want in expected.items() if actual.get(alias) != want}
    if wrong:
        detail = ", ".join(f"{a} is {got or 'unset'} (expected {want or 'unset'})" for a, (want, got) in wrong.items())
        raise RegistryError(f"{name} changed while this command wrote it: {detail}. Another promotion ran at the "
                            f"same time; check `guardianflow versions {name}` and repeat the command.")


@contextmanager
def _model_lock(name: str, timeout_s: float = 60.0) -> Iterator[None]:
    """An exclusive lock per (tracking store, model) on this machine."""
    import mlflow

    key = hashlib.sha256(f"{mlflow.get_tracking_uri()}\0{name}".encode()).hexdigest()[:24]
    path = Path(os.environ.get("GF_LOCK_DIR") or paths.cache_dir() / "locks") / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RegistryError(f"another GuardianFlow command has held the lock on {name} for over "
                                        f"{timeout_s:.0f}s ({path}); wait for it or remove a stale lock.") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
