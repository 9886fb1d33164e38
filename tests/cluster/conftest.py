"""The one-node SLURM cluster (tests/cluster/slurm.py), started once for the SLURM tests of a session."""

from __future__ import annotations

import pytest

from tests.cluster import slurm


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    with slurm.one_node_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env
