"""Bulk writes of validated records into ``texts``: a constant number of statements per batch,
never one per row.

Both backends do the same two steps:

1. bulk-load the batch into a bare temporary table (PostgreSQL ``COPY``, SQLite ``executemany``);
2. one ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING external_id`` into ``texts``.

The rule is in that one statement: a record whose (task, external id) exists is a duplicate,
and a record without a given id is also a duplicate when its content hash exists in the task.
Records without an id carry ``sha256:<hash>`` as external id, so the unique index settles
races between concurrent ingests of the same content as well. A third statement, still on the
staging table, finds the given ids that the store holds with another text: those are conflicts
(ingest never overwrites a stored text), not silent duplicates.
"""

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from driftloop.platform.ingestion.records import Record
from driftloop.platform.store.models import TextRecord

BatchWriter = Callable[[Connection, int, Sequence[Record], datetime, str], tuple[set[str], set[str]]]

_COLUMNS = "external_id, has_given_id, text, content_hash, event_time, meta"

_MERGE = (
    "INSERT INTO texts (task_id, external_id, text, meta, event_time, received_at, content_hash, source) "
    "SELECT {task}, s.external_id, s.text, s.meta, s.event_time, {received}, s.content_hash, {source} "
    "FROM ingest_stage s "
    "WHERE s.has_given_id OR NOT EXISTS ("
    "  SELECT 1 FROM texts t WHERE t.task_id = {task} AND t.content_hash = s.content_hash) "
    "ON CONFLICT (task_id, external_id) DO NOTHING "
    "RETURNING external_id"
)

# A scalar subquery, not a join: PostgreSQL knows nothing of the staging table's size and would
# hash-join it against every text of the store; this is one index look-up per staged row.
_CONFLICTS = (
    "SELECT s.external_id FROM ingest_stage s WHERE s.has_given_id AND s.content_hash <> ("
    "  SELECT t.content_hash FROM texts t WHERE t.task_id = {task} AND t.external_id = s.external_id)"
)


class Stored(NamedTuple):
    """Which of a batch's records were stored, and which ids the store holds with another text."""

    new: set[str]
    conflicting: set[str]


def store_records(connection: Connection, task_id: int, records: Sequence[Record], received_at: datetime, source: str = "ingest") -> Stored:
    """Store what is new among ``records`` (ids unique within the batch), marked as come in by ``source``."""
    if not records:
        return Stored(set(), set())
    writer = _WRITERS.get(connection.dialect.name)
    if writer is None:
        raise NotImplementedError(f"bulk ingest supports PostgreSQL and SQLite, not {connection.dialect.name}")
    return Stored(*writer(connection, task_id, records, received_at, source))


def _may_conflict(records: Sequence[Record], new: set[str]) -> bool:
    """Only a given id that was not stored can be a conflict; a batch of new texts needs no check."""
    return any(r.has_given_id and r.external_id not in new for r in records)


def _store_postgresql(connection: Connection, task_id: int, records: Sequence[Record], received_at: datetime, source: str) -> tuple[set[str], set[str]]:
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS ingest_stage (external_id text, has_given_id bool, text text,"
            " content_hash bytea, event_time timestamptz, meta jsonb) ON COMMIT DELETE ROWS"
        )
        cursor.execute("DELETE FROM ingest_stage")  # empty already unless a caller batches twice per transaction
        with cursor.copy(f"COPY ingest_stage ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "bool", "text", "bytea", "timestamptz", "jsonb"])
            for r in records:
                copy.write_row(
                    (r.external_id, r.has_given_id, r.text, r.content_hash, r.event_time or received_at, r.meta)
                )
        cursor.execute(
            _MERGE.format(task="%(task)s", received="%(received)s", source="%(source)s"),
            {"task": task_id, "received": received_at, "source": source},
        )
        new = {row[0] for row in cursor.fetchall()}
        if not _may_conflict(records, new):
            return new, set()
        cursor.execute(_CONFLICTS.format(task="%(task)s"), {"task": task_id})
        return new, {row[0] for row in cursor.fetchall()}


def _store_sqlite(connection: Connection, task_id: int, records: Sequence[Record], received_at: datetime, source: str) -> tuple[set[str], set[str]]:
    # Timestamps go through the column type's own converter so the raw path stores exactly
    # what the ORM would, and reads back the same.
    to_db = TextRecord.__table__.c.event_time.type.bind_processor(connection.dialect)
    received = to_db(received_at)
    rows = [
        (
            r.external_id,
            r.has_given_id,
            r.text,
            r.content_hash,
            received if r.event_time is None else to_db(r.event_time),
            None if r.meta is None else json.dumps(r.meta),
        )
        for r in records
    ]
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS ingest_stage (external_id TEXT, has_given_id INTEGER, text TEXT,"
            " content_hash BLOB, event_time TEXT, meta TEXT)"
        )
        cursor.execute("DELETE FROM ingest_stage")
        cursor.executemany(f"INSERT INTO ingest_stage ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows)
        cursor.execute(_MERGE.format(task=":task", received=":received", source=":source"), {"task": task_id, "received": received, "source": source})
        new = {row[0] for row in cursor.fetchall()}
        if not _may_conflict(records, new):
            return new, set()
        cursor.execute(_CONFLICTS.format(task=":task"), {"task": task_id})
        return new, {row[0] for row in cursor.fetchall()}
    finally:
        cursor.close()


_WRITERS: dict[str, BatchWriter] = {"postgresql": _store_postgresql, "sqlite": _store_sqlite}
