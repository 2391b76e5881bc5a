"""The broker goes away and comes back: a private redis-server, stopped and started again on the
same port, under a real worker and the API. Texts keep being stored; work submitted meanwhile
waits, queued, and runs once the broker is back; nothing is lost or run twice."""

import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import redis
from sqlalchemy import Engine, func, select

from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, JobState, SelectionRound, TextRecord
from driftloop.platform.tasks import get_task
from tests.api_keys import admin_client
from tests.conftest import store_env
from tests.job_watch import wait_for_job_row
from tests.workers.celery_workers import Workers


class PrivateRedis:
    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder = port, folder
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None  # type: ignore[type-arg]

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "the broker outage test needs redis-server (Debian's redis-server package)"
        self.folder.mkdir(parents=True, exist_ok=True)
        # append-only, as a production broker runs: what was queued survives the restart
        command = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder), "--appendonly", "yes", "--save", ""]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the private redis-server did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
            self.process = None


def test_work_submitted_while_the_broker_is_down_runs_once_when_it_is_back(postgresql_engine, tmp_path: Path, headlines, private_redis) -> None:  # type: ignore[no-untyped-def]
    engine = postgresql_engine
    task = f"news-{uuid.uuid4().hex[:8]}"
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False), broker_url=private_redis.url)
    workers = Workers({**store_env(engine, tmp_path), "DRIFTLOOP_BROKER_URL": private_redis.url}, tmp_path / "logs")
    try:
        workers.start("default", "default")
        with admin_client(create_app(settings)) as api:
            assert api.post("/v1/tasks", json={"name": task, "labels": ["a", "b"]}).status_code == 201
            first = api.post(f"/v1/tasks/{task}/texts", json=[{"id": i, "text": t} for i, t, _ in headlines[:40]])
            assert first.json()["stored"] == 40
            before = wait_for_job_row(engine, _score_jobs(engine, task)[-1])
            assert before.state == JobState.succeeded, before.error

            private_redis.stop()
            started = time.monotonic()
            during = api.post(f"/v1/tasks/{task}/texts", json=[{"id": i, "text": t} for i, t, _ in headlines[40:80]])
            assert during.status_code == 200 and during.json()["stored"] == 40  # ingest does not need the broker
            selecting = api.post(f"/v1/tasks/{task}/select", json={"budget": 5})
            assert selecting.status_code == 202  # the job is committed, and waits for the broker
            assert time.monotonic() - started < 60
        with session_scope(engine) as session:
            assert session.scalar(select(func.count()).select_from(TextRecord).where(TextRecord.task_id == get_task(session, task).id)) == 80
            waiting = session.get(Job, selecting.json()["job"])
            assert (waiting.state, waiting.sent_at) == (JobState.queued, None)
            assert waiting.message.startswith("waiting for the broker, unreachable")

        private_redis.start()  # the worker reconnects and sends what the broker missed

        refreshed = wait_for_job_row(engine, _score_jobs(engine, task)[-1])
        selected = wait_for_job_row(engine, selecting.json()["job"])
        assert (refreshed.state, refreshed.attempts, refreshed.result["indexed"]) == (JobState.succeeded, 1, 80), refreshed.error
        assert (selected.state, selected.attempts, selected.result["picks"]) == (JobState.succeeded, 1, 5), selected.error
        time.sleep(12)  # a resend round later: nothing was sent or run twice
        with session_scope(engine) as session:
            task_id = get_task(session, task).id
            assert session.scalar(select(func.count()).select_from(SelectionRound).where(SelectionRound.task_id == task_id)) == 1
            assert [j.attempts for j in session.scalars(select(Job).where(Job.task_id == task_id))] == [1, 1, 1]
        assert redis.Redis.from_url(private_redis.url).llen("default") == 0
    finally:
        workers.stop_all()


def _score_jobs(engine: Engine, task: str) -> list[int]:
    with session_scope(engine) as session:
        task_id = get_task(session, task).id
        return list(session.scalars(select(Job.id).where(Job.task_id == task_id, Job.kind == "score").order_by(Job.id)))
