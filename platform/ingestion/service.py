"""Ingest: validate each record, drop what the batch itself repeats, store the rest in bulk.

Each batch is its own transaction, so a long stream commits as it goes and a failure loses at
most the batch in flight (which is safe to send again: ingest is idempotent).
"""

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Engine, select

from driftloop.platform.ingestion.records import Record, Rejection, parse_record
from driftloop.platform.ingestion.writer import store_records
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import TextRecord
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task


class Status(StrEnum):
    stored = "stored"
    duplicate = "duplicate"  # the same record again: nothing to do
    conflict = "conflict"  # a known id with another text: not stored, the first text stands
    rejected = "rejected"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one record; ``position`` is its line number or array index."""

    position: int
    status: Status
    external_id: str | None = None
    code: str | None = None
    reason: str | None = None


@dataclass
class IngestSummary:
    ingested: int = 0
    duplicates: int = 0
    rejected: int = 0
    conflicts: int = 0

    def count(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            match outcome.status:
                case Status.stored:
                    self.ingested += 1
                case Status.duplicate:
                    self.duplicates += 1
                case Status.rejected:
                    self.rejected += 1
                case Status.conflict:
                    self.conflicts += 1

    def __str__(self) -> str:
        # Conflicts are named only when there are some, so the line scripts read stays as documented.
        line = f"ingested {self.ingested}, duplicates {self.duplicates}, rejected {self.rejected}"
        return line + (f", conflicts {self.conflicts}" if self.conflicts else "")


def ingest(
    engine: Engine,
    task_name: str,
    entries: Iterable[tuple[int, object]],
    *,
    max_text_chars: int,
    batch_size: int,
    source: str = "ingest",
) -> Iterator[list[Outcome]]:
    """Ingest ``(position, raw record or Rejection)`` pairs; yield each batch's outcomes, in
    input order, after the batch has committed. ``source`` says how the texts came in ("ingest",
    or "predict" for the texts of prediction requests).

    The next batch is validated while the store writes the current one (the database driver
    releases the GIL while it works), so at most two batches are in memory.
    """
    with session_scope(engine, read_only=True) as session:
        task_id = get_task(session, task_name).id
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer") as writer:
        in_flight: Future[list[Outcome]] | None = None
        for chunk in _chunks(entries, batch_size):
            batch = _Batch.validate(chunk, max_text_chars)
            if in_flight is not None:
                yield in_flight.result()
            in_flight = writer.submit(batch.write, engine, task_id, source)
        if in_flight is not None:
            yield in_flight.result()


def stored_ids(engine: Engine, task_name: str) -> dict[str, int]:
    """The task's stored texts as the producer named them: external id -> the store's text id."""
    with session_scope(engine) as session:
        task_id = get_task(session, task_name).id
        rows = session.execute(select(TextRecord.external_id, TextRecord.id).where(TextRecord.task_id == task_id))
        return {external_id: text_id for external_id, text_id in rows}


def _chunks(entries: Iterable[tuple[int, object]], size: int) -> Iterator[list[tuple[int, object]]]:
    chunk: list[tuple[int, object]] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class _Batch:
    """One batch after validation: what is already decided, and the records left to store."""

    positions: list[int]
    decided: dict[int, Outcome]
    fresh: list[tuple[int, Record]]

    @classmethod
    def validate(cls, entries: list[tuple[int, object]], max_text_chars: int) -> "_Batch":
        decided: dict[int, Outcome] = {}
        fresh: list[tuple[int, Record]] = []
        first: dict[str, tuple[int, bytes]] = {}  # id -> (position, content hash) of its first record
        hashes: set[bytes] = set()
        for position, raw in entries:
            parsed = raw if isinstance(raw, Rejection) else parse_record(raw, max_text_chars=max_text_chars)
            if isinstance(parsed, Rejection):
                decided[position] = Outcome(position, Status.rejected, code=parsed.code, reason=parsed.reason)
            elif parsed.external_id in first:
                earlier, earlier_hash = first[parsed.external_id]
                decided[position] = (
                    Outcome(position, Status.duplicate, parsed.external_id)
                    if earlier_hash == parsed.content_hash
                    else _conflict(position, parsed.external_id, f"an earlier record of this input (at {earlier}) has it with another text")
                )
            elif not parsed.has_given_id and parsed.content_hash in hashes:
                decided[position] = Outcome(position, Status.duplicate, parsed.external_id)
            else:
                first[parsed.external_id] = (position, parsed.content_hash)
                hashes.add(parsed.content_hash)
                fresh.append((position, parsed))
        return cls([position for position, _ in entries], decided, fresh)

    def write(self, engine: Engine, task_id: int, source: str) -> list[Outcome]:
        with engine.connect() as connection:
            with connection.begin():
                stored = store_records(connection, task_id, [r for _, r in self.fresh], utcnow(), source)
        outcomes = dict(self.decided)
        for position, record in self.fresh:
            if record.external_id in stored.new:
                outcomes[position] = Outcome(position, Status.stored, record.external_id)
            elif record.external_id in stored.conflicting:
                outcomes[position] = _conflict(position, record.external_id, "the task already holds it with another text")
            else:
                outcomes[position] = Outcome(position, Status.duplicate, record.external_id)
        return [outcomes[position] for position in self.positions]


def _conflict(position: int, external_id: str, where: str) -> Outcome:
    reason = f"duplicate id with different text: id {external_id!r} is not stored again, {where} (the first text stands)"
    return Outcome(position, Status.conflict, external_id, code="id_conflict", reason=reason)
