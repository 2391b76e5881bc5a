"""Following a job: over HTTP, as a client of the API does, or in the store."""

import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, JobState, TrainingRun
from tests.processes import wait


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


def job_row(engine: Engine, job_id: int) -> Job:
    """The job's row as it is now, detached from its session."""
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None, f"no job {job_id}"
        session.expunge(job)
        return job


def training_run_states(engine: Engine, job_id: int) -> list[JobState]:
    """The states of the job's training runs, oldest first."""
    with session_scope(engine) as session:
        return list(session.scalars(select(TrainingRun.state).where(TrainingRun.job_id == job_id).order_by(TrainingRun.id)))


def assert_resumed_once_and_finished(engine: Engine, job_id: int, checkpoint: Path) -> None:
    """A training handed back once succeeded on its second attempt, resumed from its checkpoint
    (not from scratch), and its checkpoint was removed after it."""
    job = job_row(engine, job_id)
    assert (job.state, job.attempts, job.result["version"]) == (JobState.succeeded, 2, 1), job.error
    assert training_run_states(engine, job_id) == [JobState.cancelled, JobState.succeeded]
    with session_scope(engine) as session:
        run = session.scalars(select(TrainingRun).where(TrainingRun.job_id == job_id, TrainingRun.state == JobState.succeeded)).one()
        fit = run.metrics["fit"]
    assert fit["resumed_from_step"] is not None and fit["resumed_from_step"] >= 2, fit
    wait(lambda: not checkpoint.parent.exists(), "the checkpoint of the finished job is removed", timeout=30)
