"""From annotators' answers to the labels models learn from.

An answer is stored as an annotation (one per text and annotator; a later answer replaces an
earlier one). The text's label is then the majority vote over its submitted annotations; its
train / eval split is decided the first time it gets a label and never changes afterwards.
Gold labels come from ops, not annotators: they go straight to the ``gold`` split, are never
trained on, and annotations cannot overwrite them.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from driftloop.platform.ingestion.records import Rejection, given_id
from driftloop.platform.labels.aggregation import majority_vote
from driftloop.platform.labels.splits import SplitAssigner
from driftloop.platform.storable import text_problem
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.in_lists import in_list_chunks
from driftloop.platform.store.models import Annotation, AnnotationStatus, Label, Split, Task, TextRecord
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import eval_fraction_of, get_task, label_names


class LabelStatus(StrEnum):
    labelled = "labelled"  # the text's label was created or changed
    unchanged = "unchanged"  # recorded, but the text's label stays as it was
    rejected = "rejected"


@dataclass(frozen=True, slots=True)
class LabelOutcome:
    position: int
    status: LabelStatus
    external_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    text_id: int
    annotator: str
    label: str | None  # None for a discarded (skipped) text
    status: AnnotationStatus = AnnotationStatus.submitted
    source_record: str | None = None


def labelled_ids(session: Session, task_name: str) -> set[str]:
    """External ids of the task's texts that have a label (any split)."""
    task = get_task(session, task_name)
    rows = session.scalars(
        select(TextRecord.external_id).join(Label, Label.text_id == TextRecord.id).where(Label.task_id == task.id)
    )
    return set(rows)


def record_answers(
    session: Session, task: Task, answers: Sequence[Answer], *, eval_fraction: float, min_answers: int = 1
) -> set[int]:
    """Store annotators' answers and re-aggregate the texts they touch; return the ids of texts
    whose label was created or changed. A text gets its first label once ``min_answers``
    submitted answers agree by majority; its split then, with the task's own eval fraction
    (`driftloop task set --eval-fraction`), else ``eval_fraction``."""
    text_ids = sorted({a.text_id for a in answers})
    existing = {(a.text_id, a.annotator): a for a in _annotations(session, text_ids)}
    touched: set[int] = set()
    for answer in answers:
        row = existing.get((answer.text_id, answer.annotator))
        if row is None:
            row = Annotation(task_id=task.id, text_id=answer.text_id, annotator=answer.annotator)
            session.add(row)
            existing[(answer.text_id, answer.annotator)] = row
        elif (row.label, row.status, row.source_record) == (answer.label, answer.status, answer.source_record):
            continue  # seen before: a sync that finds nothing new writes nothing
        row.label, row.status, row.source_record, row.updated_at = answer.label, answer.status, answer.source_record, utcnow()
        touched.add(answer.text_id)
    session.flush()
    return _aggregate(session, task, sorted(touched), eval_fraction, min_answers)


def record_gold(session: Session, task: Task, items: Sequence[tuple[int, str]]) -> tuple[set[int], dict[int, str]]:
    """Store gold labels; return (changed text ids, {text id: reason} for refused ones)."""
    labels = _labels(session, [text_id for text_id, _ in items])
    changed: set[int] = set()
    refused: dict[int, str] = {}
    for text_id, value in items:
        row = labels.get(text_id)
        if row is not None and row.split != Split.gold:
            refused[text_id] = f"already labelled for {row.split.value}: gold texts must be held out from training"
            continue
        if row is None:
            row = Label(task_id=task.id, text_id=text_id, split=Split.gold, source="gold", n_annotations=0)
            session.add(row)
            labels[text_id] = row
        if row.label != value:
            row.label = value
            changed.add(text_id)
    session.flush()
    return changed, refused


def import_labels(
    engine: Engine,
    task_name: str,
    entries: Iterable[tuple[int, object]],
    *,
    gold: bool,
    default_annotator: str,
    eval_fraction: float,
    batch_size: int = 1000,
) -> Iterator[list[LabelOutcome]]:
    """Import ``{"id", "label", "annotator"?}`` records; yield each batch's outcomes once committed.
    ``eval_fraction`` splits new labels for a task that has no eval fraction of its own."""
    batch: list[tuple[int, object]] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= batch_size:
            yield _import_batch(engine, task_name, batch, gold, default_annotator, eval_fraction)
            batch = []
    if batch:
        yield _import_batch(engine, task_name, batch, gold, default_annotator, eval_fraction)


