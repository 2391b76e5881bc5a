"""Pull annotators' responses from Argilla into the store.

``sync`` first retries pending pushes, then reads every record of every dataset generation of the
task with its responses, and stores each annotator's latest answer as an annotation:
submitted → the chosen label, discarded → a skip, drafts → ignored until submitted. A response
changed later in Argilla changes the annotation, and the text is aggregated again (majority vote;
a tie stays unresolved). The poll (`driftloop sync`) and the webhook both call this; reading is
idempotent, so a sync that finds nothing new writes nothing.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import UUID

import argilla as rg
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from driftloop.labeling.dataset import QUESTION, LabelingConfig, generations
from driftloop.labeling.push import PushResult, push_pending
from driftloop.platform.config import Settings
from driftloop.platform.labels.aggregation import majority_vote
from driftloop.platform.labels.agreement import Agreement, agreement
from driftloop.platform.labels.outbox import requeue, text_id_of
from driftloop.platform.labels.service import Answer, record_answers
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Annotation, AnnotationStatus, Label, Push, Task
from driftloop.platform.tasks import get_task

_PAGE = 500
_WRITE_BATCH = 1000


@dataclass(frozen=True)
class SyncResult:
    push: PushResult
    responses: int  # submitted and discarded responses read
    labels_changed: int
    skipped: int  # texts discarded by at least one annotator
    unresolved: int  # texts whose submitted answers tie (or are too few for a first label)
    agreement: Agreement | None


def sync(
    engine: Engine,
    settings: Settings,
    task_name: str,
    connect: Callable[[], rg.Argilla],
    *,
    dimensions: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SyncResult:
    pushed = push_pending(engine, settings, task_name, connect, dimensions=dimensions)
    if pushed.error:
        # Argilla is unreachable or refused: report it, but still summarise what the store has.
        return _summary(engine, task_name, pushed, responses=0, changed=0)
    client = connect()
    with session_scope(engine) as session:
        task = get_task(session, task_name)
        task_id, names, config = task.id, generations(task), LabelingConfig.of(task)
        known = set(session.scalars(select(Push.text_id).where(Push.task_id == task_id)))  # texts this task pushed
    users = {user.id: user.username for user in client.users}
    latest: dict[tuple[int, str], Answer] = {}  # oldest generation and record first: a re-queued text's newer answer wins
    for name in names:
        dataset = client.datasets(name=name, workspace=settings.argilla_workspace)
        if dataset is not None:
            latest.update({(a.text_id, a.annotator): a for a in _answers(client, dataset, users, progress) if a.text_id in known})
    answers = list(latest.values())
    changed = 0
    for start in range(0, len(answers), _WRITE_BATCH):
        with session_scope(engine) as session:
            task = get_task(session, task_name)
            batch = answers[start : start + _WRITE_BATCH]
            changed += len(
                record_answers(session, task, batch, eval_fraction=settings.eval_fraction, min_answers=config.min_submitted)
            )
    return _summary(engine, task_name, pushed, responses=len(answers), changed=changed)


def _answers(
    client: rg.Argilla, dataset: rg.Dataset, users: dict[UUID, str], progress: Callable[[int, int], None] | None
) -> Iterator[Answer]:
    # The low-level list call: the SDK's Record drops a discarded response that has no values.
    offset = 0
    while page := client.api.records.list(dataset.id, offset=offset, limit=_PAGE, with_suggestions=False, with_responses=True):
        offset += len(page)
        if progress:
            progress(offset, offset + (_PAGE if len(page) == _PAGE else 0))
        for record in page:
            text_id = text_id_of(str(record.external_id or ""))
            if text_id is None:
                continue  # not a record driftloop pushed
            for response in record.responses or []:
                status = AnnotationStatus(response.status)
                if status == AnnotationStatus.draft:
                    continue
                value = ((response.values or {}).get(QUESTION) or {}).get("value")
                label = value if status == AnnotationStatus.submitted else None
                if status == AnnotationStatus.submitted and not isinstance(label, str):
                    continue  # a submitted response without our question's answer: nothing to learn
                annotator = users.get(response.user_id, str(response.user_id))
                yield Answer(text_id, annotator, label, status, str(record.external_id))
        if len(page) < _PAGE:
            break


def _summary(engine: Engine, task_name: str, pushed: PushResult, *, responses: int, changed: int) -> SyncResult:
    with session_scope(engine) as session:
        task = get_task(session, task_name)
        rows = _annotation_rows(session, task.id)
        ties = _ties(rows, _labelled(session, task.id), LabelingConfig.of(task).min_submitted)
    submitted = [(t, a, label) for t, a, label, status in rows if status == AnnotationStatus.submitted and label]
    skipped = len({t for t, _, _, status in rows if status == AnnotationStatus.discarded})
    return SyncResult(pushed, responses, changed, skipped, len(ties), agreement(submitted))


def requeue_ties(engine: Engine, task_name: str) -> int:
    """Send the texts whose answers tie back to the outbox as new records, for more opinions; how
    many. The next push (or sync) takes them to Argilla."""
    with session_scope(engine) as session:
        task = get_task(session, task_name, lock=True)
        return requeue(session, task.id, unresolved(session, task))


def unresolved(session: Session, task: Task) -> list[int]:
    """Texts whose submitted answers tie, or are still too few for a first label."""
    return _ties(_annotation_rows(session, task.id), _labelled(session, task.id), LabelingConfig.of(task).min_submitted)


def _ties(rows: list[tuple[int, str, str | None, AnnotationStatus]], labelled: set[int], min_answers: int) -> list[int]:
    votes: dict[int, list[str]] = {}
    for text_id, _, label, status in rows:
        if status == AnnotationStatus.submitted and label:
            votes.setdefault(text_id, []).append(label)
    return sorted(
        text_id
        for text_id, answers in votes.items()
        if (vote := majority_vote(answers)).label is None or (text_id not in labelled and vote.n < min_answers)
    )


def _labelled(session: Session, task_id: int) -> set[int]:
    return set(session.scalars(select(Label.text_id).where(Label.task_id == task_id)))


def _annotation_rows(session: Session, task_id: int) -> list[tuple[int, str, str | None, AnnotationStatus]]:
    query = select(Annotation.text_id, Annotation.annotator, Annotation.label, Annotation.status).where(
        Annotation.task_id == task_id
    )
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]
