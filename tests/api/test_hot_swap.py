"""A promotion and a rollback under load: a real API server (uvicorn, on PostgreSQL), sixteen
clients keeping requests going the whole time, the registry changed by another party (this test,
as the CLI would). No request fails, each answer is wholly one model's (its probabilities are
those of the version its header names), and within the bound every answer is the champion's."""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import Engine

from driftloop.labeling.server.ports import free_port
from driftloop.platform.api.app import create_app
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.rounds import load_version
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task
from tests.api_keys import make_key
from tests.learning_loop import Loop

TEXTS = ["shares fell sharply as the bank cut its forecast", "the striker scored twice in the final", "a new phone with a folding screen"]
CLIENTS = 16
CHECK_SECONDS = 0.5
BOUND = 20.0  # check interval + load + warm-up, with room for a busy two-core CI machine


@dataclass
class Answer:
    started: float
    ended: float
    status: int
    version: int | None
    probabilities: list[list[float]] | None
    error: str | None = None


@pytest.fixture
def api(postgresql_engine: Engine, tmp_path: Path, headlines, encoder) -> Iterator[tuple[Loop, str, str]]:  # type: ignore[no-untyped-def]
    import uvicorn

    loop = Loop(postgresql_engine, tmp_path, headlines, encoder)
    settings = loop.settings.model_copy(update={"serve_check_seconds": CHECK_SECONDS})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield loop, f"http://127.0.0.1:{port}", make_key(postgresql_engine, "predict", task=loop.task)
    server.should_exit = True
    thread.join(timeout=15)


def _expected(loop: Loop, version: int) -> np.ndarray:
    with session_scope(loop.engine) as session:
        return load_version(registry.get_version(session, get_task(session, loop.task), version), loop.encoder).predict_proba(TEXTS)


def _client(base: str, key: str, task: str, index: int, stop: threading.Event, answers: list[Answer]) -> None:
    with httpx.Client(base_url=base, timeout=60, headers={"X-API-Key": key}) as http:
        while not stop.is_set():
            started = time.monotonic()
            try:
                # every fourth client keeps its texts: swaps must not break the write path either
                answer = http.post(f"/v1/tasks/{task}/predict", json={"texts": TEXTS}, params={"store": str(index % 4 == 0).lower()})
            except httpx.HTTPError as error:
                answers.append(Answer(started, time.monotonic(), 0, None, None, repr(error)))
                continue
            body = answer.json()
            answers.append(
                Answer(
                    started,
                    time.monotonic(),
                    answer.status_code,
                    int(answer.headers["x-model-version"]) if answer.status_code == 200 else None,
                    [list(p["probabilities"].values()) for p in body["predictions"]] if answer.status_code == 200 else None,
                    None if answer.status_code == 200 else answer.text,
                )
            )


def test_a_promotion_and_a_rollback_under_load_drop_no_request(api: tuple[Loop, str, str]) -> None:
    loop, base, key = api
    loop.label(loop.headlines[:150])
    first = loop.train()
    loop.label(loop.headlines[150:400])
    second = loop.train(promote=False)
    assert first.promoted and not second.promoted
    expected = {first.version: _expected(loop, first.version), second.version: _expected(loop, second.version)}
    assert not np.allclose(expected[first.version], expected[second.version], atol=1e-3)  # the two can be told apart

    answers: list[Answer] = []
    stop = threading.Event()
    clients = [threading.Thread(target=_client, args=(base, key, loop.task, i, stop, answers)) for i in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        time.sleep(3)
        with session_scope(loop.engine) as session:
            registry.promote(session, loop.task, second.version, replay_capacity=0, force_reason="swap under load")
        promoted_at = time.monotonic()
        swapped_at = _until_served(answers, second.version, promoted_at)
        time.sleep(2)
        with session_scope(loop.engine) as session:
            registry.rollback(session, loop.task)
        rolled_back_at = time.monotonic()
        swapped_back_at = _until_served(answers, first.version, rolled_back_at)
        time.sleep(2)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)

    failed = [a for a in answers if a.status != 200]
    assert failed == [], failed[:3]
    assert len(answers) > 100
    for answer in answers:  # each answer is wholly the model its header names
        assert answer.version in expected
        assert np.allclose(answer.probabilities, expected[answer.version], atol=1e-4), answer.version
    # once swapped, the champion answers every new request: no process-wide mix of old and new
    assert {a.version for a in answers if swapped_at < a.started and a.ended < rolled_back_at} == {second.version}
    assert {a.version for a in answers if swapped_back_at < a.started} == {first.version}
    assert {a.version for a in answers if a.ended < promoted_at} == {first.version}


def _until_served(answers: list[Answer], version: int, since: float) -> float:
    """When the first answer from ``version`` came back (the swap was done by then): wait until
    the clients' answers come from it (within the bound, or fail)."""
    while time.monotonic() < since + BOUND:
        recent = [a for a in answers[-CLIENTS * 2 :] if a.started > since]
        if len(recent) >= CLIENTS and all(a.version == version for a in recent):
            return min(a.ended for a in answers if a.version == version and a.started > since)
        time.sleep(0.1)
    raise AssertionError(f"v{version} not served by every request {BOUND} s after the registry changed")
