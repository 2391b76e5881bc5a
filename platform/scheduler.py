"""The scheduler: a loop that fires the stored schedules that are due (:mod:`driftloop.platform.schedules`
says what a schedule is, why this is our own scheduler rather than celery beat, and how a period
fires exactly once).

It runs as ``driftloop beat`` (its own process; with a broker its jobs go to Celery, without one
each runs in a detached ``driftloop jobs run``), or embedded in ``driftloop serve`` when no broker
is configured (a thread of the API process, whose own runner runs the jobs: no Redis needed).

Leadership: one scheduler acts per store, whatever process runs it (``serve``, ``beat``) and
whatever broker each has; the others stand by, say who leads, and one takes over when it stops or
dies. The lock lives in the store. On PostgreSQL it is a session advisory lock, taken with
``pg_try_advisory_lock`` on a connection of its own: the database releases it when its connection
ends, a ``kill -9`` of the holder included. On SQLite it is a lease row
(:mod:`driftloop.platform.leases`) renewed at each tick and taken over once it runs out
(``DRIFTLOOP_SCHEDULER_LEASE_SECONDS``), or at the next tick when its holder's process is gone.
Either way the leader is named in that row, which the others read to say who leads. The
compare-and-set of each firing keeps firings exactly-once even when two act for an instant (a
leader paused past its lease, a network split); the lock keeps the others quiet.
"""

import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from driftloop.platform import jobs, leases, schedules
from driftloop.platform.config import Settings
from driftloop.platform.schedules import FiringInfo
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.types import utcnow

log = logging.getLogger(__name__)

# The advisory lock's key: one per database (PostgreSQL scopes advisory locks to a database).
LOCK_KEY = int.from_bytes(hashlib.sha256(b"driftloop.scheduler").digest()[:8], "big", signed=True)
# The lease (SQLite) or record (PostgreSQL) of the store's one scheduler.
LEASE = "scheduler"


