"""The store's leases (the SQLite scheduler's lock), on both backends: one holder at a time, renewed
by it, taken over once run out or at once when the holder's process is gone, given up on release."""

import re
import socket
import subprocess
import sys
import uuid
from datetime import timedelta

import psutil
from sqlalchemy import Engine

from driftloop.platform import leases
from driftloop.platform.jobs import Owner
from driftloop.platform.store.types import utcnow


def _name() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"  # the store is shared by the tests of a run


def test_one_holder_at_a_time_renewed_by_it_and_taken_over_once_it_runs_out(engine: Engine) -> None:
    name, first, second = _name(), leases.Holder.new("driftloop serve"), leases.Holder.new("driftloop beat")
    t0 = utcnow()
    assert leases.claim(engine, name, first, 10, now=t0) == leases.Claim(True, first)
    refused = leases.claim(engine, name, second, 10, now=t0 + timedelta(seconds=1))
    assert (refused.held, refused.holder.token, refused.holder.name, refused.took_over) == (False, first.token, "driftloop serve", None)
    assert refused.holder.owner == first.owner  # this process, alive: only the expiry can end its lease
    assert leases.claim(engine, name, first, 10, now=t0 + timedelta(seconds=8)).held  # renewed until t0 + 18 s
    assert not leases.claim(engine, name, second, 10, now=t0 + timedelta(seconds=17)).held

    taken = leases.claim(engine, name, second, 10, now=t0 + timedelta(seconds=19))
    assert (taken.held, taken.holder) == (True, second)
    assert taken.took_over.startswith(f"driftloop serve ({first.owner.describe()}, since ") and " has not renewed its lease since " in taken.took_over
    lost = leases.claim(engine, name, first, 10, now=t0 + timedelta(seconds=20))
    assert (lost.held, lost.holder.token) == (False, second.token)
    assert leases.current(engine, name).token == second.token


def test_a_lease_whose_holder_process_is_gone_is_taken_over_at_once(engine: Engine) -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = psutil.Process(process.pid).create_time()
    process.kill()
    process.wait()
    host = socket.gethostname()
    dead = leases.Holder(uuid.uuid4().hex, "driftloop serve", Owner(host, process.pid, started))
    name, successor = _name(), leases.Holder.new("driftloop beat")
    assert leases.claim(engine, name, dead, 3600).held  # its lease would last an hour

    taken = leases.claim(engine, name, successor, 3600)
    assert (taken.held, taken.holder) == (True, successor)
    assert re.fullmatch(rf"driftloop serve \(pid {process.pid} on host {re.escape(host)}, since \S+\) is gone", taken.took_over), taken.took_over


def test_a_released_lease_is_taken_at_the_next_look_and_only_its_holder_releases_it(engine: Engine) -> None:
    name, first, second = _name(), leases.Holder.new("driftloop serve"), leases.Holder.new("driftloop beat")
    assert leases.claim(engine, name, first, 3600).held
    assert not leases.release(engine, name, second)  # not its lease: nothing changes
    assert not leases.claim(engine, name, second, 3600).held
    assert leases.release(engine, name, first) and leases.current(engine, name) is None
    assert leases.claim(engine, name, second, 3600) == leases.Claim(True, second)
