"""One scheduler per store, whatever runs it: a real `driftloop serve` (no broker: it fires the
schedules and runs their jobs itself) and a real `driftloop beat` (with a broker, a private
redis-server nobody consumes) on one store, SQLite and PostgreSQL. Exactly one leads, the other
says it stands by and who leads; kill -9 the leader and the other takes over and fires."""

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, select

from driftloop.labeling.server.ports import free_port
from driftloop.platform import schedules
from driftloop.platform.jobs import queue_of
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import create_task
from tests.processes import Driftloop, own_store, wait
from tests.workers.test_broker_outage import PrivateRedis


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, dict[str, str]]]:
    with own_store(request.param, tmp_path / "home") as (engine, env):
        yield engine, {**env, "DRIFTLOOP_ARGILLA_URL": ""}  # no Argilla: serve's sync jobs fail at once, saying so


def test_serve_and_beat_on_one_store_one_leads_the_other_stands_by_and_takes_over_when_it_is_killed(
    store: tuple[Engine, dict[str, str]], tmp_path: Path
) -> None:
    engine, env = store
    broker = PrivateRedis(free_port(), tmp_path / "redis")
    broker.start()
    processes: list[Driftloop] = []
    try:
        task = f"one-{uuid.uuid4().hex[:8]}"
        with session_scope(engine) as session:
            create_task(session, task, ["a", "b"])
            added = schedules.add(session, task, "sync", every="2s", now=utcnow() + timedelta(seconds=1))

        serve = Driftloop(["serve", "--port", str(free_port())], {**env, "DRIFTLOOP_BROKER_URL": ""})
        processes.append(serve)
        serve.wait_for(f"scheduler leading: driftloop serve (pid {serve.pid} on host ")
        beat = Driftloop(["beat", "--interval", "0.5"], {**env, "DRIFTLOOP_BROKER_URL": broker.url})
        processes.append(beat)
        standing = beat.wait_for("scheduler standing by: ")
        assert standing.startswith(f"scheduler standing by: driftloop serve (pid {serve.pid} on host "), standing
        assert standing.endswith(") leads; this one takes over when it stops"), standing

        # some firings later, all of them serve's (its jobs run in it; none went to the broker)
        stood_by = len(_firings(engine, added.id))
        wait(lambda: len(_firings(engine, added.id)) >= stood_by + 3, "three more firings", log=serve.log)
        assert not beat.said("scheduler leading") and not serve.said("scheduler standing by"), (beat.log(), serve.log())
        assert not beat.said(f"schedule {added.id} (sync")  # beat prints each firing it makes: none
        assert _sent_jobs(engine) == [] and redis.Redis.from_url(broker.url).llen(queue_of("sync")) == 0
        run_by = [j.owner_pid for j in _jobs(engine) if j.owner_pid is not None]  # (one just queued may not be claimed yet)
        assert run_by and set(run_by) == {serve.pid}, run_by

        serve.stop(9)
        killed = len(_firings(engine, added.id))
        leading = beat.wait_for("scheduler leading: ", timeout=60)  # a bound for a loaded machine, not a speed
        assert leading.startswith(f"scheduler leading: driftloop beat (pid {beat.pid} on host "), leading
        if engine.dialect.name == "sqlite":  # the lease says what became of its holder; PostgreSQL's lock went with its connection
            assert f"took over from driftloop serve (pid {serve.pid} on host " in leading and leading.endswith((" is gone", " has exited (a zombie its parent has not collected)")), leading

        # and it fires, one line per firing, and its job goes to the broker: a firing's, or the one serve was
        # submitting as it was killed (committed, never claimed), which beat sends as one the broker missed
        beat.wait_for(f"schedule {added.id} (sync of task {task}, every 2s): ", timeout=60)
        assert len(_firings(engine, added.id)) > killed
        wait(lambda: len(_sent_jobs(engine)) == 1, "the beat sends a job to the broker", timeout=60, log=beat.log)
        wait(lambda: redis.Redis.from_url(broker.url).llen(queue_of("sync")) == 1, "the job in the broker's queue")
        assert beat.stop() == 0 and beat.lines[-1] == "beat: stopped", beat.log()
    finally:
        for process in processes:
            process.kill()
        broker.stop()


def _firings(engine: Engine, schedule_id: int) -> list[schedules.FiringInfo]:
    with session_scope(engine) as session:
        return schedules.show(session, schedule_id, firings=1000).firings


def _jobs(engine: Engine) -> list[Job]:
    with session_scope(engine) as session:
        found = list(session.scalars(select(Job).order_by(Job.id)))
        session.expunge_all()
        return found


def _sent_jobs(engine: Engine) -> list[int]:
    return [j.id for j in _jobs(engine) if j.sent_at is not None]
