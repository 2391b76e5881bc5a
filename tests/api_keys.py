"""API keys for tests that call the API: made through the service, as `driftloop keys create` does."""

import json
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftloop.platform.api_keys import create_key
from driftloop.platform.store.engine import session_scope
from tests.conftest import run_cli


def make_key(engine: Engine, scopes: str = "admin", task: str | None = None, expires_in: str | None = None) -> str:
    """A new key's full string (``dlk_…``)."""
    with session_scope(engine) as session:
        _, key = create_key(session, f"test-{uuid.uuid4().hex[:8]}", scopes, task=task, expires_in=expires_in)
    return key


def admin_client(app: FastAPI, **kwargs: Any) -> TestClient:
    """A TestClient of ``app`` whose requests carry an admin key of the app's store."""
    client = TestClient(app, **kwargs)
    client.headers["Authorization"] = f"Bearer {make_key(app.state.engine)}"
    return client


def cli_key(env: dict[str, str], scopes: str = "admin") -> str:
    """A key made by the real `driftloop keys create --json`, as a deployment makes its first one."""
    made = run_cli("keys", "create", "--name", f"test-{uuid.uuid4().hex[:8]}", "--scopes", scopes, "--json", env=env)
    assert made.returncode == 0, made.stderr.decode()
    return json.loads(made.stdout)["key"]
