"""`driftloop beat` as real processes on one PostgreSQL store, with a real Redis as the broker that
no worker consumes: two beats give one firing per period, the one standing by takes over when the
leader is killed with kill -9, and periods missed while no beat ran fire once when one returns."""

import math
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import redis
from sqlalchemy import Engine

from driftloop.platform import schedules
from driftloop.platform.jobs import queue_of
from driftloop.platform.store import schema
from driftloop.platform.store.engine import make_engine, session_scope
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import create_task
from tests.conftest import DRIFTLOOP, fresh_postgres_database
from tests.test_schedules import BROKER_URL

PERIOD = 2.0


class Beat:
    """A `driftloop beat` process and the lines it wrote, as they came."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [DRIFTLOOP, "beat", "--interval", "0.5"], env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            lines.append(line.rstrip("\n"))

    def said(self, text: str) -> bool:
        return any(text in line for line in self.err)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        for reader in self._readers:
            reader.join(timeout=5)
        return code


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.1)


@contextmanager
def _store() -> Iterator[Engine]:
    with fresh_postgres_database() as url:
        engine = make_engine(url)
        try:
            schema.upgrade(engine)
            yield engine
        finally:
            engine.dispose()


def _firings(engine: Engine, schedule_id: int) -> list[schedules.FiringInfo]:
    with session_scope(engine) as session:
        return list(reversed(schedules.show(session, schedule_id, firings=1000).firings))


def test_two_beats_fire_once_per_period_a_killed_leader_is_replaced_and_a_missed_period_fires_once(tmp_path: Path) -> None:
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    beats: list[Beat] = []
    try:
        with _store() as engine:
            task = f"b-{uuid.uuid4().hex[:8]}"
            with session_scope(engine) as session:
                create_task(session, task, ["a", "b"])
                added = schedules.add(session, task, "sync", every=f"{PERIOD:g}s", now=utcnow() + timedelta(seconds=3))
            env = {
                "DRIFTLOOP_HOME": str(tmp_path / "home"),
                "DRIFTLOOP_DATABASE_URL": engine.url.render_as_string(hide_password=False),
                "DRIFTLOOP_BROKER_URL": BROKER_URL,
            }
            first = Beat(env)
            beats.append(first)
            _wait(lambda: first.said("scheduler leading"), "the first beat leads")
            second = Beat(env)
            beats.append(second)
            _wait(lambda: second.said("scheduler standing by"), "the second beat stands by")
            _wait(lambda: len(_firings(engine, added.id)) >= 3, "three firings")

            first.stop(signal.SIGKILL)
            killed = len(_firings(engine, added.id))
            _wait(lambda: second.said("scheduler leading"), "the second beat takes over", timeout=10)
            _wait(lambda: len(_firings(engine, added.id)) >= killed + 3, "three firings by the second beat")
            assert second.stop() == 0
            assert second.err[-1] == "beat: stopped"
            stopped = utcnow()
            before_downtime = _firings(engine, added.id)

            time.sleep(3.2 * PERIOD)  # no beat runs: three periods are missed
            third = Beat(env)
            beats.append(third)
            _wait(lambda: len(_firings(engine, added.id)) > len(before_downtime), "a firing once a beat is back")
            back = utcnow()
            time.sleep(1.2 * PERIOD)  # and the next one on its time
            assert third.stop() == 0
            firings = _firings(engine, added.id)

        # one firing per period: no two firings in one period, none missed while a beat ran
        periods = [math.floor((f.fired_at - added.created_at).total_seconds() / PERIOD) for f in firings]
        assert len(periods) == len(set(periods)), periods
        running = periods[: len(before_downtime)]
        assert running == list(range(running[0], running[0] + len(running))), running
        for firing in before_downtime:
            due = added.created_at + timedelta(seconds=PERIOD * math.floor((firing.fired_at - added.created_at).total_seconds() / PERIOD))
            assert (firing.fired_at - due).total_seconds() < 1.0, firing  # on time, the takeover included

        # the downtime: the missed periods fired once, when the third beat came back; then on time again
        after = firings[len(before_downtime) :]
        assert after[0].fired_at <= back and all(f.fired_at > stopped for f in after)
        assert periods[len(before_downtime)] >= running[-1] + 3, periods  # nothing fired while no beat ran
        resumed = periods[len(before_downtime) :]
        assert resumed == list(range(resumed[0], resumed[0] + len(resumed))), periods

        # each beat printed the firings it made; the killed leader's lines stop where it died
        assert len(first.out) + len(second.out) + len(third.out) == len(firings)
        assert len(first.out) >= 3 and len(second.out) >= 3
        assert all(f"schedule {added.id} (sync of task {task}, every 2s): " in line for line in first.out + second.out + third.out)
        # one job was sent to the broker; nobody consumes it, so every later firing saw it queued
        assert broker.llen(queue_of("sync")) == 1
        job = firings[0].job
        assert job is not None and all(f.skipped == f"job {job} (sync) is still queued" for f in firings[1:])
    finally:
        for beat in beats:
            if beat.process.poll() is None:
                beat.process.kill()
                beat.process.wait(timeout=30)
        broker.flushdb()