def _import_batch(
    engine: Engine, task_name: str, entries: list[tuple[int, object]], gold: bool, default_annotator: str, eval_fraction: float
) -> list[LabelOutcome]:
    with session_scope(engine) as session:
        task = get_task(session, task_name)
        known_labels = label_names(task)
        outcomes: dict[int, LabelOutcome] = {}
        parsed: list[tuple[int, str, str, str]] = []
        for position, raw in entries:
            result = _parse(raw, known_labels, default_annotator)
            if isinstance(result, str):
                outcomes[position] = LabelOutcome(position, LabelStatus.rejected, reason=result)
            else:
                parsed.append((position, *result))

        ids = _text_ids(session, task.id, [external_id for _, external_id, _, _ in parsed])
        resolved: list[tuple[int, str, int, str, str]] = []
        for position, external_id, label, annotator in parsed:
            if external_id not in ids:
                outcomes[position] = LabelOutcome(
                    position, LabelStatus.rejected, external_id, f"no text with id {external_id!r} in task {task.name}"
                )
            else:
                resolved.append((position, external_id, ids[external_id], label, annotator))

        if gold:
            changed, refused = record_gold(session, task, [(text_id, label) for _, _, text_id, label, _ in resolved])
        else:
            answers = [Answer(text_id, annotator, label) for _, _, text_id, label, annotator in resolved]
            changed, refused = record_answers(session, task, answers, eval_fraction=eval_fraction), {}
        for position, external_id, text_id, _, _ in resolved:
            if text_id in refused:
                outcomes[position] = LabelOutcome(position, LabelStatus.rejected, external_id, refused[text_id])
            else:
                status = LabelStatus.labelled if text_id in changed else LabelStatus.unchanged
                outcomes[position] = LabelOutcome(position, status, external_id)
    return [outcomes[position] for position, _ in entries]


def _parse(raw: object, known_labels: list[str], default_annotator: str) -> tuple[str, str, str] | str:
    """(external id, label, annotator), or the reason the record is refused."""
    if not isinstance(raw, dict):
        return "expected a JSON object"
    if raw.get("id") is None:
        return 'missing "id"'
    external_id = given_id(raw["id"])  # ingest's rule: a content id (sha256:…) is fine here
    if isinstance(external_id, Rejection):
        return external_id.reason
    label = raw.get("label")
    if not isinstance(label, str) or not label:
        return 'missing or empty "label"'
    if label not in known_labels:
        return f"label {label!r} is not one of the task's labels ({', '.join(known_labels)}): add it with `driftloop task add-labels`"
    annotator = raw.get("annotator", default_annotator)
    if not isinstance(annotator, str) or not annotator:
        return '"annotator" must be a non-empty string'
    if len(annotator) > 200:
        return f'"annotator" has {len(annotator)} characters, over the limit of 200'
    if problem := text_problem(annotator):
        return f'"annotator" {problem}'
    return external_id, label, annotator


def _text_ids(session: Session, task_id: int, external_ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in in_list_chunks(external_ids):
        rows = session.execute(
            select(TextRecord.external_id, TextRecord.id).where(
                TextRecord.task_id == task_id, TextRecord.external_id.in_(chunk)
            )
        )
        found.update(dict(rows.all()))
    return found


def _annotations(session: Session, text_ids: list[int]) -> list[Annotation]:
    rows: list[Annotation] = []
    for chunk in in_list_chunks(text_ids):
        rows += session.scalars(select(Annotation).where(Annotation.text_id.in_(chunk)))
    return rows


def _labels(session: Session, text_ids: list[int]) -> dict[int, Label]:
    labels: dict[int, Label] = {}
    for chunk in in_list_chunks(text_ids):
        labels.update({row.text_id: row for row in session.scalars(select(Label).where(Label.text_id.in_(chunk)))})
    return labels


def _aggregate(session: Session, task: Task, text_ids: list[int], eval_fraction: float, min_answers: int = 1) -> set[int]:
    answers: dict[int, list[str]] = {}
    for row in _annotations(session, text_ids):
        if row.status == AnnotationStatus.submitted and row.label is not None:
            answers.setdefault(row.text_id, []).append(row.label)
    labels = _labels(session, text_ids)
    splits = SplitAssigner(session, task.id, eval_fraction_of(task, eval_fraction))
    changed: set[int] = set()
    for text_id in text_ids:
        vote = majority_vote(answers.get(text_id, []))
        row = labels.get(text_id)
        if row is not None and row.split == Split.gold:
            continue  # ops' gold label stands
        if row is not None:
            row.agreement, row.n_annotations = vote.agreement, vote.n
        if vote.label is None:
            continue  # tied: keeps its previous label (if any) until the tie is broken
        if row is None and vote.n < min_answers:
            continue  # not enough opinions yet to give the text its first label
        if row is None:
            row = Label(task_id=task.id, text_id=text_id, split=splits.assign(vote.label), source="annotators")
            row.agreement, row.n_annotations = vote.agreement, vote.n
            session.add(row)
        if row.label != vote.label:
            row.label = vote.label
            changed.add(text_id)
    session.flush()
    return changed
