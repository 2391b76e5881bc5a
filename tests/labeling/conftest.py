"""A real embedded Argilla server for the labeling tests: started once per test run on a free port of
127.0.0.1, with its own state folder, an owner and two annotators, stopped by pid at the end.

The first run on a machine builds the server's virtualenv (minutes; then cached under
~/.cache/driftloop). Its Redis is a private redis-server, so the test server's job queues never mix
with those of a developer's own embedded server.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from driftloop.labeling.server import embedded
from driftloop.labeling.server.ports import free_port

ANNOTATORS = ("annotator-1", "annotator-2")
WORKSPACE = "driftloop-test"
# Covers building the server's virtualenv on a fresh machine in the first test that starts it.
FIRST_START_TIMEOUT_S = 1800


@dataclass
class ArgillaServer:
    """The test run's Argilla server. ``stop()`` and ``start()`` restart it on the same port and
    database, e.g. to check that work done while it was down is retried."""

    home: Path
    port: int
    url: str = ""
    api_key: str = ""
    owner_username: str = ""
    owner_password: str = ""
    workspace: str = WORKSPACE
    annotators: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        result = embedded.up(
            self.home, port=self.port, workspace=WORKSPACE, annotators=ANNOTATORS, redis_url="embedded"
        )
        connection = result.connection
        self.url, self.api_key = connection.url, connection.api_key
        self.owner_username, self.owner_password = connection.owner_username, connection.owner_password
        self.annotators = dict(connection.annotators)

    def stop(self) -> None:
        embedded.down(self.home)

    def annotator_http(self, username: str) -> httpx.Client:
        """A client logged in as ``username`` the way the UI logs in: a bearer token from /api/v1/token."""
        token = httpx.post(
            f"{self.url}/api/v1/token", data={"username": username, "password": self.annotators[username]}
        )
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def owner_http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Argilla-Api-Key": self.api_key}, timeout=30)


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArgillaServer]:
    server = ArgillaServer(home=tmp_path_factory.mktemp("argilla-home"), port=free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def argilla_client(argilla_server: ArgillaServer):  # type: ignore[no-untyped-def]
    """The argilla SDK logged in as the owner."""
    import argilla as rg

    return rg.Argilla(api_url=argilla_server.url, api_key=argilla_server.api_key)


@pytest.fixture
def dataset_name() -> str:
    """A name no other test's dataset has."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def labeling(request: pytest.FixtureRequest, tmp_path: Path, headlines, encoder, argilla_server):  # type: ignore[no-untyped-def]
    """A task of headlines wired to the test run's Argilla (tests.labeling.labeling_loop.LabelingLoop),
    on the SQLite store; parametrized indirectly with "postgresql", on PostgreSQL."""
    from tests.labeling.labeling_loop import LabelingLoop  # imported here, like the encoder: it brings torch

    engine = request.getfixturevalue(f"{getattr(request, 'param', 'sqlite')}_engine")
    return LabelingLoop(engine, tmp_path, headlines, encoder, argilla_server)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "argilla_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(FIRST_START_TIMEOUT_S))
