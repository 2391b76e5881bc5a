import json
import uuid

import pytest
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


def test_show_counts_the_texts_like_the_list(client: TestClient) -> None:
    name = f"api-{uuid.uuid4().hex[:8]}"
    assert client.post("/v1/tasks", json={"name": name, "labels": ["a", "b"]}).json()["texts"] == 0
    client.post(f"/v1/tasks/{name}/texts", json=[{"text": "one"}, {"text": "two"}, {"text": "three"}])
    listed = next(t for t in client.get("/v1/tasks").json() if t["name"] == name)
    assert client.get(f"/v1/tasks/{name}").json()["texts"] == listed["texts"] == 3
    assert client.post(f"/v1/tasks/{name}/labels", json={"labels": ["c"]}).json()["texts"] == 3


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


@pytest.mark.parametrize(
    "body",
    [
        {"name": "t-nul", "labels": ["a\u0000"]},
        {"name": "t-sur", "labels": ["a\ud800"]},
        {"name": "t\u0000nul", "labels": ["a"]},
        {"name": "t\ud800", "labels": ["a"]},
        {"name": "trailing-newline\n", "labels": ["a"]},
    ],
)
def test_names_and_labels_the_store_cannot_hold_are_422(client: TestClient, body: dict) -> None:
    # json.dumps writes a lone surrogate as the escape a client would send
    response = client.post("/v1/tasks", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"
    assert client.get("/v1/tasks").status_code == 200


def test_labels_the_store_cannot_hold_are_refused_when_added(client: TestClient) -> None:
    name = f"api-{uuid.uuid4().hex[:8]}"
    client.post("/v1/tasks", json={"name": name, "labels": ["a"]})
    for label in ["b\u0000", "b\ud800"]:
        response = client.post(f"/v1/tasks/{name}/labels", content=json.dumps({"labels": [label]}), headers={"content-type": "application/json"})
        assert (response.status_code, response.json()["error"]) == (422, "invalid_input")
    assert client.get(f"/v1/tasks/{name}").json()["labels"] == ["a"]


@pytest.mark.parametrize("path", ["/v1/tasks/a%00b", "/v1/tasks/%ED%A0%80", "/v1/tasks/a%00b/models", "/v1/tasks/x%00/labels"])
def test_task_names_no_task_can_have_are_404(client: TestClient, path: str) -> None:
    response = client.post(path, json={"labels": ["a"]}) if path.endswith("/labels") else client.get(path)
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


@pytest.mark.parametrize(
    "path",
    ["/v1/jobs/2147483648", "/v1/jobs/0", "/v1/jobs/-1", "/v1/jobs/99999999999999999999999"],
)
def test_out_of_range_job_ids_are_422(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")
    assert response.json()["problems"][0]["loc"] == ["path", "job_id"]


def test_out_of_range_versions_are_422(client: TestClient) -> None:
    name = f"api-{uuid.uuid4().hex[:8]}"
    client.post("/v1/tasks", json={"name": name, "labels": ["a"]})
    response = client.post(f"/v1/tasks/{name}/models/275394665541036900352/promote")
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")
    assert client.post(f"/v1/tasks/{name}/models/2147483647/promote").status_code == 404


def test_every_error_matches_the_published_error_model(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error_model = spec["components"]["schemas"]["ErrorBody"]
    assert error_model["properties"]["detail"]["type"] == "string"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            declared = {code for code in operation["responses"] if code.startswith(("4", "5"))}
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in declared, f"{method} {path}"
            for code in declared:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, f"{method} {path} {code}"
    invalid = client.post("/v1/tasks", json={"name": "x"}).json()
    assert isinstance(invalid["detail"], str) and invalid["problems"][0]["loc"] == ["body", "labels"]


def test_settings_are_set_with_patch_and_shown_with_the_task(client: TestClient) -> None:
    name = f"api-{uuid.uuid4().hex[:8]}"
    created = client.post("/v1/tasks", json={"name": name, "labels": ["a", "b"]}).json()
    every = ["gate", "half_life_labels", "eval_fraction", "store_predictions"]
    assert created["settings"] == {"gate": "current", "half_life_labels": 200, "eval_fraction": 0.0, "store_predictions": True, "defaults": every}

    changed = client.patch(f"/v1/tasks/{name}", json={"gate": "strict", "eval_fraction": 0})
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == name and changed.json()["labels"] == ["a", "b"]
    assert changed.json()["settings"] == {
        "gate": "strict", "half_life_labels": 200, "eval_fraction": 0.0, "store_predictions": True, "defaults": ["half_life_labels", "store_predictions"]
    }  # fmt: skip
    again = client.patch(f"/v1/tasks/{name}", json={"half_life_labels": 50, "store_predictions": False, "gate": None})
    settings = {"gate": "strict", "half_life_labels": 50, "eval_fraction": 0.0, "store_predictions": False, "defaults": []}
    assert again.json()["settings"] == settings  # null left the gate as it was
    assert client.get(f"/v1/tasks/{name}").json()["settings"] == settings
    assert next(t for t in client.get("/v1/tasks").json() if t["name"] == name)["settings"] == settings


def test_the_task_s_eval_fraction_set_over_http_splits_its_imported_labels(client: TestClient) -> None:
    from collections import Counter

    from sqlalchemy import select

    from driftloop.platform.labels.service import import_labels
    from driftloop.platform.store.engine import session_scope
    from driftloop.platform.store.models import Label, Task

    engine = client.app.state.engine  # type: ignore[attr-defined]
    splits = {}
    for fraction in (0.0, 0.5):
        name = f"api-{uuid.uuid4().hex[:8]}"
        client.post("/v1/tasks", json={"name": name, "labels": ["a", "b"]})
        assert client.patch(f"/v1/tasks/{name}", json={"eval_fraction": fraction}).status_code == 200
        client.post(f"/v1/tasks/{name}/texts", json=[{"id": f"x{i}", "text": f"text {i}"} for i in range(50)])
        answers = enumerate({"id": f"x{i}", "label": "ab"[i % 2]} for i in range(50))
        list(import_labels(engine, name, answers, gold=False, default_annotator="ops", eval_fraction=0.2))
        with session_scope(engine) as session:
            rows = session.scalars(select(Label.split).join(Task, Task.id == Label.task_id).where(Task.name == name))
            splits[fraction] = Counter(split.value for split in rows)
    assert splits[0.0] == {"train": 50}
    assert splits[0.5] == {"train": 26, "eval": 24}  # round(25 * 0.5) of each class's 25


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ({"gate": "lax"}, ["body", "gate"], "'current' or 'strict'"),
        ({"half_life_labels": 0}, ["body", "half_life_labels"], "greater than or equal to 1"),
        ({"half_life_labels": "50"}, ["body", "half_life_labels"], "valid integer"),
        ({"half_life_labels": True}, ["body", "half_life_labels"], "valid integer"),
        ({"eval_fraction": 1}, ["body", "eval_fraction"], "less than 1"),
        ({"eval_fraction": -0.5}, ["body", "eval_fraction"], "greater than or equal to 0"),
        ({"store_predictions": "yes"}, ["body", "store_predictions"], "valid boolean"),
        ({"policy": "strict"}, ["body", "policy"], "not permitted"),
        ([{"gate": "strict"}], ["body"], "valid dictionary"),
    ],
)
def test_invalid_settings_are_422_naming_the_setting(client: TestClient, body: object, where: list[str], says: str) -> None:
    name = f"api-{uuid.uuid4().hex[:8]}"
    client.post("/v1/tasks", json={"name": name, "labels": ["a"]})
    answer = client.patch(f"/v1/tasks/{name}", json=body)
    assert (answer.status_code, answer.json()["error"]) == (422, "invalid_request"), answer.text
    [problem] = answer.json()["problems"]
    assert problem["loc"] == where and says in problem["msg"], problem
    assert client.get(f"/v1/tasks/{name}").json()["settings"]["defaults"] == ["gate", "half_life_labels", "eval_fraction", "store_predictions"]


def test_a_patch_that_changes_nothing_is_422_and_an_unknown_task_404(client: TestClient) -> None:
    name = f"api-{uuid.uuid4().hex[:8]}"
    client.post("/v1/tasks", json={"name": name, "labels": ["a"]})
    for empty in ({}, {"gate": None}):
        answer = client.patch(f"/v1/tasks/{name}", json=empty)
        assert (answer.status_code, answer.json()["error"]) == (422, "invalid_input")
        assert answer.json()["detail"].startswith("nothing to change: give gate, half_life_labels, eval_fraction or store_predictions")
    unknown = client.patch("/v1/tasks/no-such-task", json={"gate": "strict"})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")


def test_only_an_admin_key_for_the_task_changes_its_settings(client: TestClient) -> None:
    from tests.api_keys import make_key

    engine = client.app.state.engine  # type: ignore[attr-defined]
    name, other = f"api-{uuid.uuid4().hex[:8]}", f"api-{uuid.uuid4().hex[:8]}"
    for task in (name, other):
        client.post("/v1/tasks", json={"name": task, "labels": ["a"]})
    for key in (make_key(engine, "ingest,predict,label,train,promote", task=name), make_key(engine, "admin", task=other)):
        refused = client.patch(f"/v1/tasks/{name}", json={"gate": "strict"}, headers={"Authorization": f"Bearer {key}"})
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    assert client.get(f"/v1/tasks/{name}").json()["settings"]["gate"] == "current"
    bound = client.patch(f"/v1/tasks/{name}", json={"gate": "strict"}, headers={"Authorization": f"Bearer {make_key(engine, 'admin', task=name)}"})
    assert bound.status_code == 200 and bound.json()["settings"]["gate"] == "strict"
