"""`POST …/train` and `…/select` refuse what the round would refuse before a job exists (issue
21): an unknown task, no labels to learn from, no text left to pick. Before, they answered 202 and
the job failed on its runner."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job


def _jobs(engine: Engine) -> int:
    with session_scope(engine, read_only=True) as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_train_refuses_a_round_with_nothing_to_learn_and_queues_no_job(client: TestClient, engine: Engine, task_name: str) -> None:
    before = _jobs(engine)
    empty = client.post(f"/v1/tasks/{task_name}/train", json={})
    assert empty.status_code == 422, empty.text
    assert empty.json()["error"] == "invalid_input" and "has no training labels yet" in str(empty.json()["detail"])
    missing = client.post("/v1/tasks/no-such-task/train", json={})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert _jobs(engine) == before


def test_select_refuses_a_round_with_nothing_to_pick_and_queues_no_job(client: TestClient, engine: Engine, task_name: str) -> None:
    before = _jobs(engine)
    empty = client.post(f"/v1/tasks/{task_name}/select", json={"budget": 3})
    assert empty.status_code == 422, empty.text
    assert empty.json()["error"] == "invalid_input" and "no unlabeled, unpicked texts" in str(empty.json()["detail"])
    assert client.post("/v1/tasks/no-such-task/select", json={"budget": 3}).status_code == 404
    assert _jobs(engine) == before
