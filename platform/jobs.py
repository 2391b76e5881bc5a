"""Jobs: long work as ops see it, with state, progress (0..1) and a message, error and timings.

Progress is written in its own short transaction, so it is visible while the work itself is
still inside a longer one, and at most every ``_MIN_INTERVAL`` seconds, so reporting never
slows the work down.

A job records the process that runs it (its owner: host, pid and the process's creation time)
and that process writes a heartbeat while it works (:func:`running`). A process can die without
a word (``kill -9``, the out-of-memory killer, a lost machine), so a job that says ``running``
is believed only while its owner lives: whoever looks next (:func:`get_job`, :func:`list_jobs`,
:func:`reap_lost_jobs`, a new training) marks a *lost* job failed, with an error that starts
with ``lost:`` and says what happened, and fails its training run with it. A job is lost when

- its owner is on this host and that process is gone, a zombie, or another process now holds
  its pid (its creation time differs): the process table is the truth, whatever the heartbeat;
- its owner is on another host (or cannot be checked here) and its heartbeat is older than
  ``DRIFTLOOP_JOB_LOST_AFTER_SECONDS``;
- it has no owner (started before owners were recorded) and has shown no sign of life for as
  long.

Every change of a job's state is conditional on the state it was seen in, so a reaper and a
job that finishes at the same moment cannot both win: a job that was declared lost cannot
succeed afterwards (:func:`complete_job` raises :class:`JobLost`). Only its owner reports a
job's progress, beats for it, completes it or fails it while it runs.

A process that stops cleanly (SIGTERM to ``driftloop serve`` or ``driftloop worker``) is never
the cause of a lost job: it lets its running job finish within ``DRIFTLOOP_STOP_GRACE_SECONDS``,
or hands it back (:func:`hand_back`: queued again, owned by nobody, its attempts counted, a
training's checkpoint kept; :func:`finish_or_hand_back`, :func:`stop_runner`), and says which.
The work of a job handed back stops at its next progress report or at its commit
(:class:`HandedBack`) and commits nothing. The next runner runs it: a worker (the task goes back
to the broker, and :func:`send_unsent` sends the job again if that task is lost), or the next
``serve`` without a broker (:func:`run_orphans`, as it starts), or ``driftloop jobs run ID``.

Dispatch (:func:`submit`): a caller that should not wait (an API request, ``--no-wait``) creates
the job row and hands its id to a runner: Celery, by the operation's task name, when
``DRIFTLOOP_BROKER_URL`` is set (the platform never imports ``driftloop.workers``); otherwise a
small thread pool of this process (a server) or a detached process (a CLI about to exit). A
queued job is owned from the start by the process that will run it, so one whose process died
before it began is lost, not queued forever. What a kind of job runs is :data:`OPERATIONS`: an
import path, so that submitting imports nothing heavy; edges add their own kinds with
:func:`register_operations`. An operation takes a queued job's id,
starts it, and completes it in the transaction that commits its results.
"""

import importlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import Engine, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from driftloop.platform.config import Settings
from driftloop.platform.errors import Busy, DriftloopError, InvalidInput, JobEnded, NotFound
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, JobState, Task, TrainingRun
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task

_MIN_INTERVAL = 0.5
# psutil derives a creation time from the boot time, which the kernel may report a little
# differently from one read to the next; a pid reused within a second is not a real risk.
_CREATION_TOLERANCE = 1.0
# States in which a job may have a process working on it.
_LIVE = (JobState.queued, JobState.running)

# kind -> "module:function(engine, settings, job_id)"; the Celery task of a kind is "driftloop.<kind>".
OPERATIONS: dict[str, str] = {
    "train": "driftloop.platform.modeling.rounds:run_train_job",
    "select": "driftloop.platform.selection.rounds:run_select_job",
    "rebuild": "driftloop.platform.selection.task_index:run_rebuild_job",
    "score": "driftloop.platform.selection.pool:run_score_job",
}
CELERY_TASK_PREFIX = "driftloop."
DEFAULT_QUEUE, TRAIN_QUEUE = "default", "train"
TRAIN_KINDS = frozenset({"train"})


def register_operations(operations: dict[str, str]) -> None:
    """Add kinds of job whose code the core must not import (labeling's ``sync``): the edges that
    wire labeling in (CLI, API, workers) call this as they start."""
    OPERATIONS.update(operations)

log = logging.getLogger(__name__)


class JobLost(DriftloopError):
    """The job was declared lost (its owner seemed dead) while it was still working."""

    code = "job_lost"


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started_at: float | None

    @classmethod
    def this_process(cls) -> "Owner":
        return cls(socket.gethostname(), os.getpid(), psutil.Process().create_time())

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}"


def owner_fate(owner: Owner) -> str | None:
    """What became of ``owner``'s process: "alive", how it ended ("is gone", "has exited (a zombie
    …)", "is gone: pid … now belongs to another process"), or None when it cannot be told from here
    (a process of another host, or of another user)."""
    if owner.host != socket.gethostname():
        return None
    return _local_fate(owner.pid, owner.started_at)


