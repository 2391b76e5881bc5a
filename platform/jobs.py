"""Jobs: long work as ops see it, with state, progress (0..1) and a message, error and timings.

Progress is written in its own short transaction, so it is visible while the work itself is
still inside a longer one, and at most every ``_MIN_INTERVAL`` seconds, so reporting never
slows the work down.
"""

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from driftloop.platform.errors import NotFound
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, JobState
from driftloop.platform.store.types import utcnow

_MIN_INTERVAL = 0.5


def create_job(session: Session, kind: str, task_id: int | None, params: dict[str, Any]) -> Job:
    job = Job(kind=kind, task_id=task_id, params=params, state=JobState.queued, progress=0.0)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", job=job_id)
    return job


def start_job(engine: Engine, job_id: int) -> None:
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        job.state, job.started_at, job.message = JobState.running, utcnow(), "started"


def finish_job(engine: Engine, job_id: int, result: dict[str, Any]) -> None:
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        job.state, job.progress, job.result, job.finished_at, job.message = (
            JobState.succeeded,
            1.0,
            result,
            utcnow(),
            "done",
        )


def fail_job(engine: Engine, job_id: int, error: str) -> None:
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        job.state, job.error, job.finished_at = JobState.failed, error, utcnow()


def progress_reporter(engine: Engine, job_id: int, low: float = 0.0, high: float = 1.0) -> Callable[[float, str], None]:
    """A callback mapping a step's own 0..1 onto ``low..high`` of the job and storing it."""
    last = 0.0

    def report(fraction: float, message: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < _MIN_INTERVAL and fraction < 1.0:
            return
        last = now
        with session_scope(engine) as session:
            job = get_job(session, job_id)
            job.progress = min(1.0, max(0.0, low + (high - low) * fraction))
            job.message = message[:500]

    return report
