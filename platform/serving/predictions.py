"""Predictions for applications: check the request, queue it to the task's champion, and, when
the texts are to be kept, send them into the stream through ingest (source ``predict``) with the
champion's prediction stored beside each, so selection and drift read them without scoring them
again.

Storing is idempotent like ingest itself: a request sent twice stores each text once and each
prediction once (one per text and model version). Concurrent requests' writes are committed
together (:class:`PredictionStore`)."""

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from driftloop.platform.config import Settings
from driftloop.platform.errors import InvalidInput
from driftloop.platform.ingestion.records import Record, Rejection, check_count, parse_record
from driftloop.platform.ingestion.service import Outcome, Status, ingest
from driftloop.platform.serving.batching import Batcher, Work
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


def check_request(texts: Sequence[object] | None, records: Sequence[object] | None, settings: Settings) -> PredictRequest:
    """The request's records, or :class:`InvalidInput` naming the first bad one (``texts[i]`` or
    ``records[i]``); the limits are ingest's, and so is the error for too many (:func:`check_count`)."""
    if (texts is None) == (records is None):
        raise InvalidInput('give either "texts" (a list of strings) or "records" (a list of objects), not both', field="body")
    given, name = (texts, "texts") if texts is not None else (records, "records")
    if not given:
        raise InvalidInput(f"give at least one text in {name!r}", field=name)
    check_count(len(given), settings.ingest_max_records_per_request, name)
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


class PredictionStore:
    """The store path's group commit: the texts and predictions of concurrent requests are written
    together, one ingest transaction and one insert of predictions for all of them, by one thread
    (a :class:`Batcher` of writes), instead of two transactions per request. Each request waits
    for the commit of its group before it is answered."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self._writes: Batcher | None = None  # its thread starts with the first write, not with every API
        self._guard = threading.Lock()

    def submit(self, request: PredictRequest, result: Predictions, version_id: int) -> "Future[list[Outcome]]":
        """Queue the request's texts and predictions; the future holds what ingest made of each text."""
        with self._guard:
            if self._writes is None:
                self._writes = Batcher(
                    self._write,
                    name="prediction store",
                    max_batch=self.settings.ingest_max_records_per_request,
                    max_wait=self.settings.serve_max_wait_ms / 1000,
                    max_queue=self.settings.serve_max_queue,
                    sizes=None,
                )
        return self._writes.submit(request.raw, (request, result, version_id))

    def close(self) -> None:
        with self._guard:
            if self._writes is not None:
                self._writes.close()

    def _write(self, batch: list[Work]) -> list[list[Outcome]]:
        answers: list[list[Outcome]] = [[] for _ in batch]
        for task in dict.fromkeys(work.context[1].task for work in batch):
            mine = [i for i, work in enumerate(batch) if work.context[1].task == task]
            for i, outcomes in zip(mine, store(self.engine, self.settings, [batch[i].context for i in mine]), strict=True):
                answers[i] = outcomes
        return answers


def store(engine: Engine, settings: Settings, requests: Sequence[tuple[PredictRequest, Predictions, int]]) -> list[list[Outcome]]:
    """Send the requests' texts (all of one task) into the stream, ingest's source ``predict``, in
    one transaction, then store each prediction with the version that made it; what ingest made of
    each text, per request. Requests later in the list see the earlier ones' texts as duplicates,
    as if sent one after the other."""
    task = requests[0][1].task
    raw = [(request, position) for request, _, _ in requests for position in range(len(request.raw))]
    outcomes = [
        outcome
        for batch in ingest(
            engine,
            task,
            enumerate(request.raw[position] for request, position in raw),
            max_text_chars=settings.ingest_max_text_chars,
            batch_size=max(len(raw), 1),
            source=SOURCE,
        )
        for outcome in batch
    ]
    records = [request.records[position] for request, position in raw]
    rows_of = [(result, version_id, i) for _, result, version_id in requests for i in range(len(result.probabilities))]
    kept = [i for i, outcome in enumerate(outcomes) if outcome.status in (Status.stored, Status.duplicate)]
    with session_scope(engine) as session:
        ids = _text_ids(session, get_task(session, task).id, [records[i] for i in kept])
        rows = []
        for i in kept:
            result, version_id, row = rows_of[i]
            if records[i].external_id in ids:
                probabilities = result.probabilities[row]
                rows.append(
                    {
                        "text_id": ids[records[i].external_id],
                        "model_version_id": version_id,
                        "label": result.labels[int(probabilities.argmax())],
                        "probabilities": [round(float(p), 6) for p in probabilities],
                    }
                )
        if rows:
            session.execute(insert_unless_present(session, Prediction), rows)
    answers, start = [], 0
    for request, _, _ in requests:  # each request's outcomes, numbered as in the request
        answers.append([replace(o, position=o.position - start) for o in outcomes[start : start + len(request.raw)]])
        start += len(request.raw)
    return answers


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
