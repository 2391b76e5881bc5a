import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from driftloop.platform.errors import NotFound
from driftloop.platform.ingestion.service import IngestSummary, Outcome, Status, ingest, stored_ids
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Task, TextRecord
from tests.conftest import DRIFTLOOP, store_env
from tests.ingestion.stored import stored_texts


def run(engine: Engine, task: str, records: list[object], batch_size: int = 100) -> list[Outcome]:
    batches = ingest(engine, task, enumerate(records), max_text_chars=1000, batch_size=batch_size)
    return [outcome for batch in batches for outcome in batch]


def test_records_are_stored_with_their_fields(engine: Engine, task_name: str) -> None:
    outcomes = run(engine, task_name, [{"text": "a flu shot", "id": "x1", "ts": "2014-01-02T03:04:05Z", "meta": {"k": [1]}}])
    assert [o.status for o in outcomes] == [Status.stored]
    (row,) = stored_texts(engine, task_name)
    assert (row.external_id, row.text, row.meta) == ("x1", "a flu shot", {"k": [1]})
    assert row.event_time.isoformat() == "2014-01-02T03:04:05+00:00"
    assert row.received_at.tzinfo is not None
    assert row.meta is not None and row.content_hash is not None


def test_stored_ids_map_the_producers_ids_to_the_stores(engine: Engine, task_name: str) -> None:
    run(engine, task_name, [{"text": "one", "id": "a"}, {"text": "two", "id": "b"}, {"text": "three", "id": "c"}])
    ids = stored_ids(engine, task_name)
    assert set(ids) == {"a", "b", "c"} and len(set(ids.values())) == 3
    assert {row.external_id: row.id for row in stored_texts(engine, task_name)} == ids
    with pytest.raises(NotFound):
        stored_ids(engine, "no-such-task")


def test_ingest_is_idempotent_on_id_and_on_content(engine: Engine, task_name: str) -> None:
    first = [{"text": "one", "id": "1"}, {"text": "two"}, {"text": "three", "id": "3"}]
    assert [o.status for o in run(engine, task_name, first)] == [Status.stored] * 3

    again = [
        {"text": "one", "id": "1"},  # same id, same text: duplicate
        {"text": " two "},  # no id, same content: duplicate
        {"text": "three"},  # no id, content already stored under id 3: duplicate
        {"text": "one", "id": "1b"},  # a new id with old content is a new text
        {"text": "four"},
        {"text": "three, edited", "id": "3"},  # a stored id with another text: a conflict, not a silent duplicate
    ]
    outcomes = run(engine, task_name, again)
    assert [o.status for o in outcomes] == [Status.duplicate] * 3 + [Status.stored] * 2 + [Status.conflict]
    assert outcomes[5].code == "id_conflict"
    assert "duplicate id with different text" in outcomes[5].reason and "already holds it" in outcomes[5].reason
    assert [t.text for t in stored_texts(engine, task_name)] == ["one", "two", "three", "one", "four"]


def test_repeats_inside_one_batch_are_duplicates_or_conflicts(engine: Engine, task_name: str) -> None:
    records = [{"text": "a", "id": "1"}, {"text": "b", "id": "1"}, {"text": "c"}, {"text": "c"}, {"text": "a", "id": "1"}]
    outcomes = run(engine, task_name, records)
    assert [o.status for o in outcomes] == [
        Status.stored,
        Status.conflict,  # id 1 again with another text: reported, the first text stands
        Status.stored,
        Status.duplicate,
        Status.duplicate,  # id 1 again with its own text
    ]
    assert outcomes[1].reason.startswith("duplicate id with different text") and "(at 0)" in outcomes[1].reason
    assert [t.text for t in stored_texts(engine, task_name)] == ["a", "c"]
    summary = IngestSummary()
    summary.count(outcomes)
    assert str(summary) == "ingested 2, duplicates 2, rejected 0, conflicts 1"


def test_bad_records_are_rejected_alone_and_outcomes_keep_input_order(engine: Engine, task_name: str) -> None:
    records = [{"text": f"t{i}"} for i in range(250)]
    records[7] = {"text": ""}
    records[130] = "nope"
    outcomes = run(engine, task_name, records, batch_size=100)
    assert [o.position for o in outcomes] == list(range(250))
    rejected = {o.position: o.code for o in outcomes if o.status is Status.rejected}
    assert rejected == {7: "empty_text", 130: "not_object"}
    assert len(stored_texts(engine, task_name)) == 248


def test_concurrent_ingests_of_the_same_file_store_each_text_once(engine: Engine, task_name: str, tmp_path: Path) -> None:
    """Two real processes race on the same 6,000 lines (half with ids, half content-only)."""
    lines = []
    for i in range(3000):
        lines.append(json.dumps({"text": f"text with id {i}", "id": f"id-{i}"}))
        lines.append(json.dumps({"text": f"text without id {i % 2000}"}))
    source = tmp_path / "stream.jsonl"
    source.write_text("\n".join(lines) + "\n")
    env = {**store_env(engine, tmp_path), "DRIFTLOOP_INGEST_BATCH_SIZE": "500"}

    processes = [
        subprocess.Popen([DRIFTLOOP, "ingest", task_name, str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env})
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [e.decode() for _, e in outputs]

    totals = IngestSummary()
    for out, _ in outputs:
        ingested, duplicates, rejected = (int(part.split()[-1]) for part in out.decode().strip().split(", "))
        totals.ingested += ingested
        totals.duplicates += duplicates
        totals.rejected += rejected
    unique = 3000 + 2000
    assert totals.ingested == unique
    assert totals.duplicates == 2 * len(lines) - unique
    with session_scope(engine) as session:
        count = session.scalar(select(func.count()).select_from(TextRecord).join(Task).where(Task.name == task_name))
    assert count == unique