def _owned_by(owner: Owner) -> tuple[Any, ...]:
    """The conditions "the row's owner is ``owner``" (host and pid: a live process's pid is its own)."""
    return (Job.owner_host == owner.host, Job.owner_pid == owner.pid)


def _this_process() -> Owner:
    """This process as an owner to compare rows with (no creation time: host and pid suffice)."""
    return Owner(socket.gethostname(), os.getpid(), None)


@dataclass(frozen=True)
class JobInfo:
    """A job as the CLI shows it."""

    id: int
    kind: str
    task: str | None
    state: str
    progress: float
    message: str | None
    error: str | None
    result: dict[str, Any] | None
    owner_host: str | None
    owner_pid: int | None
    heartbeat_at: str | None
    attempts: int
    worker: str | None  # the Celery worker (name@host), or None when a driftloop process ran it itself
    queue: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


@dataclass(frozen=True)
class LostJob:
    """A job marked failed because its process is gone, and the training runs failed with it."""

    id: int
    kind: str
    task: str | None
    error: str
    training_runs: list[int]


def create_job(session: Session, kind: str, task_id: int | None, params: dict[str, Any], *, start: bool = False) -> Job:
    """A new job; with ``start`` it is running already, owned by this process, so that a crash
    right after the transaction that creates it still leaves a job that can be judged."""
    job = Job(kind=kind, task_id=task_id, params=params, state=JobState.queued, progress=0.0)
    if start:
        _own(job, Owner.this_process())
    session.add(job)
    session.flush()
    return job


def start_job(engine: Engine, job_id: int) -> None:
    """Mark a queued job running, owned by this process (which then beats with :func:`running`)."""
    with session_scope(engine) as session:
        begin_job(session, job_id)


def begin_job(session: Session, job_id: int) -> Job:
    """:func:`start_job` inside the caller's transaction (which may record more, e.g. a training run)."""
    job = session.execute(select(Job).where(Job.id == job_id).with_for_update()).scalar_one_or_none()
    if job is None:
        raise no_such_job(job_id)
    if job.state != JobState.queued:
        raise InvalidInput(f"job {job_id} is {job.state.value}, not queued: it cannot be started", job=job_id)
    _own(job, Owner.this_process())
    return job


