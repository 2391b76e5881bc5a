"""The champions, served: each API process keeps each task's promoted model loaded, behind its
:class:`~driftloop.platform.serving.batching.Batcher` (one for all head-mode models, which share
the frozen encoder; one of its own for each full or lora model).

Whoever promotes or rolls back (the CLI, the API, a worker on another machine) changes the
registry. A watcher thread of the process reads the registry's champion of every task it serves
every ``DRIFTLOOP_SERVE_CHECK_SECONDS``; when it changed, the thread loads the new model (its
checksum verified), warms it up with one batch and swaps it in atomically. Requests are never
the ones to pay for a load, except the first of a task, which has nothing else to run on. A
request stays on the model it was queued to: the old batcher finishes its queue, then stops. A
model that fails to load leaves the old one serving; the failure is logged, counted, kept for
``GET /v1/tasks/{task}/model``, and the load tried again a minute later. The same check reads
the task's prediction settings, so requests do not.

Polling rather than a pub/sub message: it works with the embedded store and no Redis, one
indexed read per task every few seconds costs nothing, and a missed message cannot leave a
process serving a stale model forever.
"""

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import Counter
from sqlalchemy import Engine

from driftloop.platform.config import Settings
from driftloop.platform.errors import Conflict, NotFound, Unavailable
from driftloop.platform.modeling import registry
from driftloop.platform.serving.batching import Batcher, forward
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task, stores_predictions

if TYPE_CHECKING:  # torch and transformers load with the first model, not with the API
    from driftloop.platform.modeling.model import TextClassifier

log = logging.getLogger(__name__)

LOAD_FAILURES = Counter("driftloop_serve_load_failures_total", "Champions this process could not load", ["task"])
SWAPS = Counter("driftloop_serve_swaps_total", "Champions this process swapped in", ["task"])

RETRY_FAILED_LOAD_SECONDS = 60.0
WARM_UP_TEXTS = ["a short text to warm the model up"] * 8


class NoChampion(Conflict):
    """The task has no promoted model to predict with yet."""

    code = "no_champion"


class ModelUnavailable(Unavailable):
    """The task has a champion, but this process could not load it and has no older one."""

    code = "model_unavailable"


@dataclass(frozen=True)
class ServedModel:
    task: str
    version: int
    version_id: int
    model: "TextClassifier"
    batcher: Batcher  # head mode: the one every head model shares (their encoder); else its own

    @property
    def owns_batcher(self) -> bool:
        return self.model.mode != "head"


@dataclass
class _Slot:
    served: ServedModel | None = None
    load_error: str | None = None
    failed: tuple[int, float] | None = None  # the version id that failed to load, and when
    store: bool | None = None  # whether the task's predictions keep their texts, as of the last check
    loading: threading.Lock = field(default_factory=threading.Lock)  # one load at a time per task
    swap: threading.Lock = field(default_factory=threading.Lock)  # makes "pick the model, queue to it" atomic


