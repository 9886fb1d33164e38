"""Promotion on evidence: gates on `champion` (`det.mAP50>=champion-0.005`) read the latest finished challenge of
the version against the current champion, run first when asked; the registry's promote checks the gates on it."""

from __future__ import annotations

from typing import Any

from gfcore.automation import challenge as challenging
from gfcore.core.errors import RegistryError
from gfcore.registry import client as registry
from gfcore.registry import gates as gating
from gfcore.registry import lifecycle
from gfcore.registry.register import CANDIDATE, CHAMPION


def promote(name: str, version: str | None = None, requires: list[str] | tuple[str, ...] = (),
            challenge: bool = False) -> dict[str, Any]:
    """gfcore.registry.lifecycle.promote with a challenge as the evidence of gates on `champion`; with
    `challenge=True` one is run first when there is none. Measuring takes minutes: done before promote takes
    its lock, which checks that the champion did not change meanwhile."""
    evidence = None
    if any(gating.parse_gate(g).on_champion for g in requires):
        client = registry.mlflow_client()
        registry.require_model(client, name)
        aliases = registry.aliases_of(client, name)
        target = str(version) if version else aliases.get(CANDIDATE)
        champion = aliases.get(CHAMPION)
        if target is not None and champion not in (None, target):
            registry.require_version(client, name, target)
            evidence = _evidence(name, target, champion, run_first=challenge)
    return lifecycle.promote(name, version=version, requires=requires, evidence=evidence)


def _evidence(name: str, version: str, champion: str, run_first: bool) -> dict[str, Any]:
    """The figures of the latest finished challenge of `version` against `champion` (running one if asked)."""
    found = challenging.latest(name, version, champion)
    if found is None and run_first:
        challenging.challenge(name, candidate=version)
        found = challenging.latest(name, version, champion)
    if found is None:
        raise RegistryError(f"a gate on `champion` needs a challenge of version {version} against the champion "
                            f"(version {champion}) of {name} on the same data, and there is none: run "
                            f"`guardianflow challenge {name} --candidate {version}` first, or add --challenge. "
                            "Aliases are unchanged.")
    return found
