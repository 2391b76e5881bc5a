"""Units of work on the store: every unit may write unless it is declared read-only, and on SQLite
it then holds the write lock from its start, so a unit that reads and then writes never fails with
"database is locked" because another writer committed in between (issue 21: the demo's selection
round failed so, and the API answered 500 beside concurrent writes)."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from driftloop.platform.store.engine import NestedWrite, read_only, session_scope
from driftloop.platform.store.models import Task
from driftloop.platform.tasks import create_task, get_task


def _task(engine: Engine) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    with session_scope(engine) as session:
        create_task(session, name, ["a", "b"])
    return name


def test_a_unit_that_reads_then_writes_is_not_failed_by_a_writer_committing_in_between(engine: Engine) -> None:
    first, second = _task(engine), _task(engine)
    errors: list[BaseException] = []

    def other_writer() -> None:
        try:
            with session_scope(engine) as session:
                session.execute(update(Task).where(Task.name == second).values(settings={"by": "other"}))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    with session_scope(engine) as session:
        get_task(session, first)  # the read...
        writer = threading.Thread(target=other_writer)
        writer.start()
        writer.join(timeout=1.0)  # a deferred unit let it commit here; a writing unit makes it wait
        session.execute(update(Task).where(Task.name == first).values(settings={"by": "reader"}))  # ...then the write
    writer.join(timeout=60)

    assert errors == [] and not writer.is_alive()
    with session_scope(engine, read_only=True) as session:
        assert get_task(session, first).settings == {"by": "reader"}
        assert get_task(session, second).settings == {"by": "other"}


def test_a_read_only_unit_cannot_write_on_either_backend(engine: Engine) -> None:
    name = _task(engine)
    with pytest.raises(DBAPIError, match="readonly|read-only|read only"), session_scope(engine, read_only=True) as session:
        session.execute(update(Task).where(Task.name == name).values(settings={"written": True}))
    with read_only(engine).connect() as connection, pytest.raises(DBAPIError, match="readonly|read-only|read only"):
        connection.execute(update(Task).where(Task.name == name).values(settings={"written": True}))
    with session_scope(engine) as session:  # the connection it ran on writes again in a writing unit
        session.execute(update(Task).where(Task.name == name).values(settings={"written": True}))
    with session_scope(engine, read_only=True) as session:
        assert get_task(session, name).settings == {"written": True}


def test_a_read_only_unit_never_waits_for_a_writer(sqlite_engine: Engine) -> None:
    name = _task(sqlite_engine)
    with session_scope(sqlite_engine) as writing:
        writing.execute(update(Task).where(Task.name == name).values(settings={"pending": True}))
        read: list[dict] = []  # type: ignore[type-arg]

        def reader() -> None:
            with session_scope(sqlite_engine, read_only=True) as session:
                read.append(get_task(session, name).settings)

        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(timeout=30)  # while the writer holds the lock
        assert read == [{}]  # the committed state, at once


def test_a_second_writing_unit_inside_the_first_is_refused_at_once_on_sqlite(sqlite_engine: Engine, postgresql_engine: Engine) -> None:
    name = _task(sqlite_engine)
    started = time.monotonic()
    with session_scope(sqlite_engine) as outer:
        get_task(outer, name)
        with pytest.raises(NestedWrite, match="already holds the write lock"), session_scope(sqlite_engine) as inner:
            get_task(inner, name)
        with session_scope(sqlite_engine, read_only=True) as reading:  # reading beside it is fine
            assert get_task(reading, name).name == name
    assert time.monotonic() - started < 30  # refused, not waited for until the busy timeout
    # PostgreSQL's writers do not exclude each other: the same nesting is legal there
    other = _task(postgresql_engine)
    with session_scope(postgresql_engine) as outer, session_scope(postgresql_engine) as inner:
        get_task(outer, other)
        get_task(inner, other)


def test_a_unit_committed_from_another_thread_does_not_count_as_nested(sqlite_engine: Engine) -> None:
    """As FastAPI does: a route's unit begins in one pool thread and commits from another, and the
    first thread meanwhile runs another request's unit (in a copy of its own context)."""
    name = _task(sqlite_engine)
    pool = ThreadPoolExecutor(max_workers=1)  # one thread: the second unit begins where the first did
    first = Session(sqlite_engine)
    first.begin()
    pool.submit(copy_context().run, lambda: get_task(first, name)).result(timeout=30)

    def second_unit() -> int:
        with session_scope(sqlite_engine) as session:
            return session.scalar(select(func.count()).select_from(Task)) or 0

    waiting = pool.submit(copy_context().run, second_unit)  # waits for the first unit's lock...
    time.sleep(0.2)
    first.commit()  # ...which another thread releases
    first.close()
    assert waiting.result(timeout=60) >= 1
    pool.shutdown()