def submit(
    engine: Engine,
    settings: Settings,
    kind: str,
    task: str | None,
    params: dict[str, Any],
    *,
    runner: str = "thread",
    coalesce: bool = False,
) -> int:
    """Create a queued job of ``kind`` and have it run (see the module's docstring); its id.

    ``runner`` says where it runs when no broker is configured: ``"thread"`` in this process's
    pool (a long-lived server), ``"process"`` in a detached ``driftloop jobs run`` (a CLI that exits).
    With ``coalesce``, a job of the same kind and task that is still queued (not started) stands
    for this one: its id is returned and nothing new is queued (one pending refresh per task,
    however many ingests ask for it).
    """
    if kind not in OPERATIONS:
        raise InvalidInput(f"unknown job kind {kind!r}: use one of {', '.join(OPERATIONS)}")
    if runner not in ("thread", "process"):
        raise ValueError(f"unknown runner {runner!r}")
    with session_scope(engine) as session:
        # the task's row lock: two submitters cannot both find no pending job and both queue one
        task_id = get_task(session, task, lock=coalesce).id if task is not None else None
        if coalesce:
            pending = session.scalar(
                select(Job.id).where(Job.kind == kind, Job.task_id == task_id, Job.state == JobState.queued, Job.started_at.is_(None))
            )
            if pending is not None:
                return pending
        job_id = create_job(session, kind, task_id, params).id
    if settings.broker_url:
        send_to_broker(engine, settings, job_id, kind)
    elif runner == "thread":
        _claim(engine, job_id, Owner.this_process())
        try:
            _pool().submit(_run_in_pool, engine, settings, job_id)
        except RuntimeError:  # this process's runner has stopped (a server on its way out)
            with session_scope(engine) as session:
                hand_back(session, job_id, _this_process(), "it was queued as this process's runner stopped")
            log.warning("job %s stays queued for the next runner: this process's runner has stopped", job_id)
    else:
        child = subprocess.Popen(
            [sys.executable, "-m", "driftloop.platform.cli", "jobs", "run", str(job_id)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # it outlives this command and its terminal
            env={**os.environ, "DRIFTLOOP_DATABASE_URL": engine.url.render_as_string(hide_password=False)},
        )
        try:
            started_at: float | None = psutil.Process(child.pid).create_time()
        except psutil.NoSuchProcess:  # gone already: without a creation time it is judged by its pid alone
            started_at = None
        _claim(engine, job_id, Owner(socket.gethostname(), child.pid, started_at))
    return job_id


_FOLLOW_UP_RUNNER: ContextVar[str] = ContextVar("follow_up_runner", default="thread")


def follow_up_runner() -> str:
    """The runner for a job that a running job queues after itself (a re-scoring after a
    promotion): the detached process's own kind when it runs in one, so the follow-up does not
    die with it; a thread of this process otherwise (a server); a broker's worker when one is set."""
    return _FOLLOW_UP_RUNNER.get()


def run_job(
    engine: Engine,
    settings: Settings,
    job_id: int,
    *,
    worker: str | None = None,
    queue: str | None = None,
    redelivery: bool = False,
    wait_if_busy: bool = True,
    follow_ups: str = "thread",
    raise_failure: bool = False,
) -> dict[str, Any] | None:
    """Run a queued job here, to its end; its result, or None when it was not queued any more
    (already run, cancelled, or delivered twice by a broker) or it failed (the job row says why).

    ``redelivery`` (a broker's worker): a job whose process died mid-way is lost, and a broker
    delivers its task again; such a job is reaped and run again, up to ``job_max_attempts``
    starts (see :func:`reclaim_lost`). A job whose operation raises :class:`Busy` (another
    training of its task runs) waits here and tries again when ``wait_if_busy``; otherwise Busy
    is raised to the caller (a worker retries the task later instead of holding its slot).
    ``raise_failure`` (a broker's worker): a job that failed raises :class:`JobFailed` once its row
    says so, so that the broker's own record of the task says failed too."""
    with session_scope(engine) as session:
        if redelivery:
            reclaim_lost(session, job_id, lost_after=settings.job_lost_after_seconds, max_attempts=settings.job_max_attempts)
        job = _load(session, job_id)
        kind, state, attempts = job.kind, job.state, job.attempts or 0
        if state == JobState.queued and (worker or queue):
            job.worker, job.queue = worker, queue
    if state != JobState.queued:
        log.info("job %s is %s, not queued: not run again", job_id, state.value)
        return None
    token = _FOLLOW_UP_RUNNER.set(follow_ups)
    try:
        return _run_operation(engine, settings, job_id, kind, attempts, wait_if_busy, raise_failure)
    finally:
        _FOLLOW_UP_RUNNER.reset(token)


def is_user_error(error: BaseException) -> bool:
    """An error that says what was asked cannot be done (a client's 4xx), not that something broke."""
    return isinstance(error, DriftloopError) and error.status < 500


def _run_operation(
    engine: Engine, settings: Settings, job_id: int, kind: str, attempts: int, wait_if_busy: bool, raise_failure: bool
) -> dict[str, Any] | None:
    """Run the operation; ``attempts`` is the job's count as it was given to this process, which
    tells a failure before the operation started the job from a job handed back since."""
    while True:
        try:
            operation = _operation(kind)
            return operation(engine, settings, job_id)
        except Busy as busy:
            if not wait_if_busy:
                raise
            if _STOPPED.is_set() or not _wait_turn(engine, job_id, busy, settings.job_busy_retry_seconds):
                return None
        except HandedBack:
            log.info("job %s (%s) was handed back: its work here stopped, the next runner runs it", job_id, kind)
            raise
        except Exception as error:  # the job row is the report: whoever waits on it reads the error there
            failure = f"{type(error).__name__}: {error}"
            with session_scope(engine) as session:
                fail_job(session, job_id, failure, queued_attempts=attempts)
            if is_user_error(error):  # what the request asked cannot be done: a line, not a traceback
                log.warning("job %s (%s) failed: %s", job_id, kind, failure)
            else:
                log.exception("job %s (%s) failed", job_id, kind)
            if raise_failure:
                raise JobFailed(f"job {job_id} ({kind}) failed: {failure}", job=job_id) from None
            return None


def _run_in_pool(engine: Engine, settings: Settings, job_id: int) -> dict[str, Any] | None:
    """:func:`run_job` in this process's runner, unless the runner stopped meanwhile (then the
    job was handed back, or is about to be: :func:`stop_runner`)."""
    if _STOPPED.is_set():
        return None
    return run_job(engine, settings, job_id)


def note_waiting(engine: Engine, job_id: int, busy: Busy) -> None:
    """Say on a queued job why it has not started."""
    with session_scope(engine) as session:
        session.execute(update(Job).where(Job.id == job_id, Job.state == JobState.queued).values(message=f"waiting: {busy}"[:500]))


def _wait_turn(engine: Engine, job_id: int, busy: Busy, seconds: float) -> bool:
    """Wait before trying a busy job again; False when it was cancelled meanwhile, or its runner stopped."""
    note_waiting(engine, job_id, busy)
    if _STOPPED.wait(seconds):
        return False
    with session_scope(engine) as session:
        return _load(session, job_id).state == JobState.queued


def reclaim_lost(session: Session, job_id: int, *, lost_after: float, max_attempts: int) -> bool:
    """Make a job whose process died runnable again (queued, owner and error cleared), when a
    broker delivers its task again; True if it was. A job still running elsewhere, or ended
    otherwise (succeeded, cancelled, failed for a reason of its own), is left as it is, so a
    task delivered twice does its work once. A job started ``max_attempts`` times already stays
    failed, its error saying it was given up: a task that always kills its worker (out of
    memory, a crash in native code) must not loop forever."""
    job = _load(session, job_id)
    if job.state == JobState.running:
        reaped = _reap_if_lost(session, job, lost_after)
        if reaped is None:
            return False  # its process lives: this delivery is a duplicate
    if job.state != JobState.failed or not (job.error or "").startswith("lost:"):
        return False
    if (job.attempts or 0) >= max_attempts:
        if not job.error.startswith("lost: given up"):
            job.error = f"lost: given up after {job.attempts} attempts (DRIFTLOOP_JOB_MAX_ATTEMPTS); the last: {job.error}"
        return False
    job.message = f"delivered again after attempt {job.attempts}: {job.error}"[:500]
    job.state, job.error, job.finished_at, job.progress = JobState.queued, None, None, 0.0
    job.owner_host = job.owner_pid = job.owner_started_at = job.heartbeat_at = None
    session.flush()
    return True


def cancel_job(session: Session, job_id: int) -> Job:
    """Cancel a queued or running job. A queued one never starts; a running one stops at its next
    progress report and its result is discarded (its work is not committed)."""
    job = _load(session, job_id)
    if job.state not in _LIVE:
        raise JobEnded(f"job {job_id} is {job.state.value} already: there is nothing to cancel", job=job_id)
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == job.state)
        .values(state=JobState.cancelled, error="cancelled by request", finished_at=utcnow(), message="cancelled")
    )
    if changed.rowcount != 1:  # it ended meanwhile: say how
        session.refresh(job)
        raise JobEnded(f"job {job_id} is {job.state.value} already: there is nothing to cancel", job=job_id)
    runs = select(TrainingRun.id).where(TrainingRun.job_id == job_id, TrainingRun.state == JobState.running)
    session.execute(
        update(TrainingRun).where(TrainingRun.id.in_(runs)).values(state=JobState.cancelled, error="cancelled by request", finished_at=utcnow())
    )
    session.refresh(job)
    return job


