import json
import uuid

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def task(client: TestClient) -> str:
    name = f"api-{uuid.uuid4().hex[:8]}"
    assert client.post("/v1/tasks", json={"name": name, "labels": ["a", "b"]}).status_code == 201
    return name


def test_each_record_gets_its_outcome(client: TestClient, task: str) -> None:
    body = [
        {"text": "fine", "id": "1"},
        {"text": "x" * 101},
        {"text": "also fine", "ts": "2015-01-01T00:00:00Z", "meta": {"src": "app"}},
        {"id": "no text"},
        {"text": "fine again", "id": "1"},
    ]
    response = client.post(f"/v1/tasks/{task}/texts", json=body)
    assert response.status_code == 200
    payload = response.json()
    assert (payload["stored"], payload["duplicates"], payload["rejected"], payload["conflicts"]) == (2, 0, 2, 1)
    results = payload["results"]
    assert [r["status"] for r in results] == ["stored", "rejected", "stored", "rejected", "conflict"]
    assert results[4]["error"] == "id_conflict" and results[4]["reason"].startswith("duplicate id with different text")
    assert results[1] == {
        "index": 1,
        "status": "rejected",
        "id": None,
        "error": "text_too_long",
        "reason": '"text" has 101 characters, over the limit of 100',
    }
    assert results[3]["error"] == "missing_text"

    resent = client.post(f"/v1/tasks/{task}/texts", json=body).json()
    assert (resent["stored"], resent["duplicates"], resent["conflicts"]) == (0, 2, 1)


def test_too_many_records_is_413_naming_the_first_index_over(client: TestClient, task: str) -> None:
    response = client.post(f"/v1/tasks/{task}/texts", json=[{"text": str(i)} for i in range(51)])
    assert response.status_code == 413
    assert response.json()["error"] == "too_many_records"
    assert (response.json()["index"], response.json()["limit"]) == (50, 50)
    stored = next(t for t in client.get("/v1/tasks").json() if t["name"] == task)["texts"]
    assert stored == 0, "nothing of a refused request is stored"


def test_body_over_the_byte_limit_is_413(client: TestClient, task: str) -> None:
    response = client.post(f"/v1/tasks/{task}/texts", json=[{"text": "y" * 50}] * 45 * 10)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"text": "an object, not an array"}', "invalid_body"),
        (b"\xff\xfe", "invalid_json"),
        (b"", "invalid_json"),
    ],
)
def test_malformed_bodies_are_422_never_500(client: TestClient, task: str, body: bytes, code: str) -> None:
    response = client.post(f"/v1/tasks/{task}/texts", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == code


def test_unknown_task_is_404(client: TestClient) -> None:
    response = client.post("/v1/tasks/missing/texts", json=[{"text": "a"}])
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


@pytest.mark.parametrize("record", [None, 1, [], {"text": {"nested": 1}}, {"text": "ok", "meta": "str"}, {"text": "a" * 10, "ts": []}])
def test_odd_records_are_rejected_not_500(client: TestClient, task: str, record: object) -> None:
    response = client.post(f"/v1/tasks/{task}/texts", content=json.dumps([record]), headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "rejected"


def test_health_and_metrics(client: TestClient, task: str) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    client.post(f"/v1/tasks/{task}/texts", json=[{"text": "counted"}])
    metrics = client.get("/metrics").text
    assert f'driftloop_ingest_records_total{{status="stored",task="{task}"}} 1.0' in metrics
