"""Predictions over HTTP from the task's champion: what the model itself says, the version that
said it, a new champion served once promoted anywhere, and bad input refused by index."""

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from driftloop.platform.api.app import create_app
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.rounds import load_version
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import ModelVersion, Prediction, TextRecord
from driftloop.platform.tasks import get_task, update_settings
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
    settings = loop.settings.model_copy(update={"serve_check_seconds": 0.2})
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
        after = _first_answer_from(client, loop.task, second.version, within=settings.serve_check_seconds + 20)
        _, _, expected = _champion_proba(loop, TEXTS)
        assert np.allclose([list(p["probabilities"].values()) for p in after.json()["predictions"]], expected, atol=1e-5)


def _first_answer_from(client: TestClient, task: str, version: int, within: float):  # type: ignore[no-untyped-def]
    """The first answer that came from ``version``: the swap happens off the request path, within
    the check interval and the load."""
    deadline = time.monotonic() + within
    while True:
        answer = client.post(f"/v1/tasks/{task}/predict", json={"texts": TEXTS}, params={"store": "false"})
        assert answer.status_code == 200, answer.text
        if answer.headers["x-model-version"] == str(version) or time.monotonic() > deadline:
            assert answer.headers["x-model-version"] == str(version), f"still v{answer.headers['x-model-version']} after {within} s"
            return answer
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("texts", "field", "reason"),
    [
        ([], "texts", "at least one text"),
        (["fine", ""], "texts[1]", "texts[1] is empty"),
        (["fine", "a\x00b"], "texts[1]", "texts[1] contains a NUL character"),
        (["x" * 101], "texts[0]", "texts[0] has 101 characters, over the limit of 100"),  # the client fixture's DRIFTLOOP_INGEST_MAX_TEXT_CHARS
        (["fine", 3], "texts[1]", "texts[1] must be a string, got a number"),
    ],
)
def test_bad_texts_are_refused_naming_the_text(client: TestClient, task_name: str, texts: list[str], field: str, reason: str) -> None:
    answer = client.post(f"/v1/tasks/{task_name}/predict", json={"texts": texts})
    assert answer.status_code == 422, answer.text
    assert reason in answer.json()["detail"] and answer.json()["field"] == field


def test_an_unknown_task_is_404(client: TestClient) -> None:
    assert client.post("/v1/tasks/no-such-task/predict", json={"texts": ["hello"]}).status_code == 404
    assert client.get("/v1/tasks/no-such-task/model").status_code == 404
    assert client.app.state.served_models.watched() == []  # type: ignore[attr-defined]  # nothing left to watch for it


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

        deadline = time.monotonic() + 30
        while (model := client.get(f"/v1/tasks/{loop.task}/model").json())["load_error"] is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the watcher tries the new champion off the request path
        answer = client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": TEXTS})
        assert (answer.status_code, answer.headers["x-model-version"]) == (200, str(first.version))  # still served
        assert (model["version"], model["served_here"]) == (second.version, first.version)
        assert model["load_error"].startswith(f"version {second.version} could not be loaded: CorruptArtifact")


@pytest.fixture
def served(sqlite_engine: Engine, tmp_path: Path, headlines, encoder):  # type: ignore[no-untyped-def]
    """A task with a champion, and an API on it (small limits, to reach them)."""
    loop = Loop(sqlite_engine, tmp_path, headlines, encoder)
    loop.label(loop.headlines[:150])
    assert loop.train().promoted
    settings = loop.settings.model_copy(update={"ingest_max_request_bytes": 4000, "ingest_max_records_per_request": 20, "serve_check_seconds": 0.1})
    with admin_client(create_app(settings), raise_server_exceptions=False) as client:
        yield loop, client


def _stored(loop: Loop) -> list[tuple[str, str, str, int, str]]:
    with session_scope(loop.engine) as session:
        rows = session.execute(
            select(TextRecord.external_id, TextRecord.text, TextRecord.source, ModelVersion.version, Prediction.label)
            .join(Prediction, Prediction.text_id == TextRecord.id)
            .join(ModelVersion, ModelVersion.id == Prediction.model_version_id)
            .where(TextRecord.source == "predict")
            .order_by(TextRecord.id)
        )
        return [tuple(row) for row in rows]


def test_store_puts_each_text_in_the_stream_once_with_its_prediction_even_when_retried(served) -> None:  # type: ignore[no-untyped-def]
    loop, client = served
    records = [{"id": "app-1", "text": TEXTS[0], "meta": {"user": 7}}, {"text": TEXTS[1]}, {"id": "app-3", "text": TEXTS[2]}]
    first = client.post(f"/v1/tasks/{loop.task}/predict", json={"records": records}, params={"store": "true"})
    assert first.status_code == 200, first.text
    assert first.json()["stored"]["stored"] == 3
    again = client.post(f"/v1/tasks/{loop.task}/predict", json={"records": records}, params={"store": "true"})  # a client's retry
    assert (again.json()["stored"]["stored"], again.json()["stored"]["duplicates"]) == (0, 3)
    assert again.json()["predictions"] == first.json()["predictions"]

    version = first.json()["model_version"]
    labels = [p["label"] for p in first.json()["predictions"]]
    stored = _stored(loop)
    assert [(row[0], row[1], row[3], row[4]) for row in stored] == [
        ("app-1", TEXTS[0], version, labels[0]),
        (stored[1][0], TEXTS[1], version, labels[1]),  # no id given: its content hash is its id
        ("app-3", TEXTS[2], version, labels[2]),
    ]
    assert stored[1][0].startswith("sha256:")