class JobFailed(DriftloopError):
    """The job ran and failed; its row holds the error."""

    code = "job_failed"
    status = 500


class JobCancelled(JobLost):
    """The job was cancelled (or declared lost) while it was working: stop, commit nothing."""

    code = "job_cancelled"


class HandedBack(JobCancelled):
    """The job was handed back while this process worked on it (:func:`hand_back`: queued again,
    for the next runner, or started by it already): stop, commit nothing, leave the job as it is."""

    code = "job_handed_back"


def _stopped(job_id: int, state: JobState, error: str | None) -> JobLost:
    """Why a job's work must stop here: it ended (cancelled, or declared lost), or it was handed
    back, as its row, read when the work could not write to it as its owner, says."""
    if state in _LIVE:  # queued again, or running in another process: only a hand-back does that
        return HandedBack(f"job {job_id} was handed back (it is {state.value} for another runner now), so its work here stops", job=job_id)
    return JobCancelled(f"job {job_id} is {state.value}, so its work stops: {error or 'no reason recorded'}", job=job_id)


def complete_job(session: Session, job_id: int, result: dict[str, Any]) -> None:
    """Mark the job succeeded inside the caller's transaction, so that its success commits with
    the work's own results or not at all. Raises :class:`JobLost` if the job no longer runs here."""
    lock_running(session, job_id)
    now = utcnow()
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(state=JobState.succeeded, progress=1.0, result=result, finished_at=now, heartbeat_at=now, message="done")
    )


def lock_running(session: Session, job_id: int) -> None:
    """Lock the job's row until the caller's transaction ends (call it first in a transaction
    that also changes the job's training run, as the reaper does, so the two never deadlock);
    raise :class:`JobLost` if the job is not running any more, :class:`HandedBack` if it is not
    this process's any more (handed back, and maybe started by another runner since)."""
    me = _this_process()
    state, error, host, pid = session.execute(
        select(Job.state, Job.error, Job.owner_host, Job.owner_pid).where(Job.id == job_id).with_for_update()
    ).one()
    if state == JobState.running and (host, pid) == (me.host, me.pid):
        return
    if state in _LIVE:
        raise _stopped(job_id, state, error)
    raise JobLost(
        f"job {job_id} is {state.value}, not running, so its result is discarded: {error or 'no error recorded'}",
        job=job_id,
    )


def fail_job(session: Session, job_id: int, error: str, *, queued_attempts: int | None = None) -> bool:
    """Mark the job failed if it is this process's to fail: running here, or, given
    ``queued_attempts`` (its count of attempts when this process was given it), still queued and
    not started since. False, and the job left as it is, when it ended already (reaped, cancelled),
    was handed back (:func:`hand_back`) or runs elsewhere."""
    mine = and_(Job.state == JobState.running, *_owned_by(_this_process()))
    if queued_attempts is not None:
        mine = or_(mine, and_(Job.state == JobState.queued, Job.attempts == queued_attempts))
    changed = session.execute(update(Job).where(Job.id == job_id, mine).values(state=JobState.failed, error=error, finished_at=utcnow()))
    return changed.rowcount == 1


def is_live(session: Session, job_id: int) -> bool:
    """Whether the job is queued or running, whoever runs it: one handed back is (it runs again),
    one that ended is not."""
    return session.scalar(select(Job.state).where(Job.id == job_id)) in _LIVE


def get_job(session: Session, job_id: int, *, lost_after: float) -> Job:
    """The job, marked failed first if it is lost (see the module's docstring)."""
    job = _load(session, job_id)
    if job.state in _LIVE:
        _reap_if_lost(session, job, lost_after)
    return job


