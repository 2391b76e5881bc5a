"""Predictions over HTTP from the task's champion: what the model itself says, the version that
said it, a new champion served once promoted anywhere, and bad input refused by index."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftloop.platform.api.app import create_app
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.rounds import load_version
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task
from tests.api_keys import admin_client
from tests.learning_loop import Loop

TEXTS = ["shares fell sharply as the bank cut its forecast", "the striker scored twice in the final", "a new phone with a folding screen"]


def _champion_proba(loop: Loop, texts: list[str]) -> tuple[int, list[str], np.ndarray]:
    with session_scope(loop.engine) as session:
        champion = registry.champion(session, get_task(session, loop.task).id)
        model = load_version(champion, loop.encoder)
        return champion.version, model.labels, model.predict_proba(texts)


def test_predictions_are_the_champion_s_and_follow_a_promotion(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(sqlite_engine, tmp_path, headlines, encoder)
    settings = loop.settings.model_copy(update={"serve_check_seconds": 0.0})
    with admin_client(create_app(settings)) as client:
        refused = client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": TEXTS})
        assert (refused.status_code, refused.json()["error"]) == (409, "no_champion")  # nothing promoted yet

        loop.label(loop.headlines[:150])
        assert loop.train().promoted
        answer = client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": TEXTS})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        version, labels, expected = _champion_proba(loop, TEXTS)
        assert answer.headers["x-model-version"] == str(version) == str(body["model_version"])
        assert body["task"] == loop.task and len(body["request_id"]) == 32
        for prediction, row in zip(body["predictions"], expected, strict=True):  # one per text, in order
            assert list(prediction["probabilities"]) == labels  # the task's label order
            assert np.allclose(list(prediction["probabilities"].values()), row, atol=1e-5)
            assert prediction["label"] == labels[int(row.argmax())]

        model = client.get(f"/v1/tasks/{loop.task}/model").json()
        assert (model["version"], model["status"], model["gate_verdict"], model["served_here"]) == (version, "champion", "pass", version)

        # promoted elsewhere (here: by a training in this process, not through this API): served next
        loop.label(loop.headlines[150:400])
        second = loop.train()
        assert second.promoted
        after = client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": TEXTS})
        assert after.headers["x-model-version"] == str(second.version)
        _, _, expected = _champion_proba(loop, TEXTS)
        assert np.allclose([list(p["probabilities"].values()) for p in after.json()["predictions"]], expected, atol=1e-5)


@pytest.mark.parametrize(
    ("texts", "field", "reason"),
    [
        ([], "texts", "at least one text"),
        (["fine", ""], "texts[1]", "text 1 is empty"),
        (["fine", "a\x00b"], "texts[1]", "text 1 contains a NUL character"),
        (["x" * 101], "texts[0]", "more than 100"),  # the client fixture's DRIFTLOOP_INGEST_MAX_TEXT_CHARS
        (["t"] * 51, "texts", "more than the 50 a request may hold"),
    ],
)
def test_bad_texts_are_refused_naming_the_text(client: TestClient, task_name: str, texts: list[str], field: str, reason: str) -> None:
    answer = client.post(f"/v1/tasks/{task_name}/predict", json={"texts": texts})
    assert answer.status_code == 422, answer.text
    assert reason in answer.json()["detail"] and answer.json()["field"] == field


def test_an_unknown_task_is_404(client: TestClient) -> None:
    assert client.post("/v1/tasks/no-such-task/predict", json={"texts": ["hello"]}).status_code == 404
    assert client.get("/v1/tasks/no-such-task/model").status_code == 404


def test_a_champion_whose_artifact_does_not_load_leaves_the_old_one_serving(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    from driftloop.platform.modeling.artifacts import path_from_uri

    loop = Loop(sqlite_engine, tmp_path, headlines, encoder)
    settings = loop.settings.model_copy(update={"serve_check_seconds": 0.0})
    loop.label(loop.headlines[:150])
    first = loop.train()
    loop.label(loop.headlines[150:400])
    second = loop.train(promote=False)
    with admin_client(create_app(settings)) as client:
        assert client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": TEXTS}).headers["x-model-version"] == str(first.version)
        with session_scope(sqlite_engine) as session:
            version = registry.get_version(session, get_task(session, loop.task), second.version)
            weights = next(path_from_uri(version.artifact_uri).glob("*.safetensors"))
        weights.write_bytes(weights.read_bytes()[:-16] + b"\0" * 16)  # damaged on disk after it was written
        promoted = client.post(f"/v1/tasks/{loop.task}/models/{second.version}/promote", json={"force_reason": "test"})
        assert promoted.status_code == 200, promoted.text

        answer = client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": TEXTS})
        assert (answer.status_code, answer.headers["x-model-version"]) == (200, str(first.version))  # still served
        model = client.get(f"/v1/tasks/{loop.task}/model").json()
        assert (model["version"], model["served_here"]) == (second.version, first.version)
        assert model["load_error"].startswith(f"version {second.version} could not be loaded: CorruptArtifact")
