"""``IN`` lists of any length: cut to fit one statement each, on both backends."""

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from driftloop.platform.ingestion.service import ingest
from driftloop.platform.labels.outbox import record_id, requeue
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.in_lists import MAX_IN_LIST, in_list_chunks
from driftloop.platform.store.models import Push, TextRecord
from driftloop.platform.tasks import get_task

# More values than PostgreSQL lets one statement bind (65,535).
LONG = 70_000


def test_chunks_keep_every_value_in_order_within_the_bound() -> None:
    values = list(range(2 * MAX_IN_LIST + 1))
    chunks = list(in_list_chunks(iter(values)))
    assert [len(c) for c in chunks] == [MAX_IN_LIST, MAX_IN_LIST, 1]
    assert [v for c in chunks for v in c] == values
    assert list(in_list_chunks([])) == []
    with pytest.raises(ValueError, match="at least one"):
        list(in_list_chunks(values, size=0))


def test_a_requeue_of_more_texts_than_a_statement_can_bind(engine: Engine, task_name: str) -> None:
    records = enumerate({"id": f"x{i}", "text": f"a tie {i}"} for i in range(3))
    list(ingest(engine, task_name, records, max_text_chars=1000, batch_size=10))
    with session_scope(engine) as session:
        task_id = get_task(session, task_name).id
        text_ids = list(session.scalars(select(TextRecord.id).where(TextRecord.task_id == task_id)))
        session.add_all(Push(task_id=task_id, text_id=t, record_id=record_id(t)) for t in text_ids)
    asked = [*range(10**9, 10**9 + LONG), *text_ids]  # unknown ids around the three real ones

    if engine.dialect.name == "postgresql":  # what one statement would do
        with pytest.raises(OperationalError, match="number of parameters"), session_scope(engine) as session:
            session.scalars(select(Push).where(Push.text_id.in_(asked))).all()
    with session_scope(engine) as session:
        assert requeue(session, task_id, asked) == 3
    with session_scope(engine) as session:
        pushes = session.scalars(select(Push).where(Push.task_id == task_id)).all()
        assert sorted(p.record_id for p in pushes) == sorted(f"{record_id(t)}-r1" for t in text_ids)