def job_info(session: Session, job_id: int, *, lost_after: float) -> JobInfo:
    job = get_job(session, job_id, lost_after=lost_after)
    task = session.get(Task, job.task_id) if job.task_id is not None else None
    return _info(job, task.name if task else None)


def list_jobs(
    session: Session, *, task: str | None = None, state: str | None = None, limit: int = 50, lost_after: float
) -> list[JobInfo]:
    """The newest jobs first, lost ones reaped before they are shown."""
    if state is not None and state not in JobState.__members__:
        raise InvalidInput(f"unknown job state {state!r}: use one of {', '.join(JobState.__members__)}")
    task_id = get_task(session, task).id if task is not None else None
    reap_lost_jobs(session, lost_after=lost_after, task_id=task_id)
    query = select(Job, Task.name).outerjoin(Task, Task.id == Job.task_id).order_by(Job.id.desc()).limit(limit)
    if task_id is not None:
        query = query.where(Job.task_id == task_id)
    if state is not None:
        query = query.where(Job.state == JobState(state))
    return [_info(job, name) for job, name in session.execute(query)]


@dataclass(frozen=True)
class JobStatistic:
    """Jobs of one kind in one state, as the store knows them (however many processes ran them)."""

    kind: str
    state: str
    count: int
    seconds: float  # summed from start to end, over the ended ones that started
    timed: int  # how many of them had a start and an end


def job_statistics(session: Session) -> list[JobStatistic]:
    """Counts and run times of the jobs by kind and state, computed by the database."""
    if session.get_bind().dialect.name == "sqlite":
        seconds = (func.julianday(Job.finished_at) - func.julianday(Job.started_at)) * 86400.0
    else:
        seconds = func.extract("epoch", Job.finished_at - Job.started_at)
    timed = (Job.finished_at.is_not(None)) & (Job.started_at.is_not(None))
    rows = session.execute(
        select(
            Job.kind,
            Job.state,
            func.count(),
            func.coalesce(func.sum(case((timed, seconds), else_=None)), 0.0),
            func.count(case((timed, 1), else_=None)),
        ).group_by(Job.kind, Job.state)
    )
    return [JobStatistic(kind, state.value, count, float(total), int(n)) for kind, state, count, total, n in rows]


def live_job(session: Session, task_id: int, kind: str, *, lost_after: float) -> Job | None:
    """The task's oldest job of ``kind`` that is queued or running, lost ones reaped first (a dead
    training must not hold back the next one); None when there is none."""
    reap_lost_jobs(session, lost_after=lost_after, task_id=task_id)
    return session.scalars(
        select(Job).where(Job.task_id == task_id, Job.kind == kind, Job.state.in_(_LIVE)).order_by(Job.id).limit(1)
    ).first()


def reap_lost_jobs(session: Session, *, lost_after: float, task_id: int | None = None) -> list[LostJob]:
    """Mark every lost job (of one task, or all) failed, with its training runs."""
    query = select(Job).where(Job.state.in_(_LIVE)).order_by(Job.id)
    if task_id is not None:
        query = query.where(Job.task_id == task_id)
    lost = []
    for job in session.scalars(query).all():
        reaped = _reap_if_lost(session, job, lost_after)
        if reaped is not None:
            lost.append(reaped)
    return lost


def lost_reason(job: Job, *, lost_after: float, now: datetime | None = None) -> str | None:
    """Why ``job`` is lost (the error it gets, starting with ``lost:``), or None if it is not."""
    if job.state not in _LIVE:
        return None
    now = now or utcnow()
    if job.owner_pid is None:
        if job.state == JobState.queued:
            return None  # waiting for a worker: nobody owns it yet
        quiet = (now - job.updated_at).total_seconds()
        if quiet <= lost_after:
            return None
        return (
            f"lost: it records no process (it was started before driftloop recorded owners) and has shown no sign "
            f"of life for {quiet:.0f}s, since {_time(job.updated_at)}"
        )
    if job.state == JobState.queued and job.owner_host != socket.gethostname():
        return None  # waiting in another host's runner, which writes no heartbeat for it yet
    who = f"pid {job.owner_pid} on host {job.owner_host}"
    last = job.heartbeat_at or job.started_at or job.created_at
    beat = f"last heartbeat at {_time(last)}"
    if job.owner_host == socket.gethostname():
        fate = _local_fate(job.owner_pid, job.owner_started_at)
        if fate == "alive":
            return None
        if fate is not None:
            return f"lost: the process that ran it ({who}) {fate}; {beat}"
    quiet = (now - last).total_seconds()
    if quiet <= lost_after:
        return None
    return (
        f"lost: the process that ran it ({who}) has sent no heartbeat for {quiet:.0f}s, more than "
        f"DRIFTLOOP_JOB_LOST_AFTER_SECONDS ({lost_after:g}); {beat}"
    )


