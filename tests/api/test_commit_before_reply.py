"""A 2xx means the write is committed: the request's transaction commits before the response
is sent, so a client reads its own writes, and a commit that fails never answers 2xx.

These run a real uvicorn server (in a thread, or as `driftloop serve`): FastAPI's test client
waits for the whole request cycle, so it cannot see a commit that lands after the response.
"""

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import Engine, event

from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings
from tests.api_keys import make_key
from tests.conftest import DRIFTLOOP, POSTGRES_URL, _admin_dsn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_app(engine: Engine, home: Path) -> Iterator[tuple[str, Engine, dict[str, str]]]:
    """The API on a real uvicorn server in this process; yields its base URL, the engine its
    requests use and the headers of an admin key."""
    app = create_app(Settings(home=home, database_url=engine.url.render_as_string(hide_password=False)))
    headers = {"Authorization": f"Bearer {make_key(app.state.engine)}"}
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app.state.engine, headers
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_slow_commit_is_still_visible_to_the_next_request(engine: Engine, tmp_path: Path) -> None:
    with live_app(engine, tmp_path) as (url, app_engine, headers):

        def slow_commit(_connection) -> None:  # type: ignore[no-untyped-def]
            time.sleep(0.3)  # a busy disk: the commit takes a while

        event.listen(app_engine, "commit", slow_commit)
        try:
            with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
                name = f"raw-{uuid.uuid4().hex[:8]}"
                assert client.post("/v1/tasks", json={"name": name, "labels": ["a"]}).status_code == 201
                assert client.get(f"/v1/tasks/{name}").status_code == 200, "read its own write"
                assert client.post(f"/v1/tasks/{name}/labels", json={"labels": ["b"]}).status_code == 200
                assert client.get(f"/v1/tasks/{name}").json()["labels"] == ["a", "b"]
        finally:
            event.remove(app_engine, "commit", slow_commit)


def test_a_failed_commit_never_answers_2xx(postgresql_engine: Engine, tmp_path: Path) -> None:
    with live_app(postgresql_engine, tmp_path) as (url, app_engine, headers):

        def kill_connection_before_commit(connection) -> None:  # type: ignore[no-untyped-def]
            # The fault is real: the server terminates this session's backend, so the COMMIT fails.
            pid = connection.connection.dbapi_connection.info.backend_pid
            with psycopg.connect(_admin_dsn(POSTGRES_URL), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        name = f"lost-{uuid.uuid4().hex[:8]}"
        event.listen(app_engine, "commit", kill_connection_before_commit)
        try:
            with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
                response = client.post("/v1/tasks", json={"name": name, "labels": ["a"]})
        finally:
            event.remove(app_engine, "commit", kill_connection_before_commit)
        assert response.status_code >= 500, response.text
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            assert client.get(f"/v1/tasks/{name}").status_code == 404
            # the pool recovers: the same request again is committed and answered 201
            assert client.post("/v1/tasks", json={"name": name, "labels": ["a"]}).status_code == 201


@pytest.mark.postgres
def test_200_writes_then_reads_over_http_on_postgresql_see_no_stale_data(postgres_database: str, postgresql_engine: Engine, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": postgres_database}
    server = subprocess.Popen(
        [DRIFTLOOP, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        headers = {"Authorization": f"Bearer {make_key(postgresql_engine)}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers) as client:
            deadline = time.monotonic() + 240  # imports torch: slow on a busy machine
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    pytest.fail(f"driftloop serve did not start: {server.communicate()[1].decode()[-2000:]}")
                time.sleep(0.2)
            stale = []
            prefix = f"raw-{uuid.uuid4().hex[:6]}"
            for i in range(100):  # create, then read
                name = f"{prefix}-{i}"
                assert client.post("/v1/tasks", json={"name": name, "labels": ["a"]}).status_code == 201
                if client.get(f"/v1/tasks/{name}").status_code != 200:
                    stale.append(("create", i))
            for i in range(100):  # update, then read
                name = f"{prefix}-{i}"
                assert client.post(f"/v1/tasks/{name}/labels", json={"labels": [f"l{i}"]}).status_code == 200
                if client.get(f"/v1/tasks/{name}").json()["labels"] != ["a", f"l{i}"]:
                    stale.append(("update", i))
            assert stale == []
    finally:
        server.terminate()
        server.wait(timeout=30)