class Scheduler:
    """Fires due schedules, one tick at a time (:meth:`tick`), or in a loop (:meth:`run`).

    ``runner`` is where jobs run when no broker is configured (see
    :func:`driftloop.platform.jobs.submit`); ``name`` says what runs it ("driftloop beat") to the
    others; ``on_firing`` hears of each firing, ``on_role`` of each change of leadership (a line for
    people: "leading", "standing by" and who leads)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        runner: str = "thread",
        name: str = "a driftloop scheduler",
        on_firing: Callable[[FiringInfo], None] | None = None,
        on_role: Callable[[str], None] | None = None,
    ) -> None:
        self.engine, self.settings, self.runner = engine, settings, runner
        self.holder = leases.Holder.new(name)
        self._on_firing = on_firing or (lambda firing: None)
        self._on_role = on_role or log.info
        self._lock: Connection | None = None  # PostgreSQL: the connection that holds the lock, or tries to
        self._role: str | None = None
        self._leader: str | None = None  # the token of the leader last named, while standing by

    @property
    def leading(self) -> bool:
        return self._role == "leading"

    def tick(self, now: datetime | None = None) -> list[FiringInfo]:
        """Fire what is due at ``now`` (default: the clock), if this scheduler leads; the firings."""
        if not self._lead():
            return []
        now = now or utcnow()
        if self.settings.broker_url:
            self._send_unsent()
        with session_scope(self.engine) as session:
            due = schedules.due(session, now)
        fired = []
        for schedule_id in due:
            try:
                firing = schedules.fire(self.engine, self.settings, schedule_id, now, runner=self.runner)
            except Exception:  # one schedule's trouble must not stop the others
                log.exception("schedule %s could not fire", schedule_id)
                continue
            if firing is not None:
                fired.append(firing)
                self._on_firing(firing)
        return fired

    def _send_unsent(self) -> None:
        """Send the jobs the broker missed while it was down (firings' and others'), as the workers do."""
        try:
            sent = jobs.send_unsent(self.engine, self.settings)
        except Exception:  # the store or the broker does not answer: the next tick tries again
            log.exception("scheduler: the jobs the broker missed could not be sent")
            return
        if sent:
            log.info("sent %d jobs the broker had missed: %s", len(sent), ", ".join(map(str, sent)))

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Tick until ``stop`` is set: every ``interval`` seconds, sooner when a time trigger falls
        due before that, so that a firing comes on time. Edits to schedules are seen at the next tick.
        A tick renews the lease, so they come at least three times per lease."""
        interval = min(interval, self.settings.scheduler_lease_seconds / 3)
        try:
            while not stop.is_set():
                try:
                    self.tick()
                    wait = self._until_next(interval)
                except Exception:  # the store did not answer: the next tick tries again
                    log.exception("scheduler tick failed")
                    wait = interval
                stop.wait(wait)
        finally:
            self.close()

    def close(self) -> None:
        """Let go of the lock, if held (another scheduler takes over at its next tick)."""
        if self.leading:
            try:
                leases.release(self.engine, LEASE, self.holder)
            except Exception:  # the store does not answer: the lease runs out, or the lock goes with its connection
                log.exception("scheduler: its lease could not be released")
        if self._lock is not None:
            try:
                self._lock.close()  # ends the session, which releases its advisory lock
            except Exception:
                pass
            self._lock = None
        self._role = None

    def _until_next(self, interval: float) -> float:
        if not self.leading:
            return interval
        with session_scope(self.engine) as session:
            soonest = schedules.next_due_at(session)
        if soonest is None:
            return interval
        seconds = (soonest - utcnow()).total_seconds()
        if seconds > 0:
            return min(interval, seconds)
        # it fell due since the tick looked: look again at once; one that stays overdue (it could
        # not fire) is retried at the usual pace rather than in a busy loop
        return 0.05 if seconds > -interval else interval

    def _lead(self) -> bool:
        """True when this scheduler may act: while it holds the store's lock (see the module's docstring)."""
        if self.engine.dialect.name != "postgresql":
            try:
                claim = leases.claim(self.engine, LEASE, self.holder, self.settings.scheduler_lease_seconds)
            except Exception:  # the store does not answer: nothing can fire; the next tick tries again
                log.exception("scheduler: the store does not answer")
                return False
            self._become(claim.held, claim.holder, claim.took_over)
            return claim.held
        try:
            if self._lock is None:
                self._lock = _lock_engine(self.engine).connect()
            if self.leading:
                self._lock.exec_driver_sql("SELECT 1")  # the session, and so the lock, is still there
                return True
            held = bool(self._lock.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar())
            if held:
                leases.record(self.engine, LEASE, self.holder)
            leader = self.holder if held else leases.current(self.engine, LEASE)
        except Exception:  # the connection is gone, and the lock with it: a new one tries again next tick
            log.exception("scheduler: the store does not answer")
            self.close()
            return False
        self._become(held, leader, None)
        return held

    def _become(self, held: bool, leader: leases.Holder | None, took_over: str | None) -> None:
        """Say so when this scheduler starts leading, or standing by, or another one leads now."""
        role = "leading" if held else "standing by"
        token = leader.token if leader is not None else None
        if role == self._role and (held or token == self._leader):
            return
        self._role, self._leader = role, token
        if held:
            line = f"scheduler leading: {self.holder.describe()} fires the due schedules"
            if took_over:
                line += f"; it took over from {took_over}"
        else:
            who = leader.describe() if leader is not None else "another scheduler (not named in the store yet)"
            line = f"scheduler standing by: {who} leads; this one takes over when it stops"
        self._on_role(line)


_LOCK_ENGINES: dict[str, Engine] = {}
_LOCK_ENGINES_LOCK = threading.Lock()


def _lock_engine(engine: Engine) -> Engine:
    """Connections of their own for the lock: never pooled (a pooled connection would keep the lock
    after it is given back), in autocommit (never idle inside a transaction)."""
    url = engine.url.render_as_string(hide_password=False)
    with _LOCK_ENGINES_LOCK:
        if url not in _LOCK_ENGINES:
            _LOCK_ENGINES[url] = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        return _LOCK_ENGINES[url]


class Background:
    """A scheduler in a daemon thread of this process (``driftloop serve`` without a broker):
    :meth:`start`, and :meth:`stop`, which waits for its tick to end. ``say`` hears a line for each
    firing and each change of leadership (the server's log)."""

    def __init__(self, engine: Engine, settings: Settings, *, say: Callable[[str], None] = log.info, interval: float = 1.0) -> None:
        self.say = say
        self.scheduler = Scheduler(
            engine, settings, runner="thread", name="driftloop serve", on_firing=lambda firing: say(describe(firing)), on_role=say
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.scheduler.run, args=(self._stop, interval), name="driftloop-scheduler", daemon=True)

    def start(self) -> None:
        self.say("schedules fire in this process and their jobs run here (no broker configured)")
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def describe(firing: FiringInfo) -> str:
    """One line for a firing: when, which schedule, and its job or why none."""
    outcome = f"job {firing.job}" if firing.job is not None else f"skipped: {firing.skipped or 'no job recorded'}"
    return (
        f"{firing.fired_at.isoformat(timespec='seconds')} schedule {firing.schedule} ({firing.action} of task {firing.task}, "
        f"{firing.trigger}): {outcome}"
    )
