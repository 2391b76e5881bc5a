"""The job dispatch seam: submit → a queued job row → a runner (this process's thread, a detached
process, or Celery by task name) → the operation starts, reports and completes the job.

Real parts throughout: the real encoder and training (head mode, BBC headlines), a real API
app, the installed CLI in subprocesses, and a real Redis as the Celery broker."""

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
import redis
from sqlalchemy import Engine, func, select

from driftloop.platform import jobs
from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.jobs import Owner, create_job, get_job, run_job, submit
from driftloop.platform.selection.task_index import index_status
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, JobState, ModelVersion, TrainingRun
from driftloop.platform.tasks import create_task, get_task
from tests.api_keys import admin_client
from tests.conftest import run_cli, store_env
from tests.job_watch import wait_for_job
from tests.learning_loop import Loop

BROKER_DB = 13  # this file's own Redis database: parallel runs and a demo use others


def test_train_and_select_over_http_answer_202_and_run_one_after_the_other(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(sqlite_engine, tmp_path, headlines, encoder)
    loop.label(loop.headlines[:300])
    with admin_client(create_app(loop.settings)) as client:
        train = client.post(f"/v1/tasks/{loop.task}/train", json={"mode": "head", "seed": 1})
        assert train.status_code == 202, train.text
        job_id = train.json()["job"]
        assert train.headers["location"] == f"/v1/jobs/{job_id}" == train.json()["url"]
        # a second job while the first runs: it waits its turn in the process's runner
        picked = client.post(f"/v1/tasks/{loop.task}/select", json={"budget": 5, "strategy": "margin"})
        assert picked.status_code == 202, picked.text
        pick_id = picked.json()["job"]

        views = wait_for_job(client, job_id)
        assert views[-1]["state"] == "succeeded", views[-1]
        assert views[-1]["progress"] == 1.0 and views[-1]["result"]["version"] == 1
        assert any(0 < v["progress"] < 1 and v["state"] == "running" for v in views), "no progress was shown while it ran"
        selection = wait_for_job(client, pick_id)[-1]
        assert selection["state"] == "succeeded", selection
        # picked by the champion the first job promoted, and only after it finished
        assert selection["result"]["picks"] == 5 and selection["result"]["model_version"] == 1
        assert selection["started_at"] >= views[-1]["finished_at"]
        assert [m["status"] for m in client.get(f"/v1/tasks/{loop.task}/models").json()] == ["champion"]

        # refused before any job is made: a usage error names the field, an unknown task is a 404
        assert client.post(f"/v1/tasks/{loop.task}/train", json={"mode": "huge"}).status_code == 422
        assert client.post(f"/v1/tasks/{loop.task}/select", json={"budget": 0}).status_code == 422
        assert client.post(f"/v1/tasks/no-{uuid.uuid4().hex[:6]}/train").status_code == 404
    with session_scope(sqlite_engine) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 2


def test_cancelling_a_running_training_stops_it_and_commits_nothing(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(sqlite_engine, tmp_path, headlines, encoder)
    loop.label(loop.headlines[:300])
    with admin_client(create_app(loop.settings)) as client:
        # thousands of epochs: it is still training when the cancel arrives
        job_id = client.post(f"/v1/tasks/{loop.task}/train", json={"epochs": 5000}).json()["job"]
        deadline = time.monotonic() + 120
        while client.get(f"/v1/jobs/{job_id}").json()["progress"] < 0.35:  # past the embedding, in the epochs
            assert time.monotonic() < deadline
            time.sleep(0.1)
        cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
        assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled")
        jobs._pool().submit(lambda: None).result(timeout=120)  # the runner's one thread is free again: the work stopped
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert (job["state"], job["error"]) == ("cancelled", "cancelled by request")
        assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 409
    with session_scope(sqlite_engine) as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0
        assert session.scalar(select(TrainingRun.state).where(TrainingRun.job_id == job_id)) == JobState.cancelled


def test_a_cancelled_queued_job_never_runs(engine: Engine, task_name: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False))
    with session_scope(engine) as session:
        job_id = create_job(session, "select", get_task(session, task_name).id, {"task": task_name, "budget": 3}).id
    with admin_client(create_app(settings)) as client:
        assert client.post(f"/v1/jobs/{job_id}/cancel").json()["state"] == "cancelled"
        assert run_job(engine, settings, job_id) is None  # e.g. a broker delivering it late: not run
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert (job["state"], job["started_at"]) == ("cancelled", None)
        assert client.post(f"/v1/jobs/{job_id}/cancel").json()["error"] == "job_ended"


def test_a_queued_job_whose_runner_died_is_lost_not_queued_forever(engine: Engine, task_name: str) -> None:
    runner = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = Owner("", runner.pid, psutil.Process(runner.pid).create_time()) if runner.poll() is None else None
    runner.wait()
    with session_scope(engine) as session:
        job = create_job(session, "train", get_task(session, task_name).id, {})
        if owner is None:
            pytest.fail("the runner exited before its creation time could be read; run again")
        # claimed as submit() claims a job for this host's runner
        job.owner_host, job.owner_pid, job.owner_started_at = socket.gethostname(), owner.pid, owner.started_at
        job_id = job.id
    with session_scope(engine) as session:
        job = get_job(session, job_id, lost_after=60)
        assert job.state == JobState.failed and job.error.startswith("lost: the process that ran it"), job.error


def test_no_wait_returns_the_id_and_a_detached_process_runs_it(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(sqlite_engine, tmp_path, headlines, encoder)
    loop.label(loop.headlines[:300])
    env = store_env(sqlite_engine, tmp_path)
    queued = run_cli("train", loop.task, "--no-wait", env=env, timeout=60)
    assert queued.returncode == 0, queued.stderr
    job_id = int(queued.stdout.decode())  # the id alone on stdout
    assert f"jobs watch {job_id}" in queued.stderr.decode()
    with session_scope(sqlite_engine) as session:
        assert session.get(Job, job_id).state in (JobState.queued, JobState.running)  # it returned at once
    watched = run_cli("jobs", "watch", str(job_id), "--json", env=env, timeout=300)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    job = json.loads(watched.stdout)
    assert (job["state"], job["result"]["version"]) == ("succeeded", 1)
    assert loop.champion_version() == 1


def test_with_a_broker_a_job_goes_to_celery_by_task_name(engine: Engine, task_name: str, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:6379/{BROKER_DB}"
    broker = redis.Redis.from_url(url)
    broker.flushdb()
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False), broker_url=url)
    job_id = submit(engine, settings, "select", task_name, {"task": task_name, "budget": 3})
    message = json.loads(broker.lpop("default"))  # the queue of everything but training
    assert (message["headers"]["task"], json.loads(jobs_body(message))[0]) == ("driftloop.select", [job_id])
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert (job.state, job.owner_pid, job.queue) == (JobState.queued, None, "default")  # the worker that takes it will own it
        assert job.sent_at is not None
    train_id = submit(engine, settings, "train", task_name, {"task": task_name})
    message = json.loads(broker.lpop("train"))  # trainings go to the train workers (GPUs)
    assert (message["headers"]["task"], json.loads(jobs_body(message))[0]) == ("driftloop.train", [train_id])
    broker.flushdb()


def jobs_body(message: dict) -> str:  # type: ignore[type-arg]
    import base64

    return base64.b64decode(message["body"]).decode()


def test_an_index_rebuild_over_http_is_a_job_that_embeds_and_indexes_every_text(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=sqlite_engine.url.render_as_string(hide_password=False))
    task = f"t-{uuid.uuid4().hex[:8]}"
    with session_scope(sqlite_engine) as session:
        create_task(session, task, ["a", "b"])
    texts = ["flu season starts early", "a new vaccine trial", "hospital waiting times grow", "sleep and heart health"]
    list(ingest(sqlite_engine, task, enumerate({"text": t} for t in texts), max_text_chars=1000, batch_size=100))
    with admin_client(create_app(settings)) as client:
        accepted = client.post(f"/v1/tasks/{task}/index/rebuild")
        assert accepted.status_code == 202 and accepted.headers["location"] == accepted.json()["url"]
        job = wait_for_job(client, accepted.json()["job"])[-1]
        assert (job["state"], job["result"]["vectors"]) == ("succeeded", 4), job
        assert client.post(f"/v1/tasks/no-{uuid.uuid4().hex[:6]}/index/rebuild").status_code == 404
    with session_scope(sqlite_engine) as session:
        task_id = get_task(session, task).id
    assert index_status(sqlite_engine, tmp_path, task_id, job["result"]["encoder"]).indexed == 4


def _dead_process() -> Owner:
    """This host's owner record of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    owner = Owner(socket.gethostname(), child.pid, psutil.Process(child.pid).create_time())
    child.communicate(b"")
    return owner


def _running_job(engine: Engine, task_name: str, owner: Owner, attempts: int) -> int:
    with session_scope(engine) as session:
        job = create_job(session, "select", get_task(session, task_name).id, {"task": task_name, "budget": 1})
        job.state, job.attempts, job.progress = JobState.running, attempts, 0.4
        job.owner_host, job.owner_pid, job.owner_started_at = owner.host, owner.pid, owner.started_at
        return job.id


def test_a_redelivered_job_whose_process_died_runs_again_until_its_attempts_are_spent(engine: Engine, task_name: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False), job_max_attempts=2)
    # its first process died: a broker's second delivery makes it runnable again
    retried = _running_job(engine, task_name, _dead_process(), attempts=1)
    with session_scope(engine) as session:
        assert jobs.reclaim_lost(session, retried, lost_after=60, max_attempts=settings.job_max_attempts)
    with session_scope(engine) as session:
        job = session.get(Job, retried)
        assert (job.state, job.owner_pid, job.error) == (JobState.queued, None, None)
        assert job.message.startswith("delivered again after attempt 1: lost: the process that ran it")

    # its processes died twice: given up, not looped forever
    spent = _running_job(engine, task_name, _dead_process(), attempts=2)
    assert run_job(engine, settings, spent, redelivery=True) is None
    with session_scope(engine) as session:
        job = session.get(Job, spent)
        assert job.state == JobState.failed and job.error.startswith("lost: given up after 2 attempts"), job.error

    # one whose process lives is another delivery of a job at work: left alone
    alive = _running_job(engine, task_name, Owner.this_process(), attempts=1)
    assert run_job(engine, settings, alive, redelivery=True) is None
    with session_scope(engine) as session:
        assert session.get(Job, alive).state == JobState.running


def test_two_trainings_of_one_task_never_run_at_once(sqlite_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    from driftloop.platform.errors import Busy
    from driftloop.platform.modeling.rounds import RoundRequest, request_params

    loop = Loop(sqlite_engine, tmp_path, headlines, encoder)
    loop.label(loop.headlines[:150])
    with session_scope(sqlite_engine) as session:  # a training at work in this (live) process
        other = create_job(session, "train", get_task(session, loop.task).id, {}, start=True).id
    with pytest.raises(Busy, match=f"another training of task {loop.task} is running \\(job {other}\\)"):
        loop.train()

    settings = loop.settings.model_copy(update={"job_busy_retry_seconds": 0.2})
    with session_scope(sqlite_engine) as session:
        queued = create_job(session, "train", get_task(session, loop.task).id, request_params(RoundRequest(task=loop.task))).id
    import threading

    waiting = threading.Thread(target=run_job, args=(sqlite_engine, settings, queued))
    waiting.start()
    time.sleep(1.0)
    with session_scope(sqlite_engine) as session:
        job = session.get(Job, queued)
        assert (job.state, job.message) == (JobState.queued, f"waiting: another training of task {loop.task} is running (job {other}); one at a time per task")
        jobs.complete_job(session, other, {})  # the other training ends: the waiting one starts
    waiting.join(timeout=300)
    with session_scope(sqlite_engine) as session:
        job = session.get(Job, queued)
        assert (job.state, job.result["version"]) == (JobState.succeeded, 1), job.error


def test_an_ingest_over_http_queues_one_refresh_of_the_pool_that_embeds_the_new_texts(sqlite_engine: Engine, tmp_path: Path) -> None:
    from driftloop.platform.selection.pool import submit_score

    settings = Settings(home=tmp_path, database_url=sqlite_engine.url.render_as_string(hide_password=False), pool_refresh="on")
    task = f"t-{uuid.uuid4().hex[:8]}"
    with session_scope(sqlite_engine) as session:
        create_task(session, task, ["a", "b"])
    with admin_client(create_app(settings)) as client:
        stored = client.post(f"/v1/tasks/{task}/texts", json=[{"text": "flu season starts early"}, {"text": "a new vaccine trial"}])
        assert stored.json()["stored"] == 2
        with session_scope(sqlite_engine) as session:
            [refresh] = session.scalars(select(Job.id).where(Job.kind == "score")).all()
        job = wait_for_job(client, refresh)[-1]
        assert (job["state"], job["result"]) == ("succeeded", {"pool": 2, "indexed": 2, "scored_by": None}), job

    # coalesced: while one refresh waits for a worker (a broker nobody consumes), more ingests add none
    url = f"redis://127.0.0.1:6379/{BROKER_DB}"
    redis.Redis.from_url(url).flushdb()
    brokered = settings.model_copy(update={"broker_url": url})
    first = submit_score(sqlite_engine, brokered, task)
    assert submit_score(sqlite_engine, brokered, task) == first
    assert redis.Redis.from_url(url).llen("default") == 1
    redis.Redis.from_url(url).flushdb()
