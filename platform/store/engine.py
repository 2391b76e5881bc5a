"""Engines and sessions for the configured store.

SQLite (the embedded default) runs in WAL mode so readers never wait for the ingest writer,
and a connection can ask for ``BEGIN IMMEDIATE`` (see :func:`write_locked`) when it must read
and then write without another writer slipping in between.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from driftloop.platform.config import Settings, get_settings
from driftloop.platform.home import private_sqlite_store

_SQLITE_BEGIN = "driftloop_sqlite_begin"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        private_sqlite_store(Path(parsed.database))
    # isolation_level=None hands transaction control to the events below, which is the
    # documented way to get correct BEGIN handling from pysqlite.
    engine = create_engine(url, isolation_level=None, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-262144")  # 256 MiB: the stream's indexes stay hot
        cursor.execute("PRAGMA temp_store=MEMORY")  # ingest's staging table never touches disk
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def write_locked(connection: Connection) -> Connection:
    """The same connection, taking SQLite's write lock at BEGIN (no-op elsewhere)."""
    return connection.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})


@lru_cache
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    return _engine_for((settings or get_settings()).resolved_database_url)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error.

    ``write=True`` takes SQLite's write lock at BEGIN, for a unit that reads and then writes
    while other connections write: a deferred one would fail at its first write ("database is
    locked") whenever another writer committed after its first read.
    """
    bind = engine.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"}) if write else engine
    with session_factory(bind)() as session, session.begin():
        yield session
