"""Stored schedules and the scheduler, in-process, on SQLite and PostgreSQL: triggers (every, cron,
after N labels, on drift), pause and resume, a missed period fired once, one firing per period
whatever the number of schedulers, coalescing behind a job still queued or running.

Jobs go to a real Redis as the Celery broker that no worker consumes, so a submitted job stays
queued: what a firing did is read from the store (its job, or why it was skipped)."""

import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from driftloop.labeling import register_jobs
from driftloop.platform import jobs, schedules
from driftloop.platform.config import Settings
from driftloop.platform.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.jobs import create_job, queue_of
from driftloop.platform.labels.service import import_labels
from driftloop.platform.scheduler import Scheduler
from driftloop.platform.store import schema
from driftloop.platform.store.engine import make_engine, session_scope
from driftloop.platform.store.models import Job, JobState, ModelStatus, ModelVersion, Schedule, TrainingRun
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import create_task, get_task
from tests.conftest import fresh_postgres_database

BROKER_DB = 11  # this feature's own Redis database (tests/test_beat.py uses it too)
BROKER_URL = f"redis://127.0.0.1:6379/{BROKER_DB}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated store of this test's own: a scheduler fires every due schedule of its store, so
    schedules other tests leave must not be there."""
    with ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else stack.enter_context(fresh_postgres_database())
        engine = make_engine(url)
        stack.callback(engine.dispose)
        schema.upgrade(engine)
        yield engine


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def settings(store: Engine, tmp_path: Path, broker: redis.Redis) -> Settings:
    register_jobs()  # sync is labeling's kind of job: the tests wire it in as the edges do
    return Settings(home=tmp_path / "home", database_url=store.url.render_as_string(hide_password=False), broker_url=BROKER_URL)


@pytest.fixture
def task(store: Engine) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    with session_scope(store) as session:
        create_task(session, name, ["a", "b"])
    return name


def _add(engine: Engine, task: str, action: str = "sync", **trigger) -> schedules.ScheduleInfo:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return schedules.add(session, task, action, **trigger)


def _firings(engine: Engine, schedule_id: int) -> list[schedules.FiringInfo]:
    """Oldest first."""
    with session_scope(engine) as session:
        return list(reversed(schedules.show(session, schedule_id, firings=1000).firings))


def test_an_every_2s_schedule_fires_on_time(store: Engine, settings: Settings, task: str, broker: redis.Redis) -> None:
    added = _add(store, task, every="2s")
    stop = threading.Event()
    thread = threading.Thread(target=Scheduler(store, settings).run, args=(stop, 1.0))
    thread.start()
    time.sleep(6.7)  # three periods
    stop.set()
    thread.join(timeout=30)

    firings = _firings(store, added.id)
    assert len(firings) == 3, firings
    for k, firing in enumerate(firings, start=1):
        late = (firing.fired_at - (added.created_at + timedelta(seconds=2 * k))).total_seconds()
        assert 0 <= late < 1.0, (k, late)
        assert firing.trigger == "every 2s"
    # the first enqueued a job (sent to the broker, where it waits); the next ones saw it queued
    assert firings[0].job is not None and firings[0].skipped is None
    assert broker.llen(queue_of("sync")) == 1
    assert [f.skipped for f in firings[1:]] == [f"job {firings[0].job} (sync) is still queued"] * 2
    with session_scope(store) as session:
        assert session.get(Job, firings[0].job).kind == "sync"


def test_a_period_missed_while_no_scheduler_ran_fires_once_on_return(store: Engine, settings: Settings, task: str) -> None:
    t0 = utcnow()
    with session_scope(store) as session:
        added = schedules.add(session, task, "sync", every="2s", now=t0)
    scheduler = Scheduler(store, settings)
    # back after 11 s: five periods were missed (t0+2 … t0+10)
    assert len(scheduler.tick(t0 + timedelta(seconds=11))) == 1
    assert scheduler.tick(t0 + timedelta(seconds=11.5)) == []
    with session_scope(store) as session:
        # the next one is the first of its grid after the return, not one of the missed ones
        assert schedules.show(session, added.id).next_run_at == t0 + timedelta(seconds=12)
    assert len(scheduler.tick(t0 + timedelta(seconds=12.1))) == 1
    assert len(_firings(store, added.id)) == 2


def test_a_paused_schedule_never_fires_and_fires_again_after_resume(store: Engine, settings: Settings, task: str) -> None:
    t0 = utcnow()
    with session_scope(store) as session:
        added = schedules.add(session, task, "sync", every="2s", now=t0)
        schedules.pause(session, added.id)
    scheduler = Scheduler(store, settings)
    for seconds in (2.1, 4.1, 30):
        assert scheduler.tick(t0 + timedelta(seconds=seconds)) == []
    with session_scope(store) as session:
        with pytest.raises(Conflict, match="paused already"):
            schedules.pause(session, added.id)
        resumed = schedules.resume(session, added.id, now=t0 + timedelta(seconds=31))
    # what fell due while it was paused is not caught up: next on its grid after the resume
    assert resumed.next_run_at == t0 + timedelta(seconds=32)
    assert scheduler.tick(t0 + timedelta(seconds=31.5)) == []
    assert [f.schedule for f in scheduler.tick(t0 + timedelta(seconds=32.1))] == [added.id]


def test_an_unknown_kind_of_job_is_recorded_as_skipped(store: Engine, settings: Settings, task: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # an action whose kind of job this process does not know (drift, until it exists): the firing says so
    monkeypatch.delitem(jobs.OPERATIONS, "drift", raising=False)
    t0 = utcnow()
    with session_scope(store) as session:
        added = schedules.add(session, task, "drift", every="1m", now=t0, params={"window": "7d", "threshold": 0.2})
    [firing] = Scheduler(store, settings).tick(t0 + timedelta(minutes=1))
    assert firing.job is None and firing.skipped.startswith("unknown job kind 'drift'")
    assert _firings(store, added.id) == [firing]


def test_cron_fires_at_its_times(store: Engine, settings: Settings, task: str) -> None:
    t0 = datetime.fromisoformat("2026-12-08T02:59:30+00:00")
    with session_scope(store) as session:
        added = schedules.add(session, task, "sync", cron="0 3 * * *", now=t0)
    assert added.next_run_at == datetime.fromisoformat("2026-12-08T03:00:00+00:00")
    scheduler = Scheduler(store, settings)
    assert scheduler.tick(t0 + timedelta(seconds=29)) == []
    assert [f.trigger for f in scheduler.tick(t0 + timedelta(seconds=31))] == ["cron 0 3 * * *"]
    with session_scope(store) as session:
        assert schedules.show(session, added.id).next_run_at == datetime.fromisoformat("2026-12-09T03:00:00+00:00")


def _label(engine: Engine, task: str, ids: list[str]) -> None:
    records = enumerate({"id": i, "text": f"text number {i}"} for i in ids)
    list(ingest(engine, task, records, max_text_chars=1000, batch_size=100))
    answers = enumerate({"id": i, "label": "a" if int(i) % 2 else "b"} for i in ids)
    list(import_labels(engine, task, answers, gold=False, default_annotator="sim", eval_fraction=0.0))


def test_after_labels_fires_after_n_new_train_labels_and_not_before(store: Engine, settings: Settings, task: str) -> None:
    # labels the champion learned from (before its data cutoff) are not new
    _label(store, task, ["1", "2", "3"])
    time.sleep(0.01)
    with session_scope(store) as session:
        task_id = get_task(session, task).id
        run = TrainingRun(task_id=task_id, mode="head", replay="none", params={"data_until": utcnow().isoformat()}, state=JobState.succeeded)
        session.add(run)
        session.flush()
        session.add(
            ModelVersion(
                task_id=task_id, version=1, training_run_id=run.id, mode="head", artifact_uri="file:///m", sha256="0" * 64,
                label_set=["a", "b"], metrics={}, status=ModelStatus.champion,
            )
        )
        added = schedules.add(session, task, "sync", after_labels=5)
    scheduler = Scheduler(store, settings)

    _label(store, task, ["4", "5", "6", "7"])
    assert scheduler.tick() == []  # 4 new labels
    _label(store, task, ["8"])
    [firing] = scheduler.tick()
    assert (firing.schedule, firing.trigger, firing.skipped) == (added.id, "after 5 labels: 5 new", None)
    assert firing.job is not None
    # counted again from the firing on
    assert scheduler.tick() == []
    _label(store, task, ["9", "10", "11", "12"])
    assert scheduler.tick() == []
    _label(store, task, ["13", "14"])
    [again] = scheduler.tick()
    # the sync job of the first firing waits in the broker: coalesced
    assert (again.trigger, again.job, again.skipped) == ("after 5 labels: 6 new", None, f"job {firing.job} (sync) is still queued")


def test_a_firing_submits_the_job_its_action_names_with_the_params_other_callers_give_it(store: Engine, settings: Settings, task: str) -> None:
    from dataclasses import asdict

    from driftloop.platform.modeling.round_requests import (
        RoundRequest,
        TrainingConfig,
        request_from_params,
        request_params,
    )
    from driftloop.platform.selection.rounds import SelectionRequest

    _label(store, task, ["1", "2"])  # a training with nothing to learn is not queued (see below)
    t0 = utcnow()
    with session_scope(store) as session:
        schedules.add(session, task, "train", every="1m", now=t0, params={"mode": "lora", "epochs": 3, "distill": 0.5, "seed": 7, "promote": False})
        schedules.add(session, task, "select", every="1m", now=t0, params={"budget": 5, "strategy": "margin", "window_days": 2})
        schedules.add(session, task, "sync", every="1m", now=t0)
    fired = Scheduler(store, settings).tick(t0 + timedelta(minutes=1))
    assert [(f.action, f.skipped) for f in fired] == [("train", None), ("select", None), ("sync", None)]
    with session_scope(store) as session:
        train, select_, sync = (session.get(Job, f.job) for f in fired)
        assert (train.kind, train.state, select_.kind, sync.kind) == ("train", JobState.queued, "select", "sync")
        expected = RoundRequest(
            task=task,
            mode="lora",
            replay="reservoir",
            replay_ratio=settings.replay_ratio,
            replay_capacity=settings.replay_capacity,
            training=TrainingConfig(epochs=3, distill_weight=0.5, seed=7),
            promote=False,
        )
        assert train.params == request_params(expected) and request_from_params(train.params) == expected
        assert select_.params == asdict(SelectionRequest(task=task, budget=5, strategy="margin", window_days=2.0))
        assert sync.params == {"task": task}


def test_a_train_firing_with_nothing_to_learn_is_skipped_with_the_reason_and_queues_nothing(store: Engine, settings: Settings, task: str) -> None:
    t0 = utcnow()
    with session_scope(store) as session:
        schedules.add(session, task, "train", every="1m", now=t0)
    [firing] = Scheduler(store, settings).tick(t0 + timedelta(minutes=1))
    assert firing.job is None and "has no training labels yet" in (firing.skipped or "")
    with session_scope(store, read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_a_firing_is_skipped_while_a_job_of_its_kind_is_queued_or_running(store: Engine, settings: Settings, task: str) -> None:
    t0 = utcnow()
    with session_scope(store) as session:
        added = schedules.add(session, task, "sync", every="1m", now=t0)
        other = create_job(session, "select", get_task(session, task).id, {})  # another kind does not count
        job = create_job(session, "sync", get_task(session, task).id, {}, start=True)  # running, owned by this process
        job_id, other_id = job.id, other.id
    scheduler = Scheduler(store, settings)
    [skipped] = scheduler.tick(t0 + timedelta(minutes=1))
    assert (skipped.job, skipped.skipped) == (None, f"job {job_id} (sync) is still running")
    assert other_id != job_id

    with session_scope(store) as session:
        session.get(Job, job_id).state = JobState.succeeded
    [fired] = scheduler.tick(t0 + timedelta(minutes=2))
    assert fired.skipped is None and fired.job is not None
    [queued] = scheduler.tick(t0 + timedelta(minutes=3))
    assert queued.skipped == f"job {fired.job} (sync) is still queued"
    assert [f.job for f in _firings(store, added.id)] == [None, fired.job, None]


def test_a_tick_sends_the_jobs_the_broker_missed(store: Engine, settings: Settings, task: str, broker: redis.Redis) -> None:
    with session_scope(store) as session:
        missed = create_job(session, "sync", get_task(session, task).id, {"task": task})  # queued while the broker was down
        missed.created_at = utcnow() - timedelta(minutes=1)
        missed_id = missed.id
    assert Scheduler(store, settings).tick() == []
    assert broker.llen(queue_of("sync")) == 1
    with session_scope(store) as session:
        assert session.get(Job, missed_id).sent_at is not None


def test_many_schedulers_at_once_fire_each_period_once(store: Engine, settings: Settings, task: str) -> None:
    """The compare-and-set alone (what SQLite relies on): eight firings of one due period at once."""
    t0 = utcnow()
    with session_scope(store) as session:
        added = schedules.add(session, task, "sync", every="2s", now=t0)
    barrier = threading.Barrier(8)
    results: list[object] = []

    def fire() -> None:
        barrier.wait()
        results.append(schedules.fire(store, settings, added.id, t0 + timedelta(seconds=2.5)))

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([r for r in results if r is not None]) == 1
    assert len(_firings(store, added.id)) == 1


def test_one_scheduler_leads_per_store_another_names_it_and_takes_over_when_it_stops(settings: Settings, store: Engine, task: str) -> None:
    # PostgreSQL: an advisory lock; SQLite: a lease row. Both name the leader in the store.
    t0 = utcnow()
    with session_scope(store) as session:
        schedules.add(session, task, "sync", every="2s", now=t0)
    roles: dict[str, list[str]] = {"first": [], "second": []}
    first = Scheduler(store, settings, name="driftloop serve", on_role=roles["first"].append)
    second = Scheduler(store, settings, name="driftloop beat", on_role=roles["second"].append)
    me = f"pid {os.getpid()} on host {socket.gethostname()}"
    assert len(first.tick(t0 + timedelta(seconds=2.1))) == 1
    assert roles["first"] == [f"scheduler leading: driftloop serve ({me}) fires the due schedules"]
    assert second.tick(t0 + timedelta(seconds=4.1)) == [] and not second.leading
    [standing] = roles["second"]
    assert re.fullmatch(rf"scheduler standing by: driftloop serve \({me}, since \S+\) leads; this one takes over when it stops", standing), standing
    assert first.tick(t0 + timedelta(seconds=4.1)) != [] and first.leading  # the leader goes on: the lease is renewed
    first.close()
    assert len(second.tick(t0 + timedelta(seconds=6.1))) == 1 and second.leading
    assert roles["second"][-1] == f"scheduler leading: driftloop beat ({me}) fires the due schedules"
    second.close()


def test_on_drift_fires_the_tasks_drift_schedules_only_when_called(store: Engine, settings: Settings, task: str) -> None:
    _label(store, task, ["1", "2"])  # something to learn: a training with nothing new is skipped
    with session_scope(store) as session:
        added = schedules.add(session, task, "train", on_drift=True, params={"mode": "head"})
        paused = schedules.add(session, task, "sync", on_drift=True)
        schedules.pause(session, paused.id)
    assert Scheduler(store, settings).tick(utcnow() + timedelta(days=365)) == []  # no clock fires it
    [firing] = schedules.on_drift(store, settings, task, detail="psi 0.31 on embeddings")
    assert (firing.schedule, firing.trigger) == (added.id, "on drift: psi 0.31 on embeddings")
    assert firing.skipped is None and firing.job is not None
    assert _firings(store, paused.id) == []
    with pytest.raises(NotFound):
        schedules.on_drift(store, settings, "no-such-task")


@pytest.mark.parametrize(
    ("action", "trigger", "params", "field", "message"),
    [
        ("sync", {}, {}, "trigger", "exactly one trigger"),
        ("sync", {"every": "1h", "cron": "0 3 * * *"}, {}, "trigger", "got every and cron"),
        ("sync", {"every": "1h", "on_drift": True}, {}, "trigger", "got every and on_drift"),
        ("sync", {"every": "90"}, {}, "every", "not a duration"),
        ("sync", {"every": "0s"}, {}, "every", "from 1s"),
        ("sync", {"every": "400d"}, {}, "every", "from 1s to 366d"),
        ("sync", {"cron": "0 25 * * *"}, {}, "cron", "not a valid cron expression"),
        ("sync", {"cron": "every day"}, {}, "cron", "not a valid cron expression"),
        ("sync", {"after_labels": 0}, {}, "after_labels", "from 1"),
        ("deploy", {"every": "1h"}, {}, "action", "unknown action"),
        ("select", {"every": "1h"}, {}, "params.budget", "select needs the param budget"),
        ("select", {"every": "1h"}, {"budget": 0}, "params.budget", "from 1 to 100000"),
        ("select", {"every": "1h"}, {"budget": "ten"}, "params.budget", "must be an integer"),
        ("select", {"every": "1h"}, {"budget": 5, "strategy": "best"}, "params.strategy", "one of random"),
        ("train", {"every": "1h"}, {"mode": "huge"}, "params.mode", "one of head, full, lora"),
        ("train", {"every": "1h"}, {"learning_rate": 1}, "params.learning_rate", "train takes no param 'learning_rate'"),
        ("train", {"every": "1h"}, {"promote": "yes"}, "params.promote", "true or false"),
        ("sync", {"every": "1h"}, {"budget": 5}, "params.budget", "its params: none"),
        ("loop", {"every": "1h"}, {"budget": 0}, "params.budget", "from 1 to 100000"),
        ("loop", {"every": "1h"}, {"note": "x"}, "params.note", "loop takes no param 'note'"),
        ("drift", {"every": "1h"}, {"note": "a\x00b"}, "params.note", "NUL"),
        ("drift", {"every": "1h"}, {"note": [1]}, "params.note", "must be text, a number, true or false"),
    ],
)
def test_add_refuses_what_could_not_fire_saying_what_and_where(
    engine: Engine, task_name: str, action: str, trigger: dict, params: dict, field: str, message: str  # type: ignore[type-arg]
) -> None:
    with pytest.raises(InvalidInput, match=message) as raised, session_scope(engine) as session:
        schedules.add(session, task_name, action, params=params, **trigger)
    assert raised.value.detail["field"] == field
    with session_scope(engine) as session:
        assert schedules.list_schedules(session, task_name) == []


def test_add_list_show_pause_resume_remove(engine: Engine, task_name: str) -> None:
    with session_scope(engine) as session:
        train = schedules.add(session, task_name, "train", every="6h", params={"mode": "head", "epochs": 3, "distill": 1, "promote": False})
        select_ = schedules.add(session, task_name, "select", cron=" 0 3 * * * ", params={"budget": 50, "strategy": "margin"})
        schedules.add(session, task_name, "sync", after_labels=200)
        loop = schedules.add(session, task_name, "loop", every="10m", params={"budget": 20, "retrain_after": 100, "strategy": "hybrid"})
    assert loop.params == {"budget": 20, "retrain_after": 100, "strategy": "hybrid"}
    assert train.trigger == "every 6h" and train.every_seconds == 6 * 3600
    assert train.params == {"mode": "head", "epochs": 3, "distill": 1.0, "promote": False}
    assert (select_.trigger, select_.cron) == ("cron 0 3 * * *", "0 3 * * *")
    with session_scope(engine) as session:
        listed = schedules.list_schedules(session, task_name)
        assert [s.trigger for s in listed] == ["every 6h", "cron 0 3 * * *", "after 200 labels", "every 10m"]
        with pytest.raises(AlreadyExists):
            schedules.add(session, task_name, "sync", after_labels=200)
        assert schedules.pause(session, train.id, task_name).paused
        assert schedules.show(session, train.id).paused and schedules.show(session, train.id).firings == []
        with pytest.raises(Conflict):
            schedules.resume(session, select_.id)
        assert not schedules.resume(session, train.id).paused
        schedules.remove(session, train.id, task_name)
        with pytest.raises(NotFound):
            schedules.show(session, train.id)
        with pytest.raises(NotFound):  # another task's schedule is not found under this one
            schedules.show(session, select_.id, "other-task")


def test_the_store_holds_exactly_one_trigger(engine: Engine, task_name: str) -> None:
    with session_scope(engine) as session:
        task_id = get_task(session, task_name).id
    row = {"task_id": task_id, "action": "sync", "params": {}, "paused": False, "on_drift": False, "created_at": utcnow()}
    for bad in ({"every_seconds": 60, "after_labels": 5}, {}, {"cron": "* * * * *", "on_drift": True}, {"every_seconds": 0}):
        with pytest.raises(IntegrityError), session_scope(engine) as session:
            session.execute(insert(Schedule).values({**row, **bad}))
    with session_scope(engine) as session:
        session.execute(insert(Schedule).values({**row, "every_seconds": 60}))
        assert session.scalar(select(Schedule.id).where(Schedule.task_id == task_id)) is not None


def test_strategy_names_are_the_strategies() -> None:
    from driftloop.platform.selection.choices import STRATEGY_NAMES
    from driftloop.platform.selection.strategies import STRATEGIES

    assert sorted(STRATEGY_NAMES) == sorted(STRATEGIES)
