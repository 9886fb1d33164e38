"""The data behind each champion in the fleet summary: which data version it was trained on and, for a pushed
version that is no longer the dataset's `latest`, the newer one and what changed (read from S3, not MLflow)."""

from __future__ import annotations

import logging

from gfcore.core.errors import GuardianFlowError
from gfcore.core.vocabulary import DATA_HASH, DATA_REV, DATA_URI, DATA_VERSION
from gfcore.data.versions import diff as diffs
from gfcore.data.versions import store as versions

log = logging.getLogger(__name__)

Pin = tuple[str, str]  # (the version's manifest URI, the version)


def champion_data(tags: dict[str, str]) -> tuple[str | None, Pin | None]:
    """(the data a version was trained on, in a few characters: `yard@6cadb757b956`, `git 1a2b3c4d5e6f`,
    `hash 0f1e2d3c4b5a`; its pushed version, if it was one)."""
    uri, version = tags.get(DATA_URI, ""), tags.get(DATA_VERSION)
    if "/versions/" in uri and version:
        return f"{uri.rsplit('/versions/', 1)[0].rsplit('/', 1)[-1]}@{version}", (uri, version)
    if tags.get(DATA_REV):
        return f"git {tags[DATA_REV][:12]}", None
    return (f"hash {tags[DATA_HASH][:12]}" if tags.get(DATA_HASH) else None), None


def newer_data(pins: set[Pin]) -> dict[Pin, str]:
    """For each pushed version that is no longer its dataset's `latest`: `yard@<latest>: <what changed>`. One alias
    read per dataset and two manifests per newer version; data that cannot be read is logged, not guessed."""
    out = {}
    for uri, version in sorted(pins):
        try:
            store, name = versions.Store.of_manifest(uri)
            newest = versions.resolve(name, versions.LATEST, store)
            if newest != version:
                d = diffs.diff(versions.read_manifest(name, version, store)[0],
                               versions.read_manifest(name, newest, store)[0])
                out[(uri, version)] = f"{name}@{newest}: {diffs.summary(d)}"
        except GuardianFlowError as exc:
            log.warning("%s (%s): cannot check for newer data (%s)", uri, version, exc)
    return out
