"""POST /v1/labeling/webhook: signed deliveries are accepted once; replays and forgeries are refused.

The webhook row is stored the way `register` stores it (its secret encrypted), without an Argilla;
tests/labeling/test_argilla_loop.py runs the same endpoint against Argilla's real deliveries.
"""

import base64
import json
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from standardwebhooks.webhooks import Webhook as Signer

from driftloop.labeling import webhooks
from driftloop.platform.config import Settings
from driftloop.platform.errors import ReplayedDelivery
from driftloop.platform.secrets import encrypt
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Webhook, WebhookDelivery
from driftloop.platform.tasks import create_task


class SyncRecorder:
    """Stands in for the app's coalescing sync runner: records the tasks a delivery asks to sync."""

    def __init__(self) -> None:
        self.tasks: list[str] = []
        self._lock = threading.Lock()

    def request(self, task: str) -> None:
        with self._lock:
            self.tasks.append(task)


@pytest.fixture
def client(client: TestClient) -> TestClient:
    """The API's client without its key: Argilla sends none, and the webhook needs none (it checks
    each delivery's signature instead)."""
    del client.headers["Authorization"]
    return client


@pytest.fixture
def syncs(client: TestClient) -> SyncRecorder:
    recorder = SyncRecorder()
    client.app.state.sync_runner = recorder  # type: ignore[attr-defined]
    return recorder


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def store_webhook(engine: Engine, settings: Settings, secret: str) -> None:
    with session_scope(engine) as session:
        session.add(
            Webhook(url=f"http://api-{uuid.uuid4().hex[:8]}/v1/labeling/webhook", external_id=str(uuid.uuid4()), secret_encrypted=encrypt(settings, secret))
        )


def task_with_dataset(engine: Engine) -> tuple[str, str]:
    name = f"wh-{uuid.uuid4().hex[:10]}"
    with session_scope(engine) as session:
        task = create_task(session, name, ["a", "b"])
        task.settings = {**(task.settings or {}), "labeling": {"datasets": [name]}}
    return name, name


def delivery(secret: str, dataset: str, message_id: str | None = None, at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    """A response.created delivery as Argilla's worker sends it."""
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    body = json.dumps(
        {"type": "response.created", "timestamp": at.isoformat(), "data": {"record": {"dataset": {"name": dataset}}}}
    )
    signature = Signer(secret).sign(message_id, at, body)
    headers = {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}
    return body.encode(), headers


def test_a_signed_delivery_is_accepted_once_and_its_replay_refused(engine: Engine, client: TestClient, syncs: SyncRecorder) -> None:
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    secret = new_secret()
    store_webhook(engine, settings, secret)
    task, dataset = task_with_dataset(engine)
    body, headers = delivery(secret, dataset)

    first = client.post("/v1/labeling/webhook", content=body, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json() == {"event": "response.created", "task": task}
    assert syncs.tasks == [task]

    replayed = client.post("/v1/labeling/webhook", content=body, headers=headers)
    assert replayed.status_code == 409, replayed.text
    assert replayed.json()["error"] == "replayed_delivery"
    assert replayed.json()["webhook_id"] == headers["webhook-id"]
    assert syncs.tasks == [task]  # no second sync

    other_body, other_headers = delivery(secret, dataset)
    other = client.post("/v1/labeling/webhook", content=other_body, headers=other_headers)
    assert other.status_code == 202, other.text
    assert syncs.tasks == [task, task]


def test_the_stored_secret_is_not_readable_from_the_store(engine: Engine, client: TestClient, syncs: SyncRecorder) -> None:
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    secret = new_secret()
    store_webhook(engine, settings, secret)
    with engine.connect() as connection:
        rows = [tuple(map(str, row)) for row in connection.execute(text("SELECT * FROM webhooks"))]
    raw_key = secret.removeprefix("whsec_")
    assert rows and not any(raw_key in value or raw_key.rstrip("=") in value for row in rows for value in row)

    _, dataset = task_with_dataset(engine)
    body, headers = delivery(secret, dataset)
    assert client.post("/v1/labeling/webhook", content=body, headers=headers).status_code == 202


def test_forged_and_stale_deliveries_are_refused_without_being_remembered(engine: Engine, client: TestClient, syncs: SyncRecorder) -> None:
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    secret = new_secret()
    store_webhook(engine, settings, secret)
    _, dataset = task_with_dataset(engine)

    body, headers = delivery(new_secret(), dataset)  # signed with a secret nobody registered
    forged = client.post("/v1/labeling/webhook", content=body, headers=headers)
    assert (forged.status_code, forged.json()["error"]) == (401, "invalid_signature")
    malformed = client.post("/v1/labeling/webhook", content=body, headers={**headers, "webhook-signature": "garbage"})
    assert (malformed.status_code, malformed.json()["error"]) == (401, "invalid_signature")
    body, headers = delivery(secret, dataset, at=datetime.now(UTC) - timedelta(minutes=6))
    stale = client.post("/v1/labeling/webhook", content=body, headers=headers)
    assert (stale.status_code, stale.json()["error"]) == (401, "invalid_signature")
    assert syncs.tasks == []
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.message_id == headers["webhook-id"])) == 0


def test_a_webhook_secret_under_another_key_is_a_clear_server_error(engine: Engine, client: TestClient, syncs: SyncRecorder) -> None:
    from cryptography.fernet import Fernet

    other_host = Settings(home=client.app.state.settings.home, secret_key=Fernet.generate_key().decode())  # type: ignore[attr-defined]
    secret = new_secret()
    store_webhook(engine, other_host, secret)  # no stored secret (other tests' neither) decrypts with this host's key
    _, dataset = task_with_dataset(engine)
    body, headers = delivery(secret, dataset)
    refused = client.post("/v1/labeling/webhook", content=body, headers=headers)
    assert (refused.status_code, refused.json()["error"]) == (503, "wrong_secret_key")
    assert "set DRIFTLOOP_SECRET_KEY" in refused.json()["detail"]
    assert syncs.tasks == []


def test_copies_of_one_delivery_arriving_at_once_pass_once(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False))
    secret = new_secret()
    store_webhook(engine, settings, secret)
    _, dataset = task_with_dataset(engine)
    body, headers = delivery(secret, dataset)
    barrier = threading.Barrier(6)

    def deliver(_: int) -> str:
        barrier.wait()
        try:
            webhooks.accept(engine, settings, body, headers)
            return "accepted"
        except ReplayedDelivery:
            return "replay"

    with ThreadPoolExecutor(6) as pool:
        outcomes = sorted(pool.map(deliver, range(6)))
    assert outcomes == ["accepted"] + ["replay"] * 5


def test_ids_older_than_a_replay_could_be_are_dropped(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False))
    secret = new_secret()
    store_webhook(engine, settings, secret)
    _, dataset = task_with_dataset(engine)
    old, recent = f"msg_old_{uuid.uuid4().hex}", f"msg_recent_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        session.add(WebhookDelivery(message_id=old, received_at=now - webhooks.REMEMBER_FOR - timedelta(seconds=5)))
        session.add(WebhookDelivery(message_id=recent, received_at=now - webhooks.REMEMBER_FOR + timedelta(minutes=1)))

    webhooks.accept(engine, settings, *delivery(secret, dataset))
    with session_scope(engine) as session:
        kept = set(session.scalars(select(WebhookDelivery.message_id).where(WebhookDelivery.message_id.in_([old, recent]))))
    assert kept == {recent}
    assert webhooks.REMEMBER_FOR >= timedelta(minutes=10)  # a signed delivery stays valid 5 minutes either side
