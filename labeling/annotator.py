"""A simulated annotator for the demo and the benchmarks.

With an Argilla, it works like a person in the UI: it logs in with its own user, lists the
records pending for it in the dataset (the UI's search call, with the "pending" response
filter, and optionally a filter on the records' ``round`` metadata), and submits an answer per
record (the UI's bulk responses call), so the whole path through Argilla, the search backend
and ``sync`` is exercised. Without one, it writes its answers straight into the store.

Give it a user of its own, never a person's: its answers are then told apart from theirs, and
with ``round_id`` it answers only the records of its own selection round, never those left in
the dataset for people.
"""

from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine

from driftloop.labeling.dataset import ROUND
from driftloop.platform.labels.outbox import text_id_of
from driftloop.platform.labels.service import Answer, record_answers
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import AnnotationStatus
from driftloop.platform.tasks import get_task

# text id → the label to give, or None to discard the record (the text fits no label)
Oracle = Callable[[int], str | None]

_PAGE = 100  # the UI's page size; also the bulk endpoint's maximum
_PENDING = {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]}


@dataclass(frozen=True)
class AnnotatorLogin:
    url: str
    username: str
    password: str


class SimulatedAnnotator:
    def __init__(self, oracle: Oracle, name: str = "simulated") -> None:
        self.oracle = oracle
        self.name = name

    def label_in_argilla(
        self, login: AnnotatorLogin, dataset_name: str, *, limit: int | None = None, round_id: int | None = None
    ) -> int:
        """Answer up to ``limit`` records pending for this user, only those of selection round
        ``round_id`` when it is given; return how many were answered."""
        filters = [_PENDING]
        if round_id is not None:
            scope = {"entity": "metadata", "metadata_property": ROUND}
            filters.append({"type": "range", "scope": scope, "ge": round_id, "le": round_id})
        with httpx.Client(base_url=login.url, timeout=60) as http:
            token = http.post("/api/v1/token", data={"username": login.username, "password": login.password})
            token.raise_for_status()
            http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            dataset_id = _dataset_id(http, dataset_name)
            answered = 0
            while limit is None or answered < limit:
                page = _pending(http, dataset_id, {"and": filters}, min(_PAGE, limit - answered) if limit else _PAGE)
                if not page:
                    break
                items = [self._response(record) for record in page]
                result = http.post("/api/v1/me/responses/bulk", json={"items": items})
                result.raise_for_status()
                errors = [item["error"] for item in result.json()["items"] if item.get("error")]
                if errors:
                    raise RuntimeError(f"Argilla refused {len(errors)} responses, e.g. {errors[0]}")
                answered += len(items)
            return answered

    def label_in_store(self, engine: Engine, task_name: str, text_ids: list[int], *, eval_fraction: float) -> int:
        """Answer the given texts straight into the store (no labeling tool configured)."""
        answers = []
        for text_id in text_ids:
            label = self.oracle(text_id)
            status = AnnotationStatus.submitted if label else AnnotationStatus.discarded
            answers.append(Answer(text_id, self.name, label, status))
        with session_scope(engine) as session:
            record_answers(session, get_task(session, task_name), answers, eval_fraction=eval_fraction)
        return len(answers)

    def _response(self, record: dict) -> dict:  # type: ignore[type-arg]
        text_id = text_id_of(record.get("external_id") or "")
        label = self.oracle(text_id) if text_id is not None else None
        if label is None:
            return {"record_id": record["id"], "status": "discarded"}
        return {"record_id": record["id"], "status": "submitted", "values": {"label": {"value": label}}}


def _dataset_id(http: httpx.Client, name: str) -> str:
    datasets = http.get("/api/v1/me/datasets")
    datasets.raise_for_status()
    for dataset in datasets.json()["items"]:
        if dataset["name"] == name:
            return str(dataset["id"])
    raise LookupError(f"no dataset {name!r} is visible to this annotator")


def _pending(http: httpx.Client, dataset_id: str, filters: dict, size: int) -> list[dict]:  # type: ignore[type-arg]
    # Always the first page: answering a record takes it out of this user's pending list.
    response = http.post(
        f"/api/v1/me/datasets/{dataset_id}/records/search",
        params={"offset": 0, "limit": size},
        json={"filters": filters},
    )
    response.raise_for_status()
    return [item["record"] for item in response.json()["items"]]
