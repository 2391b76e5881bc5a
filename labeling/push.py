"""Picked texts go to Argilla through an outbox: the ``pushes`` table.

A selection round queues its picks as pending pushes in the same transaction that records the
round, so a pick is never lost between the store and Argilla. ``push_pending`` sends pending
pushes in batches; a batch is marked pushed only after Argilla accepted it, and a failure leaves
it pending with the error, to be retried by the next push or sync. Record ids are derived from
text ids and Argilla upserts by id, so a batch sent twice (a crash after Argilla accepted it but
before the store noted it) updates the same records instead of duplicating them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import argilla as rg
import httpx
import numpy as np
from argilla._exceptions import ArgillaError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from driftloop.labeling.connection import LabelingUnavailable, connect, target
from driftloop.labeling.dataset import FIELD, QUESTION, ROUND, VECTOR, LabelingConfig, provision
from driftloop.platform.config import Settings
from driftloop.platform.labels.outbox import pending_count
from driftloop.platform.modeling.embeddings import read_vectors
from driftloop.platform.modeling.encoder import encoder_dimensions
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.in_lists import in_list_chunks
from driftloop.platform.store.models import (
    Annotation,
    Embedding,
    ModelVersion,
    Prediction,
    Push,
    PushState,
    SelectionPick,
    SelectionRound,
    Task,
    TextRecord,
)
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PushResult:
    dataset: str | None
    pushed: int
    moved: int  # unanswered records moved from an older generation of the dataset
    pending: int  # still waiting after this call (Argilla down, or an error)
    error: str | None = None


def push_pending(
    engine: Engine,
    settings: Settings,
    task_name: str,
    connect: Callable[[], rg.Argilla],
    *,
    dimensions: int | None = None,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> PushResult:
    """Send the task's pending pushes to its current dataset. Never raises for Argilla being
    unreachable: the pushes stay pending and the result says why."""
    dimensions = dimensions or encoder_dimensions(settings)
    with session_scope(engine) as session:
        task = get_task(session, task_name)
        task_id = task.id
        total = pending_count(session, task_id)
    pushed = moved = 0
    dataset_name: str | None = None
    try:
        client = connect()
        batch_size = min(batch_size, client.api.records.MAX_RECORDS_PER_UPSERT_BULK)
        with session_scope(engine) as session:
            task = get_task(session, task_name, lock=True)
            dataset, older = provision(client, session, task, workspace=settings.argilla_workspace, dimensions=dimensions)
            dataset_name = dataset.name
            config = LabelingConfig.of(task)
            moved = _move_unanswered(session, client, task, older)
        total += moved
        while batch := _next_batch(engine, task_id, batch_size):
            try:
                with session_scope(engine) as session:
                    records = _records(session, settings, task_id, batch, config, dimensions)
                _upsert(client, dataset, records)
            except (LabelingUnavailable, ArgillaError, httpx.HTTPError):
                raise  # noted below, with the other pending pushes
            except Exception as error:
                _note_failure(engine, batch, error)
                raise
            _note_pushed(engine, batch, dataset.name)
            pushed += len(batch)
            if progress:
                progress(pushed, total)
    except (LabelingUnavailable, ArgillaError, httpx.HTTPError) as error:
        _note_failure(engine, _pending_ids(engine, task_id), error)
        with session_scope(engine) as session:
            remaining = pending_count(session, task_id)
        return PushResult(dataset_name, pushed, moved, remaining, f"{type(error).__name__}: {error}")
    return PushResult(dataset_name, pushed, moved, 0)


def push_if_configured(engine: Engine, settings: Settings, task_name: str) -> PushResult | None:
    """Send the task's pending picks to Argilla when one is configured or running; None when
    none is: the picks then wait in the outbox for a later push or sync."""
    if target(settings) is None:
        return None
    return push_pending(engine, settings, task_name, lambda: connect(settings))


def _upsert(client: rg.Argilla, dataset: rg.Dataset, records: list[rg.Record]) -> None:
    """One bulk upsert through the SDK's API client. Not ``dataset.records.log``: it draws a tqdm
    bar of its own and logs a warning whenever a batch is smaller than its batch size, both into
    driftloop's output, and has no switch for either."""
    for record in records:
        record.dataset = dataset  # suggestions find their question's id through it
    client.api.records.bulk_upsert(dataset_id=dataset.id, records=[record.api_model() for record in records])


def _pending_ids(engine: Engine, task_id: int) -> list[int]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Push.id).where(Push.task_id == task_id, Push.state == PushState.pending)))


def _next_batch(engine: Engine, task_id: int, size: int) -> list[int]:
    with session_scope(engine) as session:
        query = select(Push.id).where(Push.task_id == task_id, Push.state == PushState.pending).order_by(Push.id).limit(size)
        return list(session.scalars(query))


