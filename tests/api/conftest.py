from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings
from tests.api_keys import admin_client


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path,
        database_url=engine.url.render_as_string(hide_password=False),
        ingest_max_text_chars=100,
        ingest_max_records_per_request=50,
        ingest_max_request_bytes=20_000,
    )
    # raise_server_exceptions=False: a 500 must reach the test as a response, not hide as a raise.
    with admin_client(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client
