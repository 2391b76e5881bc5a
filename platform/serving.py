"""The champion, served: each API process keeps the task's promoted model loaded and predicts
with it.

Whoever promotes or rolls back (the CLI, the API, a worker on another machine) changes the
registry; a process looks at the registry's champion at most every
``DRIFTLOOP_SERVE_CHECK_SECONDS`` and, when it changed, loads the new model (its checksum
verified) and swaps it in, while requests on the old one finish on it. A model that fails to
load leaves the old one serving, and the failure is logged and kept for ``/v1/tasks/{task}/model``.
"""

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Engine

from driftloop.platform.config import Settings
from driftloop.platform.errors import Conflict, InvalidInput
from driftloop.platform.modeling import registry
from driftloop.platform.storable import text_problem
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task

if TYPE_CHECKING:  # torch and transformers load with the first model, not with the API
    from driftloop.platform.modeling.model import TextClassifier

log = logging.getLogger(__name__)


class NoChampion(Conflict):
    """The task has no promoted model to predict with yet."""

    code = "no_champion"


@dataclass(frozen=True)
class ServedModel:
    version: int
    version_id: int
    model: "TextClassifier"


@dataclass(frozen=True)
class Predictions:
    task: str
    version: int
    labels: list[str]  # the model's label order: the columns of ``probabilities``
    probabilities: np.ndarray  # (texts, labels)


@dataclass
class _Slot:
    served: ServedModel | None = None
    checked_at: float = float("-inf")
    load_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ServedModels:
    """The champions this process serves, one per task, each swapped when the registry's changes."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self._slots: dict[str, _Slot] = {}
        self._guard = threading.Lock()

    def current(self, task: str) -> ServedModel:
        """The model to predict with for ``task``: the registry's champion, loaded; the one already
        loaded while the registry was looked at less than the check interval ago."""
        with self._guard:
            slot = self._slots.setdefault(task, _Slot())
        if time.monotonic() - slot.checked_at >= self.settings.serve_check_seconds or slot.served is None:
            with slot.lock:  # one loader per task; the others serve what is loaded meanwhile, or wait for a first one
                if time.monotonic() - slot.checked_at >= self.settings.serve_check_seconds or slot.served is None:
                    self._refresh(task, slot)
        if slot.served is None:
            raise NoChampion(f"task {task} has no promoted model yet: train one (`driftloop train {task}`)", task=task)
        return slot.served

    def load_error(self, task: str) -> str | None:
        slot = self._slots.get(task)
        return slot.load_error if slot else None

    def _refresh(self, task: str, slot: _Slot) -> None:
        from driftloop.platform.modeling.encoder import load_encoder
        from driftloop.platform.modeling.rounds import load_version

        with session_scope(self.engine) as session:
            champion = registry.champion(session, get_task(session, task).id)
            if champion is not None and (slot.served is None or slot.served.version_id != champion.id):
                try:
                    model = load_version(champion, load_encoder(self.settings))
                except Exception as error:  # a corrupt or missing artifact: keep serving the old one
                    slot.load_error = f"version {champion.version} could not be loaded: {type(error).__name__}: {error}"
                    log.error("task %s: %s; still serving %s", task, slot.load_error, slot.served.version if slot.served else "nothing")
                else:
                    slot.served, slot.load_error = ServedModel(champion.version, champion.id, model), None
        slot.checked_at = time.monotonic()


def predict(models: ServedModels, settings: Settings, task: str, texts: list[str]) -> Predictions:
    """The champion's probabilities for ``texts``, in order. Refuses, naming the text, what ingest
    would refuse: too many texts, an empty one, one too long, one the store cannot hold."""
    check_texts(texts, settings)
    served = models.current(task)
    probabilities = served.model.predict_proba(texts)
    return Predictions(task, served.version, list(served.model.labels), probabilities)


def check_texts(texts: list[str], settings: Settings) -> None:
    if not texts:
        raise InvalidInput("give at least one text", field="texts")
    if len(texts) > settings.ingest_max_records_per_request:
        raise InvalidInput(f"{len(texts)} texts, more than the {settings.ingest_max_records_per_request} a request may hold", field="texts")
    for index, text in enumerate(texts):
        if not text.strip():
            raise InvalidInput(f"text {index} is empty", field=f"texts[{index}]")
        if len(text) > settings.ingest_max_text_chars:
            raise InvalidInput(f"text {index} has {len(text)} characters, more than {settings.ingest_max_text_chars}", field=f"texts[{index}]")
        problem = text_problem(text)
        if problem is not None:
            raise InvalidInput(f"text {index} {problem}", field=f"texts[{index}]")