def _records(
    session: Session, settings: Settings, task_id: int, push_ids: list[int], config: LabelingConfig, dimensions: int
) -> list[rg.Record]:
    rows = session.execute(
        select(Push, TextRecord, SelectionPick, SelectionRound)
        .join(TextRecord, TextRecord.id == Push.text_id)
        .outerjoin(SelectionPick, (SelectionPick.task_id == Push.task_id) & (SelectionPick.text_id == Push.text_id))
        .outerjoin(SelectionRound, SelectionRound.id == SelectionPick.round_id)
        .where(Push.id.in_(push_ids))
        .order_by(Push.id)
    ).all()
    text_ids = [push.text_id for push, *_ in rows]
    vectors = _vectors(session, settings, task_id, text_ids, dimensions)
    predictions = _predictions(session, text_ids, {r.model_version_id for *_, r in rows if r is not None})
    records = []
    for push, text, pick, round_ in rows:
        prediction = predictions.get(text.id)
        metadata = {
            "strategy": round_.strategy if round_ else None,
            "score": pick.score if pick else None,
            "cluster": pick.cluster if pick else None,
            ROUND: round_.id if round_ else None,
            "predicted_label": prediction[0] if prediction else None,
            "source": _source(text.meta),
            "received_day": _day(text.received_at),
        }
        suggestions = []
        if prediction and config.suggestions:
            label, score, version = prediction
            suggestions.append(rg.Suggestion(question_name=QUESTION, value=label, score=score, agent=f"champion v{version}"))
        records.append(
            rg.Record(
                id=push.record_id,
                fields={FIELD: text.text},
                metadata={k: v for k, v in metadata.items() if v is not None},
                vectors={VECTOR: vectors[text.id].tolist()} if text.id in vectors else {},
                suggestions=suggestions,
            )
        )
    return records


def _vectors(session: Session, settings: Settings, task_id: int, text_ids: list[int], dimensions: int) -> dict[int, np.ndarray]:
    """The texts' cached base embeddings, newest encoder first; texts never embedded get none."""
    rows = session.execute(
        select(Embedding.text_id, Embedding.encoder_id, Embedding.vector_id)
        .where(Embedding.text_id.in_(text_ids))
        .order_by(Embedding.created_at.desc())
    ).all()
    by_encoder: dict[str, list[tuple[int, int]]] = {}
    seen: set[int] = set()
    for text_id, encoder_id, vector_id in rows:
        if text_id not in seen:
            seen.add(text_id)
            by_encoder.setdefault(encoder_id, []).append((text_id, vector_id))
    vectors: dict[int, np.ndarray] = {}
    for encoder_id, pairs in by_encoder.items():
        block = read_vectors(settings.storage, task_id, encoder_id, dimensions, [v for _, v in pairs])
        vectors.update({text_id: block[i] for i, (text_id, _) in enumerate(pairs)})
    return vectors


def _predictions(session: Session, text_ids: list[int], version_ids: set[int | None]) -> dict[int, tuple[str, float, int]]:
    """The prediction of the model that scored each text for its round: (label, probability, version)."""
    version_ids.discard(None)
    if not version_ids:
        return {}
    rows = session.execute(
        select(Prediction.text_id, Prediction.label, Prediction.probabilities, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == Prediction.model_version_id)
        .where(Prediction.text_id.in_(text_ids), Prediction.model_version_id.in_(version_ids))
    )
    return {text_id: (label, float(max(proba)), version) for text_id, label, proba, version in rows}


def _move_unanswered(session: Session, client: rg.Argilla, task: Task, older: list[rg.Dataset]) -> int:
    """Records of older dataset generations that nobody answered go back to pending, to be
    pushed into the current generation (which has the task's whole label set)."""
    moved = 0
    for dataset in older:
        candidates = session.scalars(
            select(Push).where(Push.task_id == task.id, Push.dataset == dataset.name, Push.state == PushState.pushed)
        ).all()
        answered = set(session.scalars(select(Annotation.text_id).where(Annotation.task_id == task.id)))
        unanswered = {p.record_id: p for p in candidates if p.text_id not in answered}
        if not unanswered:
            continue
        # Answers may have arrived since the last sync (a discard too, which the SDK's Record
        # hides): ask Argilla itself, record by record, before deleting anything.
        stale = [r for r in _all_records(client, dataset) if r.external_id in unanswered and not r.responses]
        for start in range(0, len(stale), 100):
            client.api.records.delete_many(dataset.id, stale[start : start + 100])
        for record in stale:
            push = unanswered[str(record.external_id)]
            push.state, push.dataset = PushState.pending, None
        moved += len(stale)
    session.flush()
    return moved


def _all_records(client: rg.Argilla, dataset: rg.Dataset) -> list:  # type: ignore[type-arg]
    records, offset = [], 0
    while page := client.api.records.list(dataset.id, offset=offset, limit=500, with_suggestions=False, with_responses=True):
        records += page
        offset += len(page)
        if len(page) < 500:
            break
    return records


def _note_pushed(engine: Engine, push_ids: list[int], dataset: str) -> None:
    with session_scope(engine) as session:
        now = utcnow()
        for push in session.scalars(select(Push).where(Push.id.in_(push_ids))):
            push.state, push.dataset, push.pushed_at, push.last_error = PushState.pushed, dataset, now, None
            push.attempts += 1


def _note_failure(engine: Engine, push_ids: list[int], error: Exception) -> None:
    """``push_ids`` may be every pending push of the task (Argilla down): a backlog of any size."""
    with session_scope(engine) as session:
        for chunk in in_list_chunks(push_ids):
            for push in session.scalars(select(Push).where(Push.id.in_(chunk))):
                push.attempts += 1
                push.last_error = f"{type(error).__name__}: {error}"[:2000]


def _source(meta: dict | None) -> str | None:  # type: ignore[type-arg]
    value = (meta or {}).get("source")
    return str(value)[:200] if value is not None else None


def _day(moment: datetime | None) -> str | None:
    return moment.date().isoformat() if moment else None