@contextmanager
def running(engine: Engine, job_id: int, interval: float) -> Iterator[None]:
    """Write the job's heartbeat every ``interval`` seconds while the body runs."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_beat, args=(engine, job_id, interval, stop), name=f"driftloop-job-{job_id}-heartbeat", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def progress_reporter(engine: Engine, job_id: int, low: float = 0.0, high: float = 1.0) -> Callable[[float, str], None]:
    """A callback mapping a step's own 0..1 onto ``low..high`` of the job and storing it, while the
    job runs in this process (its owner): else the work stops (:class:`JobCancelled`, :class:`HandedBack`)."""
    last = 0.0
    me = _this_process()

    def report(fraction: float, message: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < _MIN_INTERVAL and fraction < 1.0:
            return
        last = now
        with session_scope(engine) as session:
            # a progress report is a sign of life too; a job reaped meanwhile keeps what it said last
            reported = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.running, *_owned_by(me))
                .values(progress=min(1.0, max(0.0, low + (high - low) * fraction)), message=message[:500], heartbeat_at=utcnow())
            )
            if reported.rowcount == 0:
                state, error = session.execute(select(Job.state, Job.error).where(Job.id == job_id)).one()
        if reported.rowcount == 0:  # cancelled, declared lost or handed back: the work stops here, not at its commit
            raise _stopped(job_id, state, error)

    return report


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
# Set once this process's runner has stopped (:func:`stop_runner`): the process is on its way out.
_STOPPED = threading.Event()
_CLEAN_UP_SECONDS = 30.0  # how long a stopping runner waits for a finished job's clean-up


def _pool() -> ThreadPoolExecutor:
    """This process's job runner: one thread, so a server trains one model at a time (a second
    job waits queued) and requests are never starved of CPU by a crowd of trainings. Raises
    RuntimeError once the runner has stopped."""
    global _POOL
    with _POOL_LOCK:
        if _STOPPED.is_set():
            raise RuntimeError("this process's job runner has stopped")
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftloop-job")
        return _POOL


def hand_back(session: Session, job_id: int, owner: Owner, reason: str) -> bool:
    """Queue again a job that ``owner``, a process that stops cleanly, holds (queued for it, or
    running in it), so that the next runner runs it: no owner, not sent, the reason as its message
    (``handed back: …``), its running training run cancelled. Its attempts stay counted, and a
    training's checkpoint stays where the next attempt finds it. False when the job is not
    ``owner``'s any more (it ended meanwhile, or was handed back already)."""
    changed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state.in_(_LIVE), *_owned_by(owner))
        .values(
            state=JobState.queued,
            owner_host=None,
            owner_pid=None,
            owner_started_at=None,
            heartbeat_at=None,
            sent_at=None,  # with a broker, a resend or the returned task, whichever comes first: it runs once
            progress=0.0,
            message=f"handed back: {reason}"[:500],
        )
    )
    if changed.rowcount != 1:
        return False
    session.execute(
        update(TrainingRun)
        .where(TrainingRun.job_id == job_id, TrainingRun.state == JobState.running)
        .values(state=JobState.cancelled, error=f"handed back: {reason}", finished_at=utcnow())
    )
    return True


def held_jobs(session: Session, owners: list[Owner]) -> dict[int, Owner]:
    """The queued and running jobs that ``owners`` hold (processes of one host: a worker's pool), by id."""
    if not owners:
        return {}
    by_pid = {owner.pid: owner for owner in owners}
    rows = session.execute(
        select(Job.id, Job.owner_pid).where(
            Job.state.in_(_LIVE), Job.owner_host == owners[0].host, Job.owner_pid.in_(list(by_pid))
        )
    )
    return {job_id: by_pid[pid] for job_id, pid in rows}


def finish_or_hand_back(
    engine: Engine, held: dict[int, Owner], grace: float, reason: str, say: Callable[[str], None]
) -> list[int]:
    """Give each job of ``held`` (its id, and the process that runs it) ``grace`` seconds to end,
    then hand back (:func:`hand_back`) those still there; ``say`` hears one line per job, what
    became of it. The ids handed back."""
    deadline = time.monotonic() + grace
    waiting = dict(held)
    while waiting:
        with session_scope(engine) as session:
            rows = session.execute(select(Job.id, Job.state, Job.owner_host, Job.owner_pid).where(Job.id.in_(list(waiting)))).all()
        for job_id, state, host, pid in rows:
            owner = waiting[job_id]
            if state not in _LIVE or (host, pid) != (owner.host, owner.pid):
                say(f"job {job_id} {state.value} before the stop" if state not in _LIVE else f"job {job_id} left {owner.describe()} before the stop")
                del waiting[job_id]
        left = deadline - time.monotonic()
        if not waiting or left <= 0:
            break
        time.sleep(min(0.2, left))
    handed = []
    for job_id, owner in waiting.items():
        with session_scope(engine) as session:
            if hand_back(session, job_id, owner, reason):
                handed.append(job_id)
                continue
            state = session.scalar(select(Job.state).where(Job.id == job_id))
        say(f"job {job_id} {state.value if state else 'gone'} before it could be handed back")
    for job_id in handed:
        say(
            f"job {job_id} handed back, queued again for the next runner: it did not finish within "
            f"DRIFTLOOP_STOP_GRACE_SECONDS ({grace:g}s) after {reason}"
        )
    return handed


