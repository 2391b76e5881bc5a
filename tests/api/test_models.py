"""Models and jobs over HTTP, on a task trained for real (head mode, BBC headlines)."""

import uuid
from pathlib import Path

from sqlalchemy import Engine

from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings
from tests.api_keys import admin_client
from tests.learning_loop import Loop


def test_list_promote_and_read_the_training_job(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(sqlite_engine, tmp_path, headlines, encoder)
    loop.label(loop.headlines[:300])
    first = loop.train()
    loop.label([h for h in loop.headlines[300:] if h[2] == "tech"][:60])
    refused = loop.train(replay="none", past_windows=1)
    assert not refused.gate.passed

    settings = Settings(home=tmp_path, database_url=str(sqlite_engine.url))
    with admin_client(create_app(settings)) as client:
        models = client.get(f"/v1/tasks/{loop.task}/models").json()
        assert [(m["version"], m["status"]) for m in models] == [(1, "champion"), (2, "rejected")]
        assert models[0]["metrics"]["accuracy"] > 0.5
        # each version's own metrics come from its own round's eval split, which grew in between;
        # the comparable ones from the latest gate: both versions on the same eval labels
        gated = next(s for s in refused.gate.slices if s.name == "all")
        assert models[0]["metrics"]["n"] < gated.candidate.n == models[1]["metrics"]["n"]
        for model, measured in zip(models, (gated.champion, gated.candidate), strict=True):
            comparable = model["comparable"]
            assert (comparable["slice"], comparable["n"], comparable["candidate"], comparable["champion"]) == ("all", gated.candidate.n, 2, 1)
            assert (comparable["macro_f1"], comparable["accuracy"]) == (measured.macro_f1, measured.accuracy)

        denied = client.post(f"/v1/tasks/{loop.task}/models/2/promote")
        assert (denied.status_code, denied.json()["error"]) == (409, "promotion_refused")
        forced = client.post(f"/v1/tasks/{loop.task}/models/2/promote", json={"force_reason": "ops accepted"})
        assert (forced.status_code, forced.json()["status"]) == (200, "champion")
        # an override measures nothing: the comparable figures stay those of the last real gate
        assert forced.json()["comparable"] == models[1]["comparable"]

        job = client.get(f"/v1/jobs/{first.job_id}").json()
        assert (job["state"], job["progress"], job["result"]["version"]) == ("succeeded", 1.0, 1)
        assert client.get("/v1/jobs/999999").status_code == 404
        assert client.get(f"/v1/tasks/no-{uuid.uuid4().hex[:6]}/models").status_code == 404
