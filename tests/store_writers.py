"""Writers beside a test: what a busy deployment does to its store while requests come in — a
running job's heartbeat and progress, and ingest batches — through the product's own code, in
threads, until the test is done. Any error they meet fails the test (a writer that cannot write is
the bug the embedded default once had: "database is locked")."""

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from driftloop.platform import jobs
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import create_task, get_task


@contextmanager
def busy_writers(engine: Engine, *, interval: float = 0.02) -> Iterator[dict[str, int]]:
    """Run the writers while the body runs; yields their counts of committed writes."""
    task = f"busy-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        create_task(session, task, ["a", "b"])
    job_id = _running_job(engine, task)
    stop, errors, counts = threading.Event(), [], {"progress": 0, "ingested": 0}

    def progress() -> None:
        report = jobs.progress_reporter(engine, job_id)
        step = 0
        while not stop.wait(interval):
            step += 1
            try:
                report(min(step / 1e6, 0.99), f"step {step}")  # it writes at most every half second
                counts["progress"] += 1
            except jobs.JobCancelled:  # a fuzzer beside it may cancel its job: carry on with another
                report = jobs.progress_reporter(engine, _running_job(engine, task))
            except Exception as error:  # noqa: BLE001 - reported by the test
                errors.append(f"progress: {type(error).__name__}: {error}")

    def ingesting() -> None:
        batch = 0
        while not stop.wait(interval):
            batch += 1
            records = [(n, {"id": f"b{batch}-{n}", "text": f"busy text {batch} {n} {uuid.uuid4().hex}"}) for n in range(10)]
            try:
                for outcomes in ingest(engine, task, records, max_text_chars=1000, batch_size=10):
                    counts["ingested"] += len(outcomes)
            except Exception as error:  # noqa: BLE001 - reported by the test
                errors.append(f"ingest: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=target, daemon=True) for target in (progress, ingesting)]
    with jobs.running(engine, job_id, interval):  # the job's heartbeat, as a running job writes it
        for thread in threads:
            thread.start()
        try:
            yield counts
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
    assert not errors, errors[:5]


def _running_job(engine: Engine, task: str) -> int:
    with session_scope(engine) as session:
        return jobs.create_job(session, "select", get_task(session, task).id, {}, start=True).id
