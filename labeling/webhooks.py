"""Argilla's webhooks into the same sync that ``driftloop sync`` runs.

``register`` creates the webhook in Argilla once (idempotent on the URL) and keeps the secret
Argilla signs deliveries with, encrypted (driftloop.platform.secrets). A delivery is accepted when
one of the registered secrets signed it (Standard Webhooks: id, timestamp and HMAC signature
headers) and its id was not accepted before: a forged one is refused, and so is a replay of a
signed one. The accepted delivery is mapped from its dataset to the task, and a sync of that
task is run. Deliveries come in bursts (one per response), so syncs of one task are coalesced:
while one runs, further deliveries only ask for one more run after it.
"""

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import argilla as rg
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from driftloop.labeling.dataset import generations
from driftloop.platform.config import Settings
from driftloop.platform.errors import InvalidInput, ReplayedDelivery, Unauthorized, WrongSecretKey
from driftloop.platform.secrets import decrypt, encrypt
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Task, Webhook, WebhookDelivery
from driftloop.platform.store.types import utcnow

log = logging.getLogger(__name__)

EVENTS = ["response.created", "response.updated", "response.deleted", "record.completed"]

# standardwebhooks accepts a timestamp up to 5 minutes either side of the receiver's clock (fixed
# in the library), so a delivery can be replayed up to 10 minutes after it first arrived; 5 more
# absorb clocks of API hosts that differ.
_TOLERANCE = timedelta(minutes=5)
REMEMBER_FOR = 2 * _TOLERANCE + timedelta(minutes=5)


class InvalidSignature(Unauthorized):
    code = "invalid_signature"


@dataclass(frozen=True)
class Delivery:
    event: dict[str, Any]
    task: str | None  # None: the event is about a dataset no task owns


def register(client: rg.Argilla, engine: Engine, settings: Settings, url: str) -> Webhook:
    # It reads, then may write, while the API records deliveries: SQLite's write lock from BEGIN.
    with session_scope(engine) as session:
        stored = session.scalar(select(Webhook).where(Webhook.url == url))
        known = {str(hook.id): hook for hook in client.webhooks}
        if stored is not None and stored.external_id in known:
            try:
                decrypt(settings, stored.secret_encrypted)
            except WrongSecretKey:  # stored under another key: the same webhook, its secret under this one
                stored.secret_encrypted = encrypt(settings, known[stored.external_id].secret)
                session.flush()
            session.expunge(stored)
            return stored
        created = rg.Webhook(url=url, events=EVENTS, description="driftloop: sync annotations", _client=client).create()  # type: ignore[arg-type]
        secret = encrypt(settings, created.secret)
        if stored is None:
            stored = Webhook(url=url, external_id=str(created.id), secret_encrypted=secret)
            session.add(stored)
        else:  # deleted in Argilla (or a new Argilla): the new one has a new secret
            stored.external_id, stored.secret_encrypted = str(created.id), secret
        session.flush()
        session.expunge(stored)
        return stored


def accept(engine: Engine, settings: Settings, body: bytes, headers: Mapping[str, str]) -> Delivery:
    """The delivery's event and task, if a registered webhook's secret signed it and it was not
    accepted before; it is recorded as accepted when this returns."""
    headers = {name.lower(): value for name, value in headers.items()}
    with session_scope(engine) as session:
        event = _verified(settings, session.scalars(select(Webhook.secret_encrypted)).all(), body, headers)
        dataset = dataset_of(event)
        task = _task_of_dataset(session, dataset) if dataset else None
    _remember(engine, headers["webhook-id"])
    return Delivery(event, task)


def _verified(settings: Settings, tokens: Sequence[str], body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    undecryptable: list[WrongSecretKey] = []
    for token in tokens:
        try:
            verifier = Verifier(decrypt(settings, token))
        except WrongSecretKey as error:  # another webhook's secret may still verify the delivery
            undecryptable.append(error)
            continue
        try:
            return verifier.verify(body, headers)  # type: ignore[no-any-return]
        # the library lets malformed signature headers or bodies through as ValueError
        except (WebhookVerificationError, ValueError):
            continue
    if undecryptable and len(undecryptable) == len(tokens):
        raise undecryptable[0]  # this host has the wrong key: nothing could verify any delivery
    if undecryptable:
        log.warning("%d registered webhooks' secrets were encrypted with another key: %s", len(undecryptable), undecryptable[0])
    raise InvalidSignature("the webhook delivery is not signed by a registered webhook's secret")


def _remember(engine: Engine, message_id: str) -> None:
    """Record the delivery's id, refusing one already recorded. The unique key decides, so of two
    copies arriving at once only one gets through; ids older than a replay could be are dropped."""
    if len(message_id) > WebhookDelivery.message_id.type.length:  # type: ignore[attr-defined]
        raise InvalidInput("the webhook-id header is longer than 255 characters")
    now = utcnow()
    with engine.connect() as connection, connection.begin():
        connection.execute(delete(WebhookDelivery).where(WebhookDelivery.received_at < now - REMEMBER_FOR))
        try:
            connection.execute(insert(WebhookDelivery).values(message_id=message_id, received_at=now))
        except IntegrityError:
            raise ReplayedDelivery(
                f"webhook delivery {message_id} was already accepted: a replay is refused", webhook_id=message_id
            ) from None


def dataset_of(event: Mapping[str, Any]) -> str | None:
    """The dataset name an event is about: response events carry the record, which carries it."""
    data = event.get("data") or {}
    record = data.get("record") if str(event.get("type", "")).startswith("response.") else data
    dataset = (record or {}).get("dataset") or {}
    name = dataset.get("name")
    return str(name) if name else None


def _task_of_dataset(session: Session, dataset: str) -> str | None:
    for task in session.scalars(select(Task)):
        if dataset in generations(task):
            return task.name
    return None


class CoalescingRunner:
    """Runs ``work(task)`` for one task at a time; calls that arrive while it runs collapse
    into a single further run."""

    def __init__(self, work: Callable[[str], object]) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._again: set[str] = set()

    def request(self, task: str) -> None:
        with self._lock:
            if task in self._running:
                self._again.add(task)
                return
            self._running.add(task)
        try:
            while True:
                self._work(task)
                with self._lock:
                    if task not in self._again:
                        self._running.discard(task)
                        return
                    self._again.discard(task)
        except BaseException:
            with self._lock:
                self._running.discard(task)
                self._again.discard(task)
            raise
