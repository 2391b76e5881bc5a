import uuid

from fastapi.testclient import TestClient


def test_create_get_add_labels_and_list(client: TestClient) -> None:
    name = f"api-{uuid.uuid4().hex[:8]}"
    created = client.post("/v1/tasks", json={"name": name, "labels": ["neg", "pos"]})
    assert created.status_code == 201
    assert created.json()["labels"] == ["neg", "pos"]

    added = client.post(f"/v1/tasks/{name}/labels", json={"labels": ["neutral"]})
    assert added.json()["labels"] == ["neg", "pos", "neutral"]
    assert client.get(f"/v1/tasks/{name}").json()["labels"] == ["neg", "pos", "neutral"]
    assert name in [t["name"] for t in client.get("/v1/tasks").json()]


def test_errors_are_json_with_a_code(client: TestClient) -> None:
    name = f"api-{uuid.uuid4().hex[:8]}"
    client.post("/v1/tasks", json={"name": name, "labels": ["a"]})

    duplicate = client.post("/v1/tasks", json={"name": name, "labels": ["a"]})
    assert (duplicate.status_code, duplicate.json()["error"]) == (409, "already_exists")

    unknown = client.get("/v1/tasks/nope")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")

    bad_name = client.post("/v1/tasks", json={"name": "has space", "labels": ["a"]})
    assert (bad_name.status_code, bad_name.json()["error"]) == (422, "invalid_input")

    no_labels = client.post("/v1/tasks", json={"name": "x"})
    assert (no_labels.status_code, no_labels.json()["error"]) == (422, "invalid_request")
    assert no_labels.json()["problems"][0]["loc"] == ["body", "labels"]