def test_concurrent_stores_are_committed_together_and_each_text_once(served) -> None:  # type: ignore[no-untyped-def]
    loop, client = served
    shared = [{"id": "same-1", "text": TEXTS[0]}, {"text": TEXTS[1]}]

    def post(i: int):  # type: ignore[no-untyped-def]
        records = [*shared, {"id": f"own-{i}", "text": f"{TEXTS[2]} ({i})"}]
        return client.post(f"/v1/tasks/{loop.task}/predict", json={"records": records}, params={"store": "true"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    for i, answer in enumerate(answers):
        results = answer.json()["stored"]["results"]
        assert [r["index"] for r in results] == [0, 1, 2]  # numbered as in its own request
        assert [r["status"] for r in results][2] == "stored" and results[2]["id"] == f"own-{i}"
    assert sum(a.json()["stored"]["stored"] for a in answers) == 2 + 8  # the shared two once, each own one once
    stored = _stored(loop)
    assert len(stored) == 10 and len({row[0] for row in stored}) == 10  # one prediction per text and version


def test_store_follows_the_request_then_the_task_then_the_default(served) -> None:  # type: ignore[no-untyped-def]
    loop, client = served
    assert client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": ["kept by default"]}).json()["stored"]["stored"] == 1
    assert client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": ["not kept"]}, params={"store": "false"}).json()["stored"] is None
    with session_scope(loop.engine) as session:
        update_settings(session, loop.task, store_predictions=False)
    deadline = time.monotonic() + 10  # the API reads the task's setting with the champion, every DRIFTLOOP_SERVE_CHECK_SECONDS (0.1 here)
    while client.app.state.served_models.stores_predictions(loop.task) and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    assert client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": ["the task says no"]}).json()["stored"] is None
    assert client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": ["asked for"]}, params={"store": "true"}).json()["stored"]["stored"] == 1
    assert [row[1] for row in _stored(loop)] == ["kept by default", "asked for"]


@pytest.mark.parametrize(
    ("body", "status", "field", "says"),
    [
        ({"texts": ["a"], "records": [{"text": "b"}]}, 422, "body", "not both"),
        ({}, 422, "body", "not both"),
        ({"text": ["a"]}, 422, "text", "unknown field 'text'"),
        ({"texts": "just one"}, 422, "texts", '"texts" must be a list'),
        ({"records": [{"text": "fine"}, {"id": 1}]}, 422, "records[1]", 'records[1]: missing "text"'),
        ({"records": [{"text": "fine"}, {"text": "x", "meta": [1]}]}, 422, "records[1]", '"meta" must be an object'),
        ({"records": ["plain"]}, 422, "records[0]", "expected a JSON object"),
        ({"texts": ["y" * 30_000]}, 413, None, "over the limit of 20000"),  # the client fixture's limits
    ],
)
def test_bad_bodies_are_refused_naming_what_is_wrong_and_store_nothing(client: TestClient, task_name: str, body, status, field, says) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(f"/v1/tasks/{task_name}/predict", json=body, params={"store": "true"})
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"] and answer.json().get("field") == field
    assert client.get(f"/v1/tasks/{task_name}").json()["texts"] == 0


def test_a_body_that_is_not_a_json_object_is_refused(client: TestClient, task_name: str) -> None:
    for content, error in ((b"[1, 2]", "invalid_body"), (b"{not json", "invalid_json"), (b'{"texts": ' + b"[" * 5000, "too_deep")):
        answer = client.post(f"/v1/tasks/{task_name}/predict", content=content, headers={"content-type": "application/json"})
        assert (answer.status_code, answer.json()["error"]) == (422, error), answer.text


def test_a_full_queue_answers_503_with_retry_after(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(sqlite_engine, tmp_path, headlines, encoder)
    loop.label(loop.headlines[:150])
    assert loop.train().promoted
    # one text may wait, for half a second: the requests that come meanwhile find the queue full
    settings = loop.settings.model_copy(update={"serve_max_queue": 1, "serve_max_wait_ms": 500.0})
    with admin_client(create_app(settings), raise_server_exceptions=False) as client:
        client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": ["load it"]}, params={"store": "false"})
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: client.post(f"/v1/tasks/{loop.task}/predict", json={"texts": [f"text {i}"]}, params={"store": "false"}), range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert 200 in statuses and 503 in statuses and set(statuses) == {200, 503}, statuses
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.json()["error"] == "overloaded" and int(refused.headers["retry-after"]) >= 1
