"""The stack tests' local stack (PostgreSQL, SeaweedFS, the MLflow server on loopback): one for the package,
shared by its modules (tests/stack/servers.py `StackPool`)."""

from __future__ import annotations

import pytest

from tests.stack.servers import StackPool


@pytest.fixture(scope="package")
def stack_pool():
    pool = StackPool()
    try:
        yield pool
    finally:
        pool.close()
