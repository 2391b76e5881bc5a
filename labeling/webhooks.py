"""Argilla's webhooks into the same sync that ``driftloop sync`` runs.

``register`` creates the webhook in Argilla once (idempotent on the URL) and keeps the secret
Argilla signs deliveries with, encrypted (driftloop.platform.secrets). A delivery is verified with
that secret (Standard Webhooks: id, timestamp and HMAC signature headers; a forged one is
refused), mapped from its dataset to the task, and a sync of that task is run. Deliveries come
in bursts (one per response), so syncs of one task are coalesced: while one runs, further
deliveries only ask for one more run after it.
"""

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import argilla as rg
from sqlalchemy import Engine, select
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from driftloop.labeling.dataset import generations
from driftloop.platform.config import Settings
from driftloop.platform.errors import Unauthorized
from driftloop.platform.secrets import WrongSecretKey, decrypt, encrypt
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Task, Webhook

log = logging.getLogger(__name__)

EVENTS = ["response.created", "response.updated", "response.deleted", "record.completed"]


class InvalidSignature(Unauthorized):
    code = "invalid_signature"


def register(client: rg.Argilla, engine: Engine, settings: Settings, url: str) -> Webhook:
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


def verify(engine: Engine, settings: Settings, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The delivery's event, if one of the registered webhooks' secrets signed it."""
    with session_scope(engine) as session:
        tokens = list(session.scalars(select(Webhook.secret_encrypted)))
    return _verified(settings, tokens, body, dict(headers))


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


def dataset_of(event: Mapping[str, Any]) -> str | None:
    """The dataset name an event is about: response events carry the record, which carries it."""
    data = event.get("data") or {}
    record = data.get("record") if str(event.get("type", "")).startswith("response.") else data
    dataset = (record or {}).get("dataset") or {}
    name = dataset.get("name")
    return str(name) if name else None


def task_of_dataset(engine: Engine, dataset: str) -> str | None:
    with session_scope(engine) as session:
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
