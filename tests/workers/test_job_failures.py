"""A job that fails for what it was asked (a user error) is one line in a real worker's log, not a
traceback, and Celery records its task as failed, not "succeeded … None" (issue 21)."""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from driftloop.platform.config import Settings
from driftloop.platform.jobs import submit
from driftloop.platform.modeling.round_requests import RoundRequest, request_params
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import JobState
from driftloop.platform.tasks import create_task
from tests.conftest import store_env
from tests.job_watch import wait_for_job_row
from tests.workers.celery_workers import Workers

BROKER = "redis://127.0.0.1:6379/13"  # this file's own database


@pytest.fixture
def workers(postgresql_engine: Engine, tmp_path: Path) -> Iterator[Workers]:
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    pool = Workers({**store_env(postgresql_engine, tmp_path), "DRIFTLOOP_BROKER_URL": BROKER}, tmp_path / "logs")
    yield pool
    pool.stop_all()
    client.flushdb()


def test_a_user_error_in_a_job_is_one_line_and_a_failed_task(postgresql_engine: Engine, tmp_path: Path, workers: Workers) -> None:
    task_name = f"t-{uuid.uuid4().hex[:10]}"
    with session_scope(postgresql_engine) as session:
        create_task(session, task_name, ["a", "b"])
    settings = Settings(home=tmp_path, database_url=postgresql_engine.url.render_as_string(hide_password=False), broker_url=BROKER)
    workers.start("train", "train")
    # queued past the submission's checks (as a job whose labels were taken back meanwhile would be)
    job_id = submit(postgresql_engine, settings, "train", task_name, request_params(RoundRequest(task=task_name)))
    job = wait_for_job_row(postgresql_engine, job_id)
    assert job.state == JobState.failed and "has no training labels yet" in (job.error or "")

    deadline = time.monotonic() + 60  # the task's own line follows the job row's commit
    while "Task driftloop.train[" not in (log := workers.log("train").read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    ours = [line for line in log.splitlines() if f"] job {job_id} (train) failed: " in line]
    assert len(ours) == 1 and "has no training labels yet" in ours[0], log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert "raised expected: JobFailed" in log, log[-3000:]  # Celery's own record: failed, one line
    assert "succeeded in" not in log

