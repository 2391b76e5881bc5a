"""A task's schedules over HTTP, on SQLite and PostgreSQL: the round trip, and every refusal as a
JSON error that says what and where (never a 500)."""

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings


@pytest.fixture
def task(client: TestClient) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    assert client.post("/v1/tasks", json={"name": name, "labels": ["a", "b"]}).status_code == 201
    return name


def test_add_list_show_pause_resume_remove(client: TestClient, task: str) -> None:
    base = f"/v1/tasks/{task}/schedules"
    created = client.post(base, json={"action": "select", "every": "6h", "params": {"budget": 50, "strategy": "margin"}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"{base}/{body['id']}"
    assert (body["action"], body["trigger"], body["every_seconds"], body["params"]) == ("select", "every 6h", 21600, {"budget": 50, "strategy": "margin"})
    assert body["paused"] is False and body["next_run_at"] is not None and body["last_fired_at"] is None
    drift = client.post(base, json={"action": "train", "on_drift": True, "params": {"mode": "head", "epochs": 2}}).json()
    labels = client.post(base, json={"action": "sync", "after_labels": 200}).json()
    cron = client.post(base, json={"action": "train", "cron": "0 3 * * *"}).json()

    listed = client.get(base)
    assert listed.status_code == 200
    assert [(s["id"], s["trigger"]) for s in listed.json()] == [
        (body["id"], "every 6h"), (drift["id"], "on drift"), (labels["id"], "after 200 labels"), (cron["id"], "cron 0 3 * * *")
    ]
    shown = client.get(f"{base}/{body['id']}")
    assert shown.status_code == 200 and shown.json()["firings"] == [] and shown.json()["trigger"] == "every 6h"

    paused = client.post(f"{base}/{body['id']}/pause")
    assert (paused.status_code, paused.json()["paused"]) == (200, True)
    again = client.post(f"{base}/{body['id']}/pause")
    assert (again.status_code, again.json()["error"]) == (409, "conflict") and "paused already" in again.json()["detail"]
    assert client.get(f"{base}/{body['id']}").json()["paused"] is True
    resumed = client.post(f"{base}/{body['id']}/resume")
    assert (resumed.status_code, resumed.json()["paused"]) == (200, False)
    assert client.post(f"{base}/{body['id']}/resume").status_code == 409

    duplicate = client.post(base, json={"action": "sync", "after_labels": 200})
    assert (duplicate.status_code, duplicate.json()["schedule"]) == (409, labels["id"])

    assert client.delete(f"{base}/{body['id']}").status_code == 204
    gone = client.get(f"{base}/{body['id']}")
    assert (gone.status_code, gone.json()["error"]) == (404, "not_found")
    assert client.delete(f"{base}/{body['id']}").status_code == 404
    assert [s["id"] for s in client.get(base).json()] == [drift["id"], labels["id"], cron["id"]]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"action": "sync"}, "trigger", "exactly one trigger"),
        ({"action": "sync", "every": "1h", "after_labels": 5}, "trigger", "got every and after_labels"),
        ({"action": "sync", "every": "6 hours"}, "every", "not a duration: use a whole number and a unit"),
        ({"action": "sync", "cron": "0 3 * *"}, "cron", "not a valid cron expression"),
        ({"action": "select", "every": "1h"}, "params.budget", "select needs the param budget"),
        ({"action": "select", "every": "1h", "params": {"budget": 2.5}}, "params.budget", "must be an integer"),
        ({"action": "train", "every": "1h", "params": {"replay": "all"}}, "params.replay", "none, reservoir, balanced"),
        ('{"action": "drift", "every": "1h", "params": {"x": 1e999}}', "params.x", "finite"),  # JSON's way to say infinity
    ],
)
def test_invalid_schedules_answer_422_with_what_and_where(client: TestClient, task: str, body: dict | str, field: str, message: str) -> None:  # type: ignore[type-arg]
    url = f"/v1/tasks/{task}/schedules"
    response = client.post(url, content=body, headers={"content-type": "application/json"}) if isinstance(body, str) else client.post(url, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"
    assert response.json()["field"] == field and message in response.json()["detail"]
    assert client.get(f"/v1/tasks/{task}/schedules").json() == []


def test_the_schema_refuses_what_is_not_a_schedule(client: TestClient, task: str) -> None:
    for body in ({"action": "deploy", "every": "1h"}, {"action": "sync", "after_labels": 0}, {"action": "sync", "every": "1h", "params": {"a": [1]}}):
        response = client.post(f"/v1/tasks/{task}/schedules", json=body)
        assert (response.status_code, response.json()["error"]) == (422, "invalid_request"), body
        assert response.json()["problems"]


def test_an_unknown_task_or_schedule_is_a_404(client: TestClient, task: str) -> None:
    missing = f"no-{uuid.uuid4().hex[:6]}"
    for response in (
        client.post(f"/v1/tasks/{missing}/schedules", json={"action": "sync", "every": "1h"}),
        client.post(f"/v1/tasks/{missing}/schedules", json={"action": "select", "every": "bad"}),  # the task is looked up first
        client.get(f"/v1/tasks/{missing}/schedules"),
        client.get(f"/v1/tasks/{task}/schedules/2147483647"),
        client.post(f"/v1/tasks/{task}/schedules/2147483647/pause"),
    ):
        assert (response.status_code, response.json()["error"]) == (404, "not_found"), response.text
    # a schedule is found under its own task only
    created = client.post(f"/v1/tasks/{task}/schedules", json={"action": "sync", "every": "1h"}).json()
    other = f"o-{uuid.uuid4().hex[:6]}"
    client.post("/v1/tasks", json={"name": other, "labels": ["a"]})
    assert client.get(f"/v1/tasks/{other}/schedules/{created['id']}").status_code == 404
    assert client.delete(f"/v1/tasks/{other}/schedules/{created['id']}").status_code == 404
    assert client.get(f"/v1/tasks/{task}/schedules/2147483648").status_code == 422


def test_schedules_run_in_the_api_only_when_asked_and_without_a_broker(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = engine.url.render_as_string(hide_password=False)
    assert create_app(Settings(home=tmp_path, database_url=url), run_schedules=True).state.run_schedules is True
    assert create_app(Settings(home=tmp_path, database_url=url)).state.run_schedules is False
    brokered = Settings(home=tmp_path, database_url=url, broker_url="redis://127.0.0.1:6379/11")
    assert create_app(brokered, run_schedules=True).state.run_schedules is False