class ServedModels:
    """The champions this process serves, one per task, each swapped when the registry's changes."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self._slots: dict[str, _Slot] = {}
        self._shared: Batcher | None = None  # the head models' batcher
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def submit(self, task: str, texts: list[str]) -> tuple[ServedModel, "Future[np.ndarray]"]:
        """Queue ``texts`` to the task's champion; the model they run on, and their probabilities to come."""
        slot = self._ready_slot(task)
        with slot.swap:
            served = self._served(task, slot)
            return served, served.batcher.submit(texts, served.model)

    def loaded(self, task: str) -> bool:
        """Whether :meth:`submit` returns at once for ``task`` (its model is loaded here): then the
        event loop may call it without a thread hop."""
        slot = self._slots.get(task)
        return slot is not None and slot.served is not None

    def stores_predictions(self, task: str) -> bool:
        """The task's setting (``driftloop task set``) as of the last registry check, so a request
        need not read it; DRIFTLOOP_PREDICT_STORE when the task has none."""
        slot = self._slots.get(task)
        return self.settings.predict_store if slot is None or slot.store is None else slot.store

    def current(self, task: str) -> ServedModel:
        """The model serving ``task`` in this process now."""
        slot = self._ready_slot(task)
        with slot.swap:
            return self._served(task, slot)

    def watched(self) -> list[str]:
        """The tasks this process serves (and watches the registry for)."""
        return sorted(self._slots)

    def load_error(self, task: str) -> str | None:
        slot = self._slots.get(task)
        return slot.load_error if slot else None

    def close(self) -> None:
        """Stop watching the registry and let every model finish what is queued to it."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        for slot in list(self._slots.values()):
            if slot.served is not None and slot.served.owns_batcher:
                slot.served.batcher.close()
        if self._shared is not None:
            self._shared.close()

    def _ready_slot(self, task: str) -> _Slot:
        with self._guard:
            slot = self._slots.setdefault(task, _Slot())
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)
                self._watcher.start()
        if slot.served is None:
            with slot.loading:  # the task's first request loads; the ones beside it wait for that load
                if slot.served is None:
                    try:
                        self._refresh(task, slot)
                    except NotFound:  # no such task: nothing to watch for it
                        self._forget(task, slot)
                        raise
        return slot

    def _forget(self, task: str, slot: _Slot) -> None:
        with self._guard:
            if self._slots.get(task) is slot:
                del self._slots[task]

    def _served(self, task: str, slot: _Slot) -> ServedModel:
        if slot.served is not None:
            return slot.served
        if slot.load_error is not None:
            raise ModelUnavailable(f"task {task}: {slot.load_error}", task=task)
        raise NoChampion(f"task {task} has no promoted model yet: train one (`driftloop train {task}`)", task=task)

    def _watch(self) -> None:
        interval = max(self.settings.serve_check_seconds, 0.05)
        while not self._stop.wait(interval):
            for task, slot in list(self._slots.items()):
                try:
                    with slot.loading:
                        self._refresh(task, slot)
                except NotFound:  # the task was deleted
                    self._forget(task, slot)
                    self._swap(slot, None)
                except Exception:  # the store away for a moment: serve what is loaded, look again later
                    log.exception("task %s: could not check the registry for a new champion", task)

    def _refresh(self, task: str, slot: _Slot) -> None:
        with session_scope(self.engine) as session:
            row = get_task(session, task)
            slot.store = stores_predictions(row, self.settings.predict_store)
            champion = registry.champion(session, row.id)
            if champion is None:
                self._swap(slot, None)  # rolled back past the first model: nothing to serve
                return
            if slot.served is not None and slot.served.version_id == champion.id:
                return
            if slot.failed is not None and slot.failed[0] == champion.id and time.monotonic() - slot.failed[1] < RETRY_FAILED_LOAD_SECONDS:
                return
            session.expunge(champion)
        try:
            served = self._load(task, champion)
        except Exception as error:  # a corrupt or missing artifact: keep serving the old one
            slot.load_error = f"version {champion.version} could not be loaded: {type(error).__name__}: {error}"
            slot.failed = (champion.id, time.monotonic())
            LOAD_FAILURES.labels(task=task).inc()
            log.error("task %s: %s; still serving %s", task, slot.load_error, f"v{slot.served.version}" if slot.served else "nothing")
            return
        slot.load_error, slot.failed = None, None
        self._swap(slot, served)
        SWAPS.labels(task=task).inc()
        log.info("task %s: now serving v%d", task, served.version)

    def _load(self, task: str, champion: "registry.ModelVersion") -> ServedModel:
        from driftloop.platform.modeling.encoder import load_encoder
        from driftloop.platform.modeling.rounds import load_version

        model = load_version(champion, load_encoder(self.settings))  # checks the artifact's sha256
        model.predict_proba(WARM_UP_TEXTS)  # the first forward pass allocates; not a request's
        if model.mode != "head":
            return ServedModel(task, champion.version, champion.id, model, self._batcher(f"{task} v{champion.version}"))
        with self._guard:
            if self._shared is None:
                self._shared = self._batcher("head models")
            return ServedModel(task, champion.version, champion.id, model, self._shared)

    def _batcher(self, name: str) -> Batcher:
        return Batcher(
            forward,
            name=name,
            max_batch=self.settings.serve_max_batch,
            max_wait=self.settings.serve_max_wait_ms / 1000,
            max_queue=self.settings.serve_max_queue,
        )

    @staticmethod
    def _swap(slot: _Slot, served: ServedModel | None) -> None:
        with slot.swap:
            old, slot.served = slot.served, served
        if old is not None and old.owns_batcher:
            old.batcher.close()  # what was queued to it still runs on it
