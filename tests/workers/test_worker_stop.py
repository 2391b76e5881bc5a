"""SIGTERM to a real `driftloop worker` while it trains, on SQLite and PostgreSQL, with a private
redis-server as the broker: with no grace left the job is handed back (queued again, never lost,
its checkpoint kept) and its task goes back to the broker; the next worker runs it, resuming from
the checkpoint, and stopped in turn lets it finish within the grace."""

import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from sqlalchemy import Engine

from driftloop.platform.config import Settings
from driftloop.platform.jobs import submit
from driftloop.platform.modeling.rounds import RoundRequest, checkpoint_path, request_params
from driftloop.platform.modeling.training import TrainingConfig
from driftloop.platform.store.models import JobState
from tests.job_watch import assert_resumed_once_and_finished, job_row, training_run_states, wait_for_job_row
from tests.learning_loop import Loop
from tests.processes import own_store
from tests.workers.celery_workers import Workers
from tests.workers.test_broker_outage import PrivateRedis


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, dict[str, str]]]:
    with own_store(request.param, tmp_path / "home") as found:
        yield found


def test_a_stopped_worker_hands_its_training_back_and_the_next_one_resumes_it_and_lets_it_finish(
    store: tuple[Engine, dict[str, str]], private_redis: PrivateRedis, tmp_path: Path, headlines
) -> None:  # type: ignore[no-untyped-def]
    engine, env = store
    home = tmp_path / "home"
    loop = Loop(engine, home, headlines[:200], encoder=None)
    loop.label(loop.headlines[:100])
    settings = Settings(home=home, database_url=engine.url.render_as_string(hide_password=False), broker_url=private_redis.url)
    env = {**env, "DRIFTLOOP_BROKER_URL": private_redis.url, "DRIFTLOOP_CHECKPOINT_STEPS": "2"}
    logs = tmp_path / "logs"
    first = Workers({**env, "DRIFTLOOP_STOP_GRACE_SECONDS": "0"}, logs)
    second = Workers({**env, "DRIFTLOOP_STOP_GRACE_SECONDS": "600"}, logs)  # a bound for a loaded machine
    try:
        first.start("train-1", "train")
        request = RoundRequest(task=loop.task, mode="lora", training=TrainingConfig(epochs=4))
        job_id = submit(engine, settings, "train", loop.task, request_params(request))
        checkpoint = checkpoint_path(settings, job_id)
        trained_by = wait_for_job_row(engine, job_id, lambda j: j.state == JobState.running and checkpoint.exists()).owner_pid

        assert first.stop("train-1") == 0
        log = first.log("train-1").read_text()
        assert f"job {job_id} handed back, queued again for the next runner: it did not finish within DRIFTLOOP_STOP_GRACE_SECONDS (0s)" in log, log[-3000:]
        assert f"job {job_id}: its task goes back to the broker, for the next worker" in log
        job = job_row(engine, job_id)
        assert (job.state, job.owner_pid, job.error, job.finished_at, job.attempts) == (JobState.queued, None, None, None, 1)
        assert job.message == f"handed back: its worker (train-1@{socket.gethostname()}) stopped (SIGTERM)", job.message
        assert training_run_states(engine, job_id) == [JobState.cancelled]
        assert checkpoint.exists()
        assert redis.Redis.from_url(private_redis.url).llen("train") >= 1  # the task is back in its queue, never acknowledged
        assert not psutil.pid_exists(trained_by)  # the pool process that trained ended with its worker

        second.start("train-2", "train")
        resumed = wait_for_job_row(engine, job_id, lambda j: j.state != JobState.queued)
        assert (resumed.state, resumed.attempts, resumed.worker.split("@")[0]) == (JobState.running, 2, "train-2"), resumed.error

        assert second.stop("train-2") == 0
        log = second.log("train-2").read_text()
        assert f"stopping (SIGTERM): job {job_id} may finish within DRIFTLOOP_STOP_GRACE_SECONDS (600s), else it is handed back" in log, log[-3000:]
        assert f"job {job_id} succeeded before the stop" in log and f"job {job_id} handed back" not in log, log[-3000:]
    finally:
        first.stop_all()
        second.stop_all()

    assert_resumed_once_and_finished(engine, job_id, checkpoint)