def stop_runner(engine: Engine, grace: float, say: Callable[[str], None] = log.info) -> list[int]:
    """Stop this process's runner as the process stops cleanly (``driftloop serve`` without a
    broker, on SIGTERM): it starts nothing more; the jobs queued for it are handed back at once;
    the running one is let finish within ``grace`` seconds, else handed back too (a job it queues
    meanwhile, a follow-up, waits queued for the next runner). ``say`` hears which, job by job;
    the ids handed back. A stopped runner stays stopped."""
    global _POOL
    with _POOL_LOCK:
        _STOPPED.set()
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)  # the queued ones never start
    me = _this_process()
    with session_scope(engine) as session:
        rows = session.execute(select(Job.id, Job.state).where(Job.state.in_(_LIVE), *_owned_by(me)).order_by(Job.id)).all()
    reason = f"its runner ({me.describe()}) stopped"
    handed = []
    for job_id, state in rows:
        if state == JobState.queued:
            with session_scope(engine) as session:
                if hand_back(session, job_id, me, f"{reason} before it began"):
                    handed.append(job_id)
                    say(f"job {job_id} handed back, queued again for the next runner: it had not begun")
    running_here = {job_id: me for job_id, state in rows if state == JobState.running}
    if running_here:
        say(f"stopping: job {', '.join(map(str, running_here))} may finish within DRIFTLOOP_STOP_GRACE_SECONDS ({grace:g}s), else it is handed back")
    handed_running = finish_or_hand_back(engine, running_here, grace, reason, say)
    if pool is not None and not handed_running:
        # a job that finished still cleans up after its commit (a training removes its checkpoint):
        # let it, rather than end the process under it
        waiter = threading.Thread(target=pool.shutdown, kwargs={"wait": True}, name="driftloop-stop-wait", daemon=True)
        waiter.start()
        waiter.join(_CLEAN_UP_SECONDS)
    return handed + handed_running


def run_orphans(engine: Engine, settings: Settings, *, older_than: float = 5.0) -> list[int]:
    """Run in this process's runner the queued jobs no live process owns (``driftloop serve``
    without a broker, as it starts): those handed back by a runner that stopped
    (:func:`hand_back`) or never sent to a broker, and those whose runner died before it began
    them. Each is claimed on its row first, so two servers starting at once never both run one;
    the ids taken."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    with session_scope(engine) as session:
        queued = session.execute(
            select(Job.id, Job.owner_host, Job.owner_pid, Job.owner_started_at)
            .where(Job.state == JobState.queued, Job.sent_at.is_(None), Job.created_at < cutoff)
            .order_by(Job.id)
        ).all()
    me, taken = Owner.this_process(), []
    for job_id, host, pid, started_at in queued:
        if pid is not None and owner_fate(Owner(host, pid, started_at)) in ("alive", None):
            continue  # its runner lives (or cannot be judged from here): it is that runner's
        with session_scope(engine) as session:
            claimed = session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.state == JobState.queued,
                    Job.owner_pid.is_(None) if pid is None else Job.owner_pid == pid,
                    Job.owner_host.is_(None) if host is None else Job.owner_host == host,
                )
                .values(owner_host=me.host, owner_pid=me.pid, owner_started_at=me.started_at)
            )
        if claimed.rowcount == 1:
            taken.append(job_id)
            _pool().submit(_run_in_pool, engine, settings, job_id)
    return taken


def _operation(kind: str) -> Callable[[Engine, Settings, int], dict[str, Any]]:
    module, _, function = OPERATIONS[kind].partition(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


def queue_of(kind: str) -> str:
    """The Celery queue a kind of job goes to: trainings to ``train`` (GPU workers), the rest to ``default``."""
    return TRAIN_QUEUE if kind in TRAIN_KINDS else DEFAULT_QUEUE


def send_to_broker(engine: Engine, settings: Settings, job_id: int, kind: str) -> bool:
    """Send a queued job's task to the broker; False (the job stays queued, unsent, saying why)
    when the broker cannot be reached: :func:`send_unsent` sends it when it is back. The job row
    is committed first, so the job exists either way. The send is claimed on the row first, so
    that of several processes sending what the broker missed only one sends each job; a task
    delivered twice all the same runs once (:func:`run_job` runs only a queued job)."""
    queue = queue_of(kind)
    with session_scope(engine) as session:
        claimed = session.execute(
            update(Job).where(Job.id == job_id, Job.state == JobState.queued, Job.sent_at.is_(None)).values(sent_at=utcnow(), queue=queue)
        )
    if claimed.rowcount != 1:
        return False  # started, ended, or sent by someone else meanwhile
    try:
        _producer(settings.broker_url or "").send_task(CELERY_TASK_PREFIX + kind, args=[job_id], queue=queue)
    except Exception as error:  # kombu's OperationalError, a refused connection, a DNS failure...
        log.warning("job %s could not be sent to the broker (it stays queued): %s", job_id, error)
        with session_scope(engine) as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.queued)
                .values(sent_at=None, message=f"waiting for the broker, unreachable: {type(error).__name__}: {error}"[:500])
            )
        return False
    return True


def send_unsent(engine: Engine, settings: Settings, *, older_than: float = 5.0) -> list[int]:
    """Send the queued jobs the broker never took (it was down when they were submitted); the
    ids sent. The workers call it every few seconds, and the scheduler at each tick."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    with session_scope(engine) as session:
        unsent = session.execute(
            select(Job.id, Job.kind).where(Job.state == JobState.queued, Job.sent_at.is_(None), Job.owner_pid.is_(None), Job.created_at < cutoff)
        ).all()
    return [job_id for job_id, kind in unsent if send_to_broker(engine, settings, job_id, kind)]


