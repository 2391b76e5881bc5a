"""Shared fixtures: a migrated store on SQLite (a temp file) and on the real PostgreSQL server
of this machine (a fresh database per test run, dropped afterwards)."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from driftloop.platform.store import schema
from driftloop.platform.store.engine import make_engine, session_scope
from driftloop.platform.tasks import create_task

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("DRIFTLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))


def _admin_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """URL of a new, empty database on the PostgreSQL server, dropped on exit."""
    name = f"driftloop_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(_admin_dsn(POSTGRES_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is needed at {POSTGRES_URL} (set DRIFTLOOP_TEST_POSTGRES_URL): {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgresql_engine(postgres_database: str) -> Iterator[Engine]:
    engine = make_engine(postgres_database)
    schema.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    schema.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The migrated store, once per backend. Tests isolate themselves by task name."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def task_name(engine: Engine) -> str:
    """A fresh task (labels a, b, c) in ``engine``."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    with session_scope(engine) as session:
        create_task(session, name, ["a", "b", "c"])
    return name


def run_cli(*args: str, env: dict[str, str], stdin: bytes | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the installed `driftloop` command as a user would."""
    return subprocess.run(
        [DRIFTLOOP, *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **env},
        timeout=timeout,
        check=False,
    )


def store_env(engine: Engine, home: Path) -> dict[str, str]:
    env = {"DRIFTLOOP_HOME": str(home), "COLUMNS": "200"}
    env["DRIFTLOOP_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    return env


@pytest.fixture(scope="session")
def encoder():  # type: ignore[no-untyped-def]
    """The real base encoder, loaded once per test run."""
    from driftloop.platform.modeling.encoder import Encoder

    return Encoder.load()


@pytest.fixture(scope="session")
def headlines() -> list[tuple[str, str, str]]:
    """(id, headline, topic) of real BBC News articles: short texts, so the real encoder and
    even full fine-tuning stay fast on a CPU. Interleaved by topic."""
    from driftloop.platform.corpora import bbc_news

    by_topic: dict[str, list[tuple[str, str, str]]] = {}
    for article in bbc_news():
        by_topic.setdefault(article.label, []).append((article.id, article.text.splitlines()[0], article.label))
    rows = []
    for group in zip(*by_topic.values(), strict=False):
        rows.extend(group)
    return rows


@pytest.fixture
def loop(sqlite_engine: Engine, tmp_path: Path, headlines, encoder):  # type: ignore[no-untyped-def]
    """A fresh task of headlines (tests.learning_loop.Loop) on the SQLite store, nothing labelled yet."""
    from tests.learning_loop import Loop  # imported here, like the encoder: it brings torch

    return Loop(sqlite_engine, tmp_path, headlines, encoder)
