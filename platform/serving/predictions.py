"""Predictions for applications: check the request, queue it to the task's champion, and, when
the texts are to be kept, send them into the stream through ingest (source ``predict``) with the
champion's prediction stored beside each, so selection and drift read them without scoring them
again.

Storing is idempotent like ingest itself: a request sent twice stores each text once and each
prediction once (one per text and model version)."""

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from driftloop.platform.config import Settings
from driftloop.platform.errors import InvalidInput
from driftloop.platform.ingestion.records import Record, Rejection, parse_record
from driftloop.platform.ingestion.service import IngestSummary, Outcome, Status, ingest
from driftloop.platform.serving.champions import ServedModel, ServedModels
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.in_lists import in_list_chunks
from driftloop.platform.store.inserts import insert_unless_present
from driftloop.platform.store.models import Prediction, TextRecord
from driftloop.platform.tasks import get_task

SOURCE = "predict"
_TEXT_FIELD = '"text" '


@dataclass(frozen=True)
class PredictRequest:
    """A checked request: the raw records (as ingest takes them) and their parsed form."""

    raw: list[dict[str, object]]
    records: list[Record]

    @property
    def texts(self) -> list[str]:
        return [record.text for record in self.records]


@dataclass(frozen=True)
class Predictions:
    task: str
    version: int
    labels: list[str]  # the model's label order: the columns of ``probabilities``
    probabilities: np.ndarray  # (texts, labels)
    stored: list[Outcome] | None = None  # what ingest made of each text, when they were stored


def check_request(texts: Sequence[object] | None, records: Sequence[object] | None, settings: Settings) -> PredictRequest:
    """The request's records, or :class:`InvalidInput` naming the first bad one (``texts[i]`` or
    ``records[i]``); the limits are ingest's."""
    if (texts is None) == (records is None):
        raise InvalidInput('give either "texts" (a list of strings) or "records" (a list of objects), not both', field="body")
    given, name = (texts, "texts") if texts is not None else (records, "records")
    if not given:
        raise InvalidInput(f"give at least one text in {name!r}", field=name)
    if len(given) > settings.ingest_max_records_per_request:
        raise InvalidInput(f"{len(given)} {name}, more than the {settings.ingest_max_records_per_request} a request may hold", field=name)
    raw: list[dict[str, object]] = []
    parsed: list[Record] = []
    for index, item in enumerate(given):
        entry = {"text": item} if name == "texts" else item
        record = parse_record(entry, max_text_chars=settings.ingest_max_text_chars)
        if isinstance(record, Rejection):
            # a bare text is named by its place alone: "texts[3] is empty", 'records[3]: "text" is empty'
            bare = name == "texts" and record.reason.startswith(_TEXT_FIELD)
            said = " " + record.reason[len(_TEXT_FIELD) :] if bare else ": " + record.reason
            raise InvalidInput(f"{name}[{index}]{said}", field=f"{name}[{index}]", reason=record.code)
        raw.append(entry)  # type: ignore[arg-type]  # parse_record accepted it: an object
        parsed.append(record)
    return PredictRequest(raw, parsed)


def submit(models: ServedModels, task: str, request: PredictRequest) -> tuple[ServedModel, "Future[np.ndarray]"]:
    """Queue the request to the champion (it runs in the next batch): the model, and the rows to come."""
    return models.submit(task, request.texts)


def predictions(served: ServedModel, probabilities: np.ndarray) -> Predictions:
    return Predictions(served.task, served.version, list(served.model.labels), probabilities)


def predict(models: ServedModels, settings: Settings, task: str, request: PredictRequest) -> Predictions:
    """The champion's probabilities for the request's texts, in order (waits for its batch)."""
    served, future = submit(models, task, request)
    return predictions(served, future.result())


def store(engine: Engine, settings: Settings, request: PredictRequest, result: Predictions, version_id: int) -> Predictions:
    """Send the texts into the stream (ingest, source ``predict``) and store each prediction with
    the version that made it; what ingest made of each text comes back in ``stored``."""
    outcomes = [
        outcome
        for batch in ingest(
            engine,
            result.task,
            enumerate(request.raw),
            max_text_chars=settings.ingest_max_text_chars,
            batch_size=max(len(request.raw), 1),
            source=SOURCE,
        )
        for outcome in batch
    ]
    kept = [i for i, outcome in enumerate(outcomes) if outcome.status in (Status.stored, Status.duplicate)]
    with session_scope(engine) as session:
        task_id = get_task(session, result.task).id
        ids = _text_ids(session, task_id, [request.records[i] for i in kept])
        rows = [
            {
                "text_id": ids[request.records[i].external_id],
                "model_version_id": version_id,
                "label": result.labels[int(result.probabilities[i].argmax())],
                "probabilities": [round(float(p), 6) for p in result.probabilities[i]],
            }
            for i in kept
            if request.records[i].external_id in ids
        ]
        if rows:
            session.execute(insert_unless_present(session, Prediction), rows)
    return Predictions(result.task, result.version, result.labels, result.probabilities, outcomes)


def summary(outcomes: list[Outcome]) -> IngestSummary:
    counted = IngestSummary()
    counted.count(outcomes)
    return counted


def _text_ids(session: Session, task_id: int, records: list[Record]) -> dict[str, int]:
    """The store's id of each record's text, by the record's external id. A record without an id
    may have matched a text stored under another id with the same content: found by its hash."""
    found: dict[str, int] = {}
    by_id = [r.external_id for r in records if r.has_given_id]
    by_hash = {r.content_hash: r.external_id for r in records if not r.has_given_id}
    for chunk in in_list_chunks(by_id):
        found.update(session.execute(select(TextRecord.external_id, TextRecord.id).where(TextRecord.task_id == task_id, TextRecord.external_id.in_(chunk))).all())
    for chunk in in_list_chunks(list(by_hash)):
        rows = session.execute(
            select(TextRecord.content_hash, TextRecord.id)
            .where(TextRecord.task_id == task_id, TextRecord.content_hash.in_(chunk))
            .order_by(TextRecord.id)
        )
        for digest, text_id in rows:
            found.setdefault(by_hash[digest], text_id)
    return found