_PRODUCERS: dict[str, Any] = {}


def _producer(broker_url: str) -> Any:
    """One Celery app per broker, for sending only (the platform never imports ``driftloop.workers``)."""
    with _POOL_LOCK:
        if broker_url not in _PRODUCERS:
            from celery import Celery

            app = Celery("driftloop", broker=broker_url, set_as_current=False)
            # fail in seconds, not minutes, when the broker is down: the job stays queued and is sent later
            app.conf.broker_connection_timeout = 3
            app.conf.task_publish_retry_policy = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}
            _PRODUCERS[broker_url] = app
        return _PRODUCERS[broker_url]


def _claim(engine: Engine, job_id: int, owner: Owner) -> None:
    """Record who will run a still-queued job (see :func:`lost_reason`)."""
    with session_scope(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.queued)
            .values(owner_host=owner.host, owner_pid=owner.pid, owner_started_at=owner.started_at)
        )


def no_such_job(job_id: int) -> NotFound:
    """The answer for a job that does not exist, or that the caller may not know exists."""
    return NotFound(f"no job {job_id}", job=job_id)


def _load(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise no_such_job(job_id)
    return job


def _own(job: Job, owner: Owner) -> None:
    now = utcnow()
    job.attempts = (job.attempts or 0) + 1
    job.state, job.started_at, job.message = JobState.running, now, "started"
    job.owner_host, job.owner_pid, job.owner_started_at, job.heartbeat_at = owner.host, owner.pid, owner.started_at, now


def _local_fate(pid: int, started_at: float | None) -> str | None:
    """What became of a process of this host: "alive", what happened to it, or None when it
    cannot be told from here (another user's process we may not inspect)."""
    try:
        process = psutil.Process(pid)
        status, created = process.status(), process.create_time()
    except psutil.ZombieProcess:
        return "has exited (a zombie its parent has not collected)"
    except psutil.NoSuchProcess:
        return "is gone"
    except psutil.AccessDenied:
        return None
    if started_at is not None and abs(created - started_at) > _CREATION_TOLERANCE:
        return f"is gone: pid {pid} now belongs to another process, started at {_time(datetime.fromtimestamp(created, UTC))}"
    if status == psutil.STATUS_ZOMBIE:
        return "has exited (a zombie its parent has not collected)"
    return "alive"


def _reap_if_lost(session: Session, job: Job, lost_after: float) -> LostJob | None:
    reason = lost_reason(job, lost_after=lost_after)
    if reason is None:
        return None
    now = utcnow()
    # Only as it was seen: a heartbeat or a new owner since then means it is not lost after all.
    seen = update(Job).where(
        Job.id == job.id,
        Job.state == job.state,
        Job.owner_pid.is_(None) if job.owner_pid is None else Job.owner_pid == job.owner_pid,
        Job.heartbeat_at.is_(None) if job.heartbeat_at is None else Job.heartbeat_at == job.heartbeat_at,
    )
    if session.execute(seen.values(state=JobState.failed, error=reason, finished_at=now)).rowcount != 1:
        session.refresh(job)
        return None
    runs = list(
        session.scalars(select(TrainingRun.id).where(TrainingRun.job_id == job.id, TrainingRun.state == JobState.running))
    )
    if runs:
        session.execute(
            update(TrainingRun).where(TrainingRun.id.in_(runs)).values(state=JobState.failed, error=reason, finished_at=now)
        )
    session.refresh(job)
    task = session.get(Task, job.task_id) if job.task_id is not None else None
    return LostJob(job.id, job.kind, task.name if task else None, reason, runs)


def _beat(engine: Engine, job_id: int, interval: float, stop: threading.Event) -> None:
    me = _this_process()
    while not stop.wait(interval):
        try:
            with session_scope(engine) as session:
                beaten = session.execute(
                    update(Job).where(Job.id == job_id, Job.state == JobState.running, *_owned_by(me)).values(heartbeat_at=utcnow())
                )
            if beaten.rowcount == 0:
                return  # ended, declared lost or handed back: the work learns it when it tries to finish
        except Exception:  # a store that does not answer now may answer at the next beat
            continue


def _info(job: Job, task: str | None) -> JobInfo:
    return JobInfo(
        id=job.id,
        kind=job.kind,
        task=task,
        state=job.state.value,
        progress=job.progress,
        message=job.message,
        error=job.error,
        result=job.result,
        owner_host=job.owner_host,
        owner_pid=job.owner_pid,
        heartbeat_at=_time(job.heartbeat_at) if job.heartbeat_at else None,
        attempts=job.attempts or 0,
        worker=job.worker,
        queue=job.queue,
        created_at=_time(job.created_at),
        started_at=_time(job.started_at) if job.started_at else None,
        finished_at=_time(job.finished_at) if job.finished_at else None,
    )


def _time(value: datetime) -> str:
    return value.isoformat(timespec="seconds")
