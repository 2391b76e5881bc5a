"""Engines and units of work for the configured store.

Every unit of work may write unless it says it will not. On SQLite (the embedded default, in WAL
mode so that readers never wait) that rule is what keeps concurrent writers from failing with
"database is locked": a transaction that reads first and writes later starts on a snapshot, and
SQLite refuses to upgrade it to a writer if another connection committed since, at once and
whatever the busy timeout. So every transaction begins with ``BEGIN IMMEDIATE``, taking the write
lock at its start, where the busy timeout applies; only a unit declared read-only
(:func:`read_only`, ``session_scope(..., read_only=True)``) begins deferred, and may then not
write: SQLite's ``query_only`` and PostgreSQL's ``READ ONLY`` transactions refuse it, so a wrong
declaration fails loudly in the tests rather than intermittently in production.

Holding the write lock at the start has one new way to fail, which :class:`_WriteLocks` turns
into an immediate error (:class:`NestedWrite`): code that holds SQLite's write lock and opens a
second writing unit on another connection would wait for itself until the busy timeout runs out.
"""

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from driftloop.platform.config import Settings, get_settings
from driftloop.platform.home import private_sqlite_store

_READ_ONLY = "driftloop_read_only"
# How long a SQLite writer waits for the write lock before "database is locked".
SQLITE_BUSY_TIMEOUT_SECONDS = 60.0

Bind = TypeVar("Bind", Engine, Connection)


class NestedWrite(RuntimeError):
    """Code that holds SQLite's write lock began a second writing unit: it would wait for itself.
    A programming error: finish the first unit, or pass its session down."""


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        private_sqlite_store(Path(parsed.database))
    # isolation_level=None hands transaction control to the events below, which is the
    # documented way to get correct BEGIN handling from pysqlite.
    engine = create_engine(url, isolation_level=None, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    locks = _WriteLocks(str(parsed.database))

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
        reading = bool(connection.get_execution_options().get(_READ_ONLY))
        if connection.info.get("query_only") != reading:  # a pragma per change, not per transaction
            connection.exec_driver_sql(f"PRAGMA query_only={'ON' if reading else 'OFF'}")
            connection.info["query_only"] = reading
        if reading:
            connection.exec_driver_sql("BEGIN DEFERRED")
            return
        locks.acquire(connection)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            locks.release(connection)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection: Connection) -> None:
        locks.release(connection)

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        locks.forget(record.info)  # a connection returned mid-transaction is rolled back by the pool

    return engine


def read_only(bind: Bind) -> Bind:
    """``bind`` for units that only read: they begin deferred (they never wait for SQLite's write
    lock, nor hold it) and the database refuses any write they attempt."""
    return bind.execution_options(**{_READ_ONLY: True, "postgresql_readonly": True})


@lru_cache
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    return _engine_for((settings or get_settings()).resolved_database_url)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error.

    It may write, and on SQLite holds the write lock from its first statement to its end: keep it
    short (no model training, no HTTP call inside). ``read_only=True`` for a unit that only reads.
    """
    bind = _read_only_bind(engine) if read_only else engine
    with session_factory(bind)() as session, session.begin():
        yield session


_read_only_bind = read_only  # session_scope's parameter hides the function's name


# The write units this flow of control began and has not ended, as tokens (never reused, unlike a
# connection, which the pool hands to other units). A context, not a thread: a framework may begin
# a unit in one pool thread and commit it from another (FastAPI runs a route and its session's exit
# in different threads, each in a copy of the request's context), and that thread may then begin an
# unrelated unit while the first is still open.
_WRITING: ContextVar[tuple[int, ...]] = ContextVar("driftloop_sqlite_writing", default=())
_TOKEN = "driftloop_write_token"


class _WriteLocks:
    """Which units hold the SQLite file's write lock, so that a flow of control that holds it and
    begins a second writing unit is told at once instead of waiting for itself."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._held: set[int] = set()
        self._tokens = itertools.count()
        self._mutex = threading.Lock()

    def acquire(self, connection: Connection) -> None:
        with self._mutex:
            open_here = [token for token in _WRITING.get() if token in self._held]
            if open_here:
                raise NestedWrite(
                    f"this flow of control already holds the write lock of {self.database} in another unit of work; a "
                    "second writing unit would wait for the first until the busy timeout. Finish the first unit first, "
                    "pass its session down, or declare the inner unit read_only."
                )
            token = next(self._tokens)
            self._held.add(token)
        connection.info[_TOKEN] = token
        _WRITING.set((token,))  # ended units drop out here

    def release(self, connection: Connection) -> None:
        if not connection.closed:
            self.forget(connection.info)

    def forget(self, info: dict) -> None:  # type: ignore[type-arg]
        token = info.pop(_TOKEN, None)
        if token is not None:
            with self._mutex:
                self._held.discard(token)
