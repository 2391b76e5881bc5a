"""The labeling outbox: picks queued for the labeling tool in the ``pushes`` table, and the
record ids derived from text ids.

Plain SQL on the store, so it lives in the platform: selection queues a round's picks in the
round's own transaction, and ``driftloop.labeling`` (which talks to Argilla) drains the queue."""

from collections.abc import Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from driftloop.platform.store.in_lists import in_list_chunks
from driftloop.platform.store.models import Annotation, Label, Push, PushState

RECORD_PREFIX = "text-"


def record_id(text_id: int) -> str:
    return f"{RECORD_PREFIX}{text_id}"


def text_id_of(record_external_id: str) -> int | None:
    """The text id a record id was derived from (``text-12``, or ``text-12-r1`` once re-queued);
    None for records driftloop did not push."""
    if not record_external_id.startswith(RECORD_PREFIX):
        return None
    head = record_external_id[len(RECORD_PREFIX) :].split("-r", 1)[0]
    return int(head) if head.isdigit() else None


def requeue(session: Session, task_id: int, text_ids: Sequence[int]) -> int:
    """Ask for more opinions on texts whose answers tie: each goes out again as a new record
    (``text-<id>-r<n>``), so annotators see it as pending; the earlier record and its answers
    stay, and an annotator's newer answer replaces their older one."""
    pushes = [
        push
        for chunk in in_list_chunks(text_ids)
        for push in session.scalars(select(Push).where(Push.task_id == task_id, Push.text_id.in_(chunk)))
    ]
    for push in pushes:
        base, _, count = push.record_id.partition("-r")
        push.record_id = f"{base}-r{int(count or 0) + 1}"
        push.state, push.dataset = PushState.pending, None
    session.flush()
    return len(pushes)


def queue_picks(session: Session, task_id: int, round_id: int, text_ids: Sequence[int]) -> None:
    """Queue a round's picks for labeling (called inside the transaction that records the round)."""
    session.add_all(Push(task_id=task_id, text_id=t, round_id=round_id, record_id=record_id(t)) for t in text_ids)


def pending_count(session: Session, task_id: int) -> int:
    return int(session.scalar(select(func.count()).where(Push.task_id == task_id, Push.state == PushState.pending)) or 0)


def awaiting_answers(session: Session, task_id: int) -> int:
    """Picks sent (or on their way) to the labeling tool that nobody has answered and that have
    no label yet: while there are some, the round is still being labeled."""
    query = select(func.count()).where(
        Push.task_id == task_id,
        ~exists().where(Annotation.text_id == Push.text_id),
        ~exists().where(Label.text_id == Push.text_id),
    )
    return int(session.scalar(query) or 0)
