"""What the store holds, for people: row counts per table and each task's stream."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.platform.store.models import Base, Task, TextRecord


@dataclass(frozen=True)
class TaskStream:
    task: str
    texts: int
    first_received: datetime | None
    last_received: datetime | None
    first_event: datetime | None
    last_event: datetime | None


@dataclass(frozen=True)
class Inventory:
    tables: dict[str, int]
    streams: list[TaskStream]


def inventory(session: Session) -> Inventory:
    tables = {
        name: session.scalar(select(func.count()).select_from(table)) or 0
        for name, table in sorted(Base.metadata.tables.items())
    }
    rows = session.execute(
        select(
            Task.name,
            func.count(TextRecord.id),
            func.min(TextRecord.received_at),
            func.max(TextRecord.received_at),
            func.min(TextRecord.event_time),
            func.max(TextRecord.event_time),
        )
        .outerjoin(TextRecord, TextRecord.task_id == Task.id)
        .group_by(Task.name)
        .order_by(Task.name)
    )
    return Inventory(tables, [TaskStream(*row) for row in rows])
