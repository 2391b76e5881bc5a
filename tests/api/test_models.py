"""Models and jobs over HTTP, on a task trained for real (head mode, BBC headlines)."""

import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings
from tests.learning_loop import Loop


def test_list_promote_and_read_the_training_job(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(sqlite_engine, tmp_path, headlines, encoder)
    loop.label(loop.headlines[:300])
    first = loop.train()
    loop.label([h for h in loop.headlines[300:] if h[2] == "tech"][:60])
    refused = loop.train(replay="none", past_windows=1)
    assert not refused.gate.passed

    settings = Settings(home=tmp_path, database_url=str(sqlite_engine.url))
    with TestClient(create_app(settings)) as client:
        models = client.get(f"/v1/tasks/{loop.task}/models").json()
        assert [(m["version"], m["status"]) for m in models] == [(1, "champion"), (2, "rejected")]
        assert models[0]["metrics"]["accuracy"] > 0.5

        denied = client.post(f"/v1/tasks/{loop.task}/models/2/promote")
        assert (denied.status_code, denied.json()["error"]) == (409, "promotion_refused")
        forced = client.post(f"/v1/tasks/{loop.task}/models/2/promote", json={"force_reason": "ops accepted"})
        assert (forced.status_code, forced.json()["status"]) == (200, "champion")

        job = client.get(f"/v1/jobs/{first.job_id}").json()
        assert (job["state"], job["progress"], job["result"]["version"]) == ("succeeded", 1.0, 1)
        assert client.get("/v1/jobs/999999").status_code == 404
        assert client.get(f"/v1/tasks/no-{uuid.uuid4().hex[:6]}/models").status_code == 404
