"""Dynamic micro-batching: concurrent prediction requests for one model become one forward pass.

A request's texts wait in the model's queue until the texts waiting fill a batch (``max_batch``)
or the oldest request has waited ``max_wait`` seconds, whichever comes first; then one thread,
the model's own, runs them as one batch (tokenised together, one encoder forward) and hands
each request its rows. Requests are never split: a request larger than ``max_batch`` runs as a
batch of its own. While a batch runs, the next one fills, so under load batches grow by
themselves and the wait costs nothing; alone, a request waits at most ``max_wait``.

Head-mode models of every task sit on the same frozen encoder, so they share one batcher: a
batch's texts, whatever their task, go through the encoder once and each request's rows through
its own model's head (:func:`forward`). A full or lora model has its own encoder, and its own
batcher.

The queue is bounded (``max_queue`` texts): past it a request is refused at once with
:class:`Overloaded` (503 and a ``Retry-After`` from the recent throughput), not left to time out.

This is the scheme of Triton's dynamic batcher and TorchServe's batching (a size and a delay);
neither fits inside a FastAPI process, and the scheduling is forty lines, so it is written here.
"""

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import Histogram

from driftloop.platform.errors import Unavailable

if TYPE_CHECKING:  # torch loads with the first model, not with the API
    from driftloop.platform.modeling.model import TextClassifier

log = logging.getLogger(__name__)

BATCH_TEXTS = Histogram(
    "driftloop_predict_batch_texts",
    "Texts per forward pass of the prediction batcher",
    ["batcher"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)


class Overloaded(Unavailable):
    """The model's queue is full: retry after ``Retry-After`` seconds."""

    code = "overloaded"

    def __init__(self, message: str, retry_after: int, **detail: object) -> None:
        super().__init__(message, retry_after=retry_after, **detail)
        self.headers = {"Retry-After": str(retry_after)}


@dataclass
class Work:
    """One request's part of a batch: its items (a prediction's texts; what counts against the
    batch's size) and what the batch's runner needs besides (a prediction's model, the one it was
    queued to)."""

    items: Sequence[Any]
    context: Any = None
    future: "Future[Any]" = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


def forward(batch: list[Work]) -> list[np.ndarray]:
    """Each request's probabilities. Head-mode models share the encoder's forward pass (one for
    the whole batch, whichever tasks its requests are for), then each model's head takes its own
    requests' rows; a full or lora batch is one model's whole forward."""
    models: list[TextClassifier] = [work.context for work in batch]
    texts = [text for work in batch for text in work.items]
    bounds = np.cumsum([0] + [len(work.items) for work in batch])
    rows = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(batch))]
    if any(model.mode != "head" for model in models):
        probabilities = models[0].predict_proba(texts)  # its own batcher: one model
        return [probabilities[mine] for mine in rows]
    features = models[0].encoder.embed(texts)
    answers: list[np.ndarray] = [np.empty(0)] * len(batch)
    for model in {id(model): model for model in models}.values():
        mine = [i for i, other in enumerate(models) if other is model]
        taken = np.concatenate([rows[i] for i in mine])
        probabilities = model.predict_proba([texts[r] for r in taken], features[taken])
        parts = np.split(probabilities, np.cumsum([len(rows[i]) for i in mine])[:-1])
        for i, part in zip(mine, parts, strict=True):
            answers[i] = part
    return answers


class Batcher:
    """A queue of requests and the thread that runs them in batches with ``run``, which answers
    each request of a batch (:func:`forward` for predictions; the store path's group commit too)."""

    def __init__(
        self,
        run: Callable[[list[Work]], Sequence[Any]],
        *,
        name: str,
        max_batch: int,
        max_wait: float,
        max_queue: int,
        sizes: Histogram | None = BATCH_TEXTS,
    ) -> None:
        self._run_batch, self.name, self._sizes = run, name, sizes
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait, max_queue
        self._queue: deque[Work] = deque()
        self._queued_texts = 0
        self._closed = False
        self._texts_per_second = 0.0  # moving average, for Retry-After
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"batcher-{self.name}", daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[Any], context: Any = None) -> "Future[Any]":
        """Queue ``items`` (with ``context``, for the runner); the future holds their answer."""
        request = Work(items, context)
        with self._ready:
            if self._closed:
                raise RuntimeError(f"batcher {self.name} is closed")
            if self._queued_texts and self._queued_texts + len(items) > self.max_queue:
                raise Overloaded(
                    f"{self._queued_texts} texts are waiting for the {self.name}, the most it queues is {self.max_queue}: "
                    "retry shortly, or raise DRIFTLOOP_SERVE_MAX_QUEUE",
                    retry_after=self._retry_after(),
                )
            self._queue.append(request)
            self._queued_texts += len(items)
            self._ready.notify()
        return request.future

    def close(self) -> None:
        """Take no more requests; the ones queued still run, then the thread ends."""
        with self._ready:
            self._closed = True
            self._ready.notify()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _retry_after(self) -> int:
        if self._texts_per_second <= 0:
            return 1
        return max(1, math.ceil(self._queued_texts / self._texts_per_second))

    def _next_batch(self) -> list[Work] | None:
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            deadline = self._queue[0].enqueued + self.max_wait
            while self._queued_texts < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(left)
            batch = [self._queue.popleft()]
            size = len(batch[0].items)
            while self._queue and size + len(self._queue[0].items) <= self.max_batch:
                request = self._queue.popleft()
                batch.append(request)
                size += len(request.items)
            self._queued_texts -= size
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            size = sum(len(request.items) for request in batch)
            started = time.monotonic()
            try:
                answers = self._run_batch(batch)
            except BaseException as error:  # each waiting request gets the error, the thread goes on
                log.exception("batcher %s: a batch of %d items failed", self.name, size)
                for request in batch:
                    request.future.set_exception(error)
                continue
            rate = size / max(time.monotonic() - started, 1e-6)
            self._texts_per_second = 0.8 * self._texts_per_second + 0.2 * rate if self._texts_per_second else rate
            if self._sizes is not None:
                self._sizes.labels(batcher=self.name).observe(size)
            for request, answer in zip(batch, answers, strict=True):
                request.future.set_result(answer)
