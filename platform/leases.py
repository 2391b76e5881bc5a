"""Leases: a role that one process holds at a time, kept in the store (``scheduler``: the one
scheduler of a store, :mod:`driftloop.platform.scheduler`).

On SQLite a lease is a row of ``leases``: who holds it (a token of the holding object, what it
is, its host, pid and the process's creation time) and an expiry that the holder renews at each
tick (:func:`claim`). Another process takes it over once the expiry has passed, or at once when
the holder's process is provably gone from the host that looks (the process table says so: gone,
a zombie, or its pid now another process's), so that a ``kill -9`` of the holder costs the next
one a tick, not the lease's length. Every change is conditional on the row as it was seen: two
processes that both see a lease to take cannot both take it.

On PostgreSQL the scheduler decides with an advisory lock instead (the database drops it with its
holder's connection); the holder records itself in the same row (:func:`record`), so that the
others can say who leads.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import IntegrityError

from driftloop.platform.jobs import Owner, owner_fate
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Lease
from driftloop.platform.store.types import utcnow


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) a lease: a token of its own, what it is, and its process."""

    token: str
    name: str  # "driftloop serve", "driftloop beat"
    owner: Owner
    since: datetime | None = None  # when it took the lease, as the store says

    @classmethod
    def new(cls, name: str) -> "Holder":
        """A new holder in this process: its own token, so that two in one process are two."""
        return cls(uuid.uuid4().hex, name, Owner.this_process())

    def describe(self) -> str:
        since = f", since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        return f"{self.name} ({self.owner.describe()}{since})"


@dataclass(frozen=True)
class Claim:
    """What :func:`claim` found: whether the caller holds the lease, and who does."""

    held: bool
    holder: Holder | None  # the caller when held; None when the store records no holder
    took_over: str | None = None  # the caller has just taken it from another holder: what became of that one


def claim(engine: Engine, name: str, me: Holder, seconds: float, now: datetime | None = None) -> Claim:
    """Renew the lease ``name`` if ``me`` holds it, or take it if it is free, run out, or its
    holder's process is gone from this host; it then lasts ``seconds`` unless renewed."""
    now = now or utcnow()
    expires = now + timedelta(seconds=seconds)
    with session_scope(engine) as session:
        renewed = session.execute(update(Lease).where(Lease.name == name, Lease.holder == me.token).values(renewed_at=now, expires_at=expires))
    if renewed.rowcount == 1:
        return Claim(True, me)
    with session_scope(engine) as session:
        row = session.get(Lease, name)
        if row is not None:
            session.expunge(row)
    if row is None:
        try:
            with session_scope(engine) as session:
                session.add(Lease(name=name, **_holding(me, now, expires)))
        except IntegrityError:  # another one took it first
            return Claim(False, current(engine, name))
        return Claim(True, me)
    seen = _holder(row)
    why = _lost(row, now)
    if why is None:
        return Claim(False, seen)
    with session_scope(engine) as session:
        taken = session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.holder == row.holder, Lease.renewed_at == row.renewed_at)
            .values(**_holding(me, now, expires))
        )
    if taken.rowcount != 1:  # renewed meanwhile, or taken by another one
        return Claim(False, current(engine, name))
    return Claim(True, me, took_over=f"{seen.describe()} {why}")


def record(engine: Engine, name: str, me: Holder) -> None:
    """Name ``me`` as the holder of ``name``, without expiry: for a role that something else
    decides (PostgreSQL's advisory lock), so that the others can say who holds it."""
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(delete(Lease).where(Lease.name == name))
        session.add(Lease(name=name, **_holding(me, now, None)))


def current(engine: Engine, name: str) -> Holder | None:
    """Who holds ``name``, as the store says; None when no one is recorded."""
    with session_scope(engine) as session:
        row = session.get(Lease, name)
        return _holder(row) if row is not None else None


def release(engine: Engine, name: str, me: Holder) -> bool:
    """Give the lease up, if ``me`` holds it: the next one takes it at its next look, without
    waiting for it to run out. True if it was held."""
    with session_scope(engine) as session:
        return session.execute(delete(Lease).where(Lease.name == name, Lease.holder == me.token)).rowcount == 1


def _holding(me: Holder, now: datetime, expires: datetime | None) -> dict[str, object]:
    return {
        "holder": me.token,
        "holder_name": me.name[:100],
        "host": me.owner.host,
        "pid": me.owner.pid,
        "process_started_at": me.owner.started_at,
        "acquired_at": now,
        "renewed_at": now,
        "expires_at": expires,
    }


def _holder(row: Lease) -> Holder:
    return Holder(row.holder, row.holder_name, Owner(row.host, row.pid, row.process_started_at), row.acquired_at)


def _lost(row: Lease, now: datetime) -> str | None:
    """Why the row's holder has lost the lease (what then becomes of it), or None if it still holds it."""
    fate = owner_fate(Owner(row.host, row.pid, row.process_started_at))
    if fate not in ("alive", None):
        return fate  # "is gone", "has exited (a zombie …)": the process table decides, whatever the expiry
    if row.expires_at is not None and row.expires_at <= now:
        return f"has not renewed its lease since {row.renewed_at.isoformat(timespec='seconds')} (it ran out at {row.expires_at.isoformat(timespec='seconds')})"
    return None
