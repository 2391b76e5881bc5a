"""GET /v1/jobs/{id} never shows a job whose process died as running."""

import socket
import subprocess
import sys

import psutil
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
