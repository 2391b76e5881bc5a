"""The batcher's scheduling, with a predict function that records the batches it is given: each
row of its answer is the text's own number, so a row that reached the wrong request shows."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from driftloop.platform.serving.batching import Batcher, Overloaded, Work


class Recorder:
    def __init__(self, seconds: float = 0.0, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.seconds, self.fail_on = seconds, fail_on
        self.running = threading.Event()

    def __call__(self, batch: list[Work]) -> list[np.ndarray]:
        self.running.set()
        texts = [text for work in batch for text in work.items]
        self.batches.append(texts)
        time.sleep(self.seconds)
        if self.fail_on in texts:
            raise ValueError(f"cannot predict {self.fail_on}")
        return [np.array([[float(t.split()[-1]), 1.0] for t in work.items]) for work in batch]


def _batcher(recorder: Recorder, **limits: float) -> Batcher:
    return Batcher(recorder, name="t", **{"max_batch": 8, "max_wait": 0.2, "max_queue": 100, **limits})  # type: ignore[arg-type]


def test_concurrent_requests_share_one_forward_pass_and_each_gets_its_own_rows() -> None:
    recorder = Recorder()
    batcher = _batcher(recorder, max_batch=64, max_wait=0.3)
    requests = [[f"text {i}", f"text {i + 100}"] for i in range(10)]
    futures = [batcher.submit(texts) for texts in requests]
    for texts, future in zip(requests, futures, strict=True):
        assert future.result(timeout=5)[:, 0].tolist() == [float(t.split()[-1]) for t in texts]
    assert [len(batch) for batch in recorder.batches] == [20]  # one pass for the ten requests
    batcher.close()


def test_a_full_batch_goes_at_once_and_requests_are_never_split() -> None:
    recorder = Recorder()
    batcher = _batcher(recorder, max_batch=4, max_wait=10.0)  # only a full batch goes before the wait
    started = time.monotonic()
    futures = [batcher.submit([f"x {i}", f"x {i}"]) for i in range(3)]  # 6 texts: batches of 4 and (after the wait) 2
    futures[0].result(timeout=5)
    futures[1].result(timeout=5)
    assert time.monotonic() - started < 5  # the full batch did not wait for max_wait
    assert [len(batch) for batch in recorder.batches] == [4]
    big = batcher.submit([f"y {i}" for i in range(9)])  # larger than a batch: runs alone, whole
    assert big.result(timeout=15).shape == (9, 2)
    assert [len(batch) for batch in recorder.batches][1:] == [2, 9]
    batcher.close()


def test_alone_a_request_waits_at_most_max_wait() -> None:
    recorder = Recorder()
    batcher = _batcher(recorder, max_batch=64, max_wait=0.05)
    started = time.monotonic()
    batcher.submit(["alone 1"]).result(timeout=5)
    assert time.monotonic() - started < 1.0
    batcher.close()


def test_past_the_queue_limit_a_request_is_refused_at_once_with_a_retry_after() -> None:
    recorder = Recorder(seconds=0.3)
    batcher = _batcher(recorder, max_batch=2, max_wait=0.0, max_queue=4)
    first = batcher.submit(["a 1", "a 2"])
    recorder.running.wait(5)  # the first batch runs; the queue fills behind it
    queued = [batcher.submit(["b 1", "b 2"]), batcher.submit(["c 1", "c 2"])]
    with pytest.raises(Overloaded) as refused:
        batcher.submit(["d 1"])
    assert int(refused.value.headers["Retry-After"]) >= 1 and refused.value.status == 503
    for future in [first, *queued]:
        assert future.result(timeout=5).shape == (2, 2)  # nothing queued was dropped
    batcher.close()


def test_a_failed_batch_fails_its_requests_and_the_next_batches_run() -> None:
    recorder = Recorder(fail_on="bad 0")
    batcher = _batcher(recorder, max_batch=64, max_wait=0.1)
    doomed = [batcher.submit(["bad 0"]), batcher.submit(["good 1"])]  # same batch as the bad one
    for future in doomed:
        with pytest.raises(ValueError, match="cannot predict bad 0"):
            future.result(timeout=5)
    assert batcher.submit(["good 2"]).result(timeout=5)[0, 0] == 2.0
    batcher.close()


def test_closing_runs_what_is_queued_then_refuses() -> None:
    recorder = Recorder(seconds=0.1)
    batcher = _batcher(recorder, max_batch=1, max_wait=0.0)
    with ThreadPoolExecutor(4) as pool:
        futures = list(pool.map(lambda i: batcher.submit([f"q {i}"]), range(4)))
    batcher.close()
    assert [f.result(timeout=5)[0, 0] for f in futures] == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(["late 9"])
    batcher.join(timeout=5)
