"""The SQL search backend answers as Argilla's Elasticsearch one would, through the real server: the
SDK's queries (owner) and the REST calls the UI makes (annotators logged in with a token)."""

import math
import time
from dataclasses import dataclass
from uuid import uuid4

import argilla as rg
import httpx
import pytest

LABELS = ["pos", "neg"]


def _unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


# id, text, source, confidence, vector angle (degrees), suggested label, suggestion score
RECORDS = [
    ("r0", "the cat sat on the mat", "web", 0.1, 0, "pos", 0.9),
    ("r1", "a dog chased the cat", "web", 0.4, 20, "neg", 0.6),
    ("r2", "stock markets fell sharply", "news", 0.6, 90, "neg", 0.95),
    ("r3", "the central bank raised rates", "news", 0.9, 70, "pos", 0.3),
    ("r4", "cats and dogs are pets", "forum", 0.5, 45, "pos", 0.7),
    ("r5", "rates and markets", "forum", None, 180, "neg", 0.85),
]
ALL = {row[0] for row in RECORDS}


@dataclass
class LabelingDataset:
    sdk: rg.Dataset
    id: str
    record_ids: dict[str, str]  # external id -> server id
    external_ids: dict[str, str]  # server id -> external id


def _settings(min_submitted: int) -> rg.Settings:
    return rg.Settings(
        fields=[rg.TextField("text")],
        questions=[rg.LabelQuestion("label", labels=LABELS)],
        metadata=[rg.TermsMetadataProperty("source"), rg.FloatMetadataProperty("confidence")],
        vectors=[rg.VectorField("embedding", dimensions=2)],
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


def _record(external_id: str, text: str, source: str, confidence, angle: float, label: str, score: float) -> rg.Record:
    metadata = {"source": source} if confidence is None else {"source": source, "confidence": confidence}
    return rg.Record(
        id=external_id,
        fields={"text": text},
        metadata=metadata,
        vectors={"embedding": _unit(angle)},
        suggestions=[rg.Suggestion("label", label, score=score, agent="model-1")],
    )


@pytest.fixture
def make_dataset(argilla_server, argilla_client, dataset_name):  # type: ignore[no-untyped-def]
    def make(min_submitted: int = 1, records: list[rg.Record] | None = None) -> LabelingDataset:
        dataset = rg.Dataset(
            name=f"{dataset_name}-{uuid4().hex[:6]}",
            workspace=argilla_server.workspace,
            settings=_settings(min_submitted),
            client=argilla_client,
        ).create()
        dataset.records.log(records if records is not None else [_record(*row) for row in RECORDS])
        with argilla_server.owner_http() as owner:
            listed = owner.get(f"/api/v1/datasets/{dataset.id}/records", params={"limit": 1000}).json()["items"]
        ids = {item["external_id"]: item["id"] for item in listed}
        return LabelingDataset(dataset, str(dataset.id), ids, {v: k for k, v in ids.items()})

    return make


# REST helpers: the bodies the UI sends -------------------------------------------------------------


def _terms(scope: dict, values: list[str]) -> dict:
    return {"type": "terms", "scope": scope, "values": values}


RESPONSE_STATUS = {"entity": "response", "property": "status"}
RECORD_STATUS = {"entity": "record", "property": "status"}


def search(
    http: httpx.Client, dataset: LabelingDataset, *, me: bool, filters=(), sort=None, offset=0, limit=50
) -> tuple[list[str], int]:
    """External ids of the matching records, in the order returned, and the total."""
    path = f"/api/v1/me/datasets/{dataset.id}/records/search" if me else f"/api/v1/datasets/{dataset.id}/records/search"
    body: dict = {}
    if filters:
        body["filters"] = {"and": list(filters)}
    if sort:
        body["sort"] = sort
    response = http.post(path, json=body, params={"offset": offset, "limit": limit})
    assert response.status_code == 200, response.text
    result = response.json()
    return [dataset.external_ids[item["record"]["id"]] for item in result["items"]], result["total"]


def respond(http: httpx.Client, dataset: LabelingDataset, external_id: str, label: str | None, status="submitted"):
    body: dict = {"status": status}
    if label is not None:
        body["values"] = {"label": {"value": label}}
    response = http.post(f"/api/v1/records/{dataset.record_ids[external_id]}/responses", json=body)
    assert response.status_code == 201, response.text


def sdk_ids(dataset: LabelingDataset, query: rg.Query) -> list[str]:
    return [item[0].id if isinstance(item, tuple) else item.id for item in dataset.sdk.records(query=query)]


# Pending, completion, progress -----------------------------------------------------------------------


def test_pending_is_per_annotator_and_completion_waits_for_min_submitted(argilla_server, make_dataset):
    dataset = make_dataset(min_submitted=2)
    pending = _terms(RESPONSE_STATUS, ["pending"])
    completed = _terms(RECORD_STATUS, ["completed"])
    with (
        argilla_server.annotator_http("annotator-1") as first,
        argilla_server.annotator_http("annotator-2") as second,
        argilla_server.owner_http() as owner,
    ):
        assert search(first, dataset, me=True, filters=[pending])[1] == 6

        respond(first, dataset, "r0", "pos")
        assert set(search(first, dataset, me=True, filters=[pending])[0]) == ALL - {"r0"}
        assert set(search(second, dataset, me=True, filters=[pending])[0]) == ALL
        assert search(owner, dataset, me=False, filters=[completed]) == ([], 0)

        respond(second, dataset, "r0", "neg")
        assert search(owner, dataset, me=False, filters=[completed]) == (["r0"], 1)
        assert set(search(second, dataset, me=True, filters=[pending])[0]) == ALL - {"r0"}

        progress = owner.get(f"/api/v1/datasets/{dataset.id}/progress").json()
        assert (progress["total"], progress["completed"], progress["pending"]) == (6, 1, 5)
        assert {user["username"] for user in progress["users"]} == {"annotator-1", "annotator-2"}

        respond(first, dataset, "r1", None, status="discarded")
        metrics = first.get(f"/api/v1/me/datasets/{dataset.id}/metrics").json()["responses"]
        assert metrics == {"total": 6, "submitted": 1, "discarded": 1, "draft": 0, "pending": 4}


def test_one_submission_completes_a_record_when_min_submitted_is_one(argilla_server, make_dataset):
    dataset = make_dataset(min_submitted=1)
    with argilla_server.annotator_http("annotator-1") as first, argilla_server.owner_http() as owner:
        respond(first, dataset, "r2", "neg")
        assert search(owner, dataset, me=False, filters=[_terms(RECORD_STATUS, ["completed"])]) == (["r2"], 1)
        assert set(search(owner, dataset, me=False, filters=[_terms(RECORD_STATUS, ["pending"])])[0]) == ALL - {"r2"}
        assert sdk_ids(dataset, rg.Query(filter=rg.Filter(("status", "==", "completed")))) == ["r2"]


def test_response_filters_by_status_user_and_value(argilla_server, make_dataset):
    dataset = make_dataset()
    with (
        argilla_server.annotator_http("annotator-1") as first,
        argilla_server.annotator_http("annotator-2") as second,
        argilla_server.owner_http() as owner,
    ):
        respond(first, dataset, "r0", "pos")
        respond(first, dataset, "r1", None, status="discarded")
        respond(first, dataset, "r2", "neg", status="draft")

        def mine(http: httpx.Client, *statuses: str) -> set[str]:
            return set(search(http, dataset, me=True, filters=[_terms(RESPONSE_STATUS, list(statuses))])[0])

        assert mine(first, "submitted") == {"r0"}
        assert mine(first, "discarded") == {"r1"}
        assert mine(first, "draft") == {"r2"}
        assert mine(first, "pending") == {"r3", "r4", "r5"}
        assert mine(first, "pending", "submitted") == {"r0", "r3", "r4", "r5"}
        assert mine(second, "submitted") == set()
        assert mine(second, "pending") == ALL

        # Without a user (the owner's view): any annotator's response counts.
        value_filter = _terms({"entity": "response", "question": "label"}, ["pos"])
        assert search(owner, dataset, me=False, filters=[value_filter])[0] == ["r0"]
        assert set(search(owner, dataset, me=False, filters=[_terms(RESPONSE_STATUS, ["pending"])])[0]) == {
            "r3",
            "r4",
            "r5",
        }
        assert sdk_ids(dataset, rg.Query(filter=rg.Filter(("response.status", "==", "submitted")))) == ["r0"]


def test_suggestion_and_metadata_filters(make_dataset):
    dataset = make_dataset()

    def ids(*conditions) -> set[str]:
        return set(sdk_ids(dataset, rg.Query(filter=rg.Filter(list(conditions)))))

    assert ids(("label", "==", "neg")) == {"r1", "r2", "r5"}
    assert ids(("label.score", ">=", 0.8)) == {"r0", "r2", "r5"}
    assert ids(("label.agent", "==", "model-1")) == ALL
    assert ids(("metadata.source", "in", ["web", "forum"])) == {"r0", "r1", "r4", "r5"}
    assert ids(("metadata.confidence", ">=", 0.5)) == {"r2", "r3", "r4"}
    assert ids(("metadata.confidence", "<=", 0.4)) == {"r0", "r1"}
    assert ids(("metadata.source", "==", "news"), ("label", "==", "pos")) == {"r3"}


def test_text_query_needs_every_word(make_dataset):
    dataset = make_dataset()

    assert set(sdk_ids(dataset, rg.Query(query="cat"))) == {"r0", "r1"}
    assert set(sdk_ids(dataset, rg.Query(query="cat*"))) == {"r0", "r1", "r4"}
    assert sdk_ids(dataset, rg.Query(query="Markets rates")) == ["r5"]
    assert set(sdk_ids(dataset, rg.Query(query="markets -rates"))) == {"r2"}
    assert set(sdk_ids(dataset, rg.Query(query="cat", filter=rg.Filter(("label", "==", "neg"))))) == {"r1"}


def test_similarity_search_returns_nearest_records_in_order(make_dataset):
    dataset = make_dataset()

    def similar(value, most_similar: bool = True, **query) -> list[tuple[str, float]]:
        results = dataset.sdk.records(
            query=rg.Query(similar=rg.Similar(name="embedding", value=value, most_similar=most_similar), **query)
        )
        return [(record.id, score) for record, score in results]

    by_vector = similar(_unit(5))
    assert [name for name, _ in by_vector] == ["r0", "r1", "r4", "r3", "r2", "r5"]
    scores = [score for _, score in by_vector]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx((1 + math.cos(math.radians(5))) / 2)

    r0 = next(iter(dataset.sdk.records(query=rg.Query(filter=rg.Filter(("id", "==", "r0"))))))
    assert [name for name, _ in similar(r0)][:2] == ["r1", "r4"]  # the record itself is left out
    assert [name for name, _ in similar(_unit(5), most_similar=False)][0] == "r5"
    assert [name for name, _ in similar(_unit(5), filter=rg.Filter(("metadata.source", "==", "news")))] == ["r3", "r2"]


def test_annotators_get_stable_and_different_orders(argilla_server, make_dataset):
    words = ["alpha", "beta", "gamma", "delta", "omega"]
    records = [rg.Record(id=f"s{i}", fields={"text": f"{words[i % 5]} {i}"}) for i in range(30)]
    dataset = make_dataset(records=records)
    pending = [_terms(RESPONSE_STATUS, ["pending"])]
    with argilla_server.annotator_http("annotator-1") as first, argilla_server.annotator_http("annotator-2") as second:
        order, total = search(first, dataset, me=True, filters=pending)
        assert total == 30 and sorted(order) == sorted(f"s{i}" for i in range(30))
        assert search(first, dataset, me=True, filters=pending)[0] == order
        assert search(second, dataset, me=True, filters=pending)[0] != order

        respond(first, dataset, order[0], "pos")
        assert search(first, dataset, me=True, filters=pending)[0] == order[1:]
        page, total = search(first, dataset, me=True, filters=pending, offset=5, limit=10)
        assert (page, total) == (order[6:16], 29)


def test_sort_puts_missing_values_last_and_pages(argilla_server, make_dataset):
    dataset = make_dataset()
    confidence = {"entity": "metadata", "metadata_property": "confidence"}
    with argilla_server.owner_http() as owner:
        assert search(owner, dataset, me=False, sort=[{"scope": confidence, "order": "desc"}])[0] == [
            "r3",
            "r2",
            "r4",
            "r1",
            "r0",
            "r5",
        ]
        ascending, total = search(
            owner, dataset, me=False, sort=[{"scope": confidence, "order": "asc"}], offset=2, limit=3
        )
        assert (ascending, total) == (["r4", "r2", "r3"], 6)
        inserted = {"entity": "record", "property": "inserted_at"}
        assert search(owner, dataset, me=False, sort=[{"scope": inserted, "order": "asc"}])[0] == [
            r[0] for r in RECORDS
        ]


def test_metadata_metrics(argilla_server, make_dataset):
    dataset = make_dataset()
    with argilla_server.owner_http() as owner:
        properties = owner.get(f"/api/v1/me/datasets/{dataset.id}/metadata-properties").json()["items"]
        by_name = {prop["name"]: prop["id"] for prop in properties}
        terms = owner.get(f"/api/v1/metadata-properties/{by_name['source']}/metrics").json()
        numbers = owner.get(f"/api/v1/metadata-properties/{by_name['confidence']}/metrics").json()

    assert terms["total"] == 6
    assert sorted((value["term"], value["count"]) for value in terms["values"]) == [
        ("forum", 2),
        ("news", 2),
        ("web", 2),
    ]
    assert (numbers["min"], numbers["max"]) == (0.1, 0.9)


def test_the_worker_recomputes_record_statuses_when_the_distribution_changes(argilla_server, make_dataset):
    # A job of the background worker: it runs only if the worker is up with the SQL backend registered.
    dataset = make_dataset(min_submitted=2)
    completed = [_terms(RECORD_STATUS, ["completed"])]
    with argilla_server.annotator_http("annotator-1") as first, argilla_server.owner_http() as owner:
        respond(first, dataset, "r4", "pos")
        assert search(owner, dataset, me=False, filters=completed) == ([], 0)

        update = owner.patch(
            f"/api/v1/datasets/{dataset.id}", json={"distribution": {"strategy": "overlap", "min_submitted": 1}}
        )
        assert update.status_code == 200, update.text
        deadline = time.monotonic() + 60
        while search(owner, dataset, me=False, filters=completed)[0] != ["r4"]:
            assert time.monotonic() < deadline, "the worker did not update the record's status"
            time.sleep(0.5)
