"""What ingest left in the store, read back for the tests' assertions."""

from sqlalchemy import Engine, select

from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Task, TextRecord


def stored_texts(engine: Engine, task: str) -> list[TextRecord]:
    with session_scope(engine) as session:
        return list(
            session.scalars(select(TextRecord).join(Task).where(Task.name == task).order_by(TextRecord.id))
        )
