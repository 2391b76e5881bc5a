"""Fixtures of the worker tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from driftloop.labeling.server.ports import free_port
from tests.workers.test_broker_outage import PrivateRedis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, on a free port: a broker it can stop and start."""
    server = PrivateRedis(free_port(), tmp_path / "redis")
    server.start()
    yield server
    server.stop()
