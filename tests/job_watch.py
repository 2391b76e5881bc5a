"""Following a job: over HTTP, as a client of the API does, or in the store."""

import time
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, JobState


def wait_for_job(client: TestClient, job_id: int, timeout: float = 300.0) -> list[dict]:  # type: ignore[type-arg]
    """Every distinct view of the job over HTTP until it ends."""
    seen: list[dict] = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if not seen or (job["state"], job["progress"]) != (seen[-1]["state"], seen[-1]["progress"]):
            seen.append(job)
        if job["state"] not in ("queued", "running"):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end in {timeout}s: {seen[-1]}")


def job_ended(job: Job) -> bool:
    return job.state not in (JobState.queued, JobState.running)


def wait_for_job_row(engine: Engine, job_id: int, until: Callable[[Job], bool] = job_ended, timeout: float = 300.0) -> Job:
    """The job's row in the store, once ``until`` holds for it (by default: once it has ended)."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(engine) as session:
            job = session.get(Job, job_id)
            assert job is not None, f"no job {job_id}"
            session.expunge(job)
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} ({job.kind}) is {job.state.value} ({job.progress:.0%} {job.message}; {job.error})"
        time.sleep(0.2)
