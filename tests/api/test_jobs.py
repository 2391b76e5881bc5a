"""GET /v1/jobs/{id} never shows a job whose process died as running."""

import socket
import subprocess
import sys

import psutil
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftloop.platform.jobs import create_job
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import JobState
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task


def test_a_job_whose_process_died_is_read_as_lost(client: TestClient, engine: Engine, task_name: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    started = psutil.Process(child.pid).create_time()
    child.communicate(b"")
    with session_scope(engine) as session:
        job = create_job(session, "train", get_task(session, task_name).id, {})
        job.state, job.started_at, job.heartbeat_at = JobState.running, utcnow(), utcnow()
        job.owner_host, job.owner_pid, job.owner_started_at = socket.gethostname(), child.pid, started
        job_id = job.id

    read = client.get(f"/v1/jobs/{job_id}").json()
    assert read["state"] == "failed" and read["finished_at"] is not None
    assert read["error"].startswith(f"lost: the process that ran it (pid {child.pid} on host {socket.gethostname()}) is gone")
    assert (read["owner_pid"], read["owner_host"]) == (child.pid, socket.gethostname())
    assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "failed"  # stored, not only shown


def test_metrics_count_the_jobs_in_the_store_and_how_long_they_ran(client: TestClient, engine: Engine) -> None:
    from datetime import timedelta

    from prometheus_client.parser import text_string_to_metric_families

    from driftloop.platform.store.types import utcnow

    now = utcnow()
    with session_scope(engine) as session:  # as any worker or API process would have left them
        for state, seconds in ((JobState.succeeded, 2.5), (JobState.succeeded, 4.0), (JobState.failed, 1.0), (JobState.queued, None)):
            job = create_job(session, "metrics-probe", None, {})
            job.state = state
            if seconds is not None:
                job.started_at, job.finished_at = now - timedelta(seconds=seconds), now

    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}

    def value(family: str, sample: str, state: str) -> float:
        [found] = [s.value for s in families[family].samples if s.name == sample and s.labels == {"kind": "metrics-probe", "state": state}]
        return found

    assert [value("driftloop_jobs", "driftloop_jobs", s) for s in ("succeeded", "failed", "queued")] == [2, 1, 1]
    assert value("driftloop_job_duration_seconds", "driftloop_job_duration_seconds_count", "succeeded") == 2
    assert value("driftloop_job_duration_seconds", "driftloop_job_duration_seconds_sum", "succeeded") == pytest.approx(6.5, abs=0.01)
    assert value("driftloop_job_duration_seconds", "driftloop_job_duration_seconds_sum", "failed") == pytest.approx(1.0, abs=0.01)
