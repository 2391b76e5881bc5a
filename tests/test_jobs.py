"""Jobs and their owners, on both backends, with real processes: a job whose process is gone,
a zombie, a reused pid or a silent remote owner is lost; a job of a live process is not; the
heartbeat is written while the work runs; a lost job cannot succeed afterwards."""

import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import psutil
import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from driftloop.platform.config import Settings
from driftloop.platform.errors import InvalidInput
from driftloop.platform.jobs import (
    HandedBack,
    JobLost,
    Owner,
    complete_job,
    create_job,
    fail_job,
    get_job,
    hand_back,
    is_live,
    list_jobs,
    lost_reason,
    progress_reporter,
    reap_lost_jobs,
    running,
    start_job,
)
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, JobState, TrainingRun
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task

LOST_AFTER = 60.0


def _job(engine: Engine, task: str, owner: Owner | None, heartbeat_age: float = 0.0, state: JobState = JobState.running) -> int:
    """A job in ``state`` with a running training run, owned by ``owner``, last heard of ``heartbeat_age`` seconds ago."""
    with session_scope(engine) as session:
        task_id = get_task(session, task).id
        job = create_job(session, "train", task_id, {})
        beat = utcnow() - timedelta(seconds=heartbeat_age)
        job.state, job.started_at, job.heartbeat_at = state, beat, beat if owner else None
        if owner is not None:
            job.owner_host, job.owner_pid, job.owner_started_at = owner.host, owner.pid, owner.started_at
        job.updated_at = beat
        session.add(TrainingRun(task_id=task_id, job_id=job.id, mode="head", replay="none", params={}, state=JobState.running))
        return job.id


def _states(engine: Engine, job_id: int) -> tuple[Job, TrainingRun]:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        run = session.query(TrainingRun).filter_by(job_id=job_id).one()
        session.expunge_all()
        return job, run


def _exited_process() -> Owner:
    """The owner record of a real process that has exited and been collected."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    owner = Owner(socket.gethostname(), child.pid, psutil.Process(child.pid).create_time())
    child.communicate(b"")
    return owner


def test_a_job_whose_process_is_gone_is_lost_and_fails_its_training_run(engine: Engine, task_name: str) -> None:
    dead = _exited_process()
    read, reaped = _job(engine, task_name, dead), _job(engine, task_name, dead)

    with session_scope(engine) as session:
        job = get_job(session, read, lost_after=LOST_AFTER)
        assert job.state == JobState.failed and job.finished_at is not None
        assert job.error.startswith(f"lost: the process that ran it (pid {dead.pid} on host {dead.host}) is gone; last heartbeat at ")
    job, run = _states(engine, read)
    assert (job.state, run.state) == (JobState.failed, JobState.failed)
    assert run.error == job.error and run.finished_at is not None

    with session_scope(engine) as session:
        lost = reap_lost_jobs(session, lost_after=LOST_AFTER, task_id=get_task(session, task_name).id)
    assert [(j.id, j.task, j.training_runs) for j in lost] == [(reaped, task_name, [_states(engine, reaped)[1].id])]
    assert lost[0].error.startswith("lost: the process that ran it") and _states(engine, reaped)[0].state == JobState.failed


def test_a_job_of_a_live_process_is_not_lost_even_with_an_old_heartbeat(engine: Engine, task_name: str) -> None:
    # the process table of the owner's host is the truth: a slow heartbeat (a store busy for a
    # minute) must not fail a training that is still working
    mine = _job(engine, task_name, Owner.this_process(), heartbeat_age=3600)
    with session_scope(engine) as session:
        assert get_job(session, mine, lost_after=LOST_AFTER).state == JobState.running
        assert reap_lost_jobs(session, lost_after=LOST_AFTER, task_id=get_task(session, task_name).id) == []
        assert [j.state for j in list_jobs(session, task=task_name, lost_after=LOST_AFTER)] == ["running"]
    assert _states(engine, mine)[1].state == JobState.running


def test_a_reused_pid_is_not_the_owner(engine: Engine, task_name: str) -> None:
    me = Owner.this_process()
    impostor = _job(engine, task_name, Owner(me.host, me.pid, me.started_at - 3600))
    with session_scope(engine) as session:
        job = get_job(session, impostor, lost_after=LOST_AFTER)
        assert job.state == JobState.failed
        assert job.error.startswith(f"lost: the process that ran it (pid {me.pid} on host {me.host}) is gone: pid {me.pid} now belongs to another process")
    assert _states(engine, impostor)[1].state == JobState.failed


def test_a_zombie_owner_is_lost(engine: Engine, task_name: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        owner = Owner(socket.gethostname(), child.pid, psutil.Process(child.pid).create_time())
        deadline = time.monotonic() + 30
        # exited but not collected: psutil reads its status without reaping it (Popen.poll would)
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.02)
        zombie = _job(engine, task_name, owner)
        with session_scope(engine) as session:
            job = get_job(session, zombie, lost_after=LOST_AFTER)
            assert job.state == JobState.failed and "has exited (a zombie" in job.error
    finally:
        child.wait()


def test_a_remote_owner_is_judged_by_its_heartbeat(engine: Engine, task_name: str) -> None:
    elsewhere = Owner(f"elsewhere-{uuid.uuid4().hex[:6]}", os.getpid(), 0.0)  # its pid means nothing here
    silent = _job(engine, task_name, elsewhere, heartbeat_age=LOST_AFTER * 2)
    beating = _job(engine, task_name, elsewhere, heartbeat_age=LOST_AFTER / 2)
    with session_scope(engine) as session:
        lost = reap_lost_jobs(session, lost_after=LOST_AFTER, task_id=get_task(session, task_name).id)
    assert [j.id for j in lost] == [silent]
    assert lost[0].error.startswith(f"lost: the process that ran it (pid {elsewhere.pid} on host {elsewhere.host}) has sent no heartbeat for 120s")
    assert "DRIFTLOOP_JOB_LOST_AFTER_SECONDS (60)" in lost[0].error
    assert _states(engine, beating)[0].state == JobState.running


def test_jobs_without_an_owner(engine: Engine, task_name: str) -> None:
    queued = _job(engine, task_name, None, heartbeat_age=3600, state=JobState.queued)  # waiting for a worker
    legacy = _job(engine, task_name, None, heartbeat_age=3600)  # running since before owners were recorded
    recent = _job(engine, task_name, None, heartbeat_age=5)
    with session_scope(engine) as session:
        lost = reap_lost_jobs(session, lost_after=LOST_AFTER, task_id=get_task(session, task_name).id)
    assert [j.id for j in lost] == [legacy] and "records no process" in lost[0].error
    assert _states(engine, queued)[0].state == JobState.queued and _states(engine, recent)[0].state == JobState.running


def test_the_heartbeat_is_written_while_the_work_runs_and_a_lost_job_cannot_succeed(engine: Engine, task_name: str) -> None:
    with session_scope(engine) as session:
        job_id = create_job(session, "train", get_task(session, task_name).id, {}, start=True).id
    first = _job_row(engine, job_id).heartbeat_at
    assert _job_row(engine, job_id).owner_pid == os.getpid()
    with running(engine, job_id, interval=0.05):
        deadline = time.monotonic() + 30
        while _job_row(engine, job_id).heartbeat_at == first:
            assert time.monotonic() < deadline, "no heartbeat was written"
            time.sleep(0.02)

    # declared lost while it worked (a reused pid makes it so here): its result is refused
    with session_scope(engine) as session:
        session.get(Job, job_id).owner_started_at -= 3600
    with session_scope(engine) as session:
        assert get_job(session, job_id, lost_after=LOST_AFTER).state == JobState.failed
    with pytest.raises(JobLost, match="not running, so its result is discarded: lost:"), session_scope(engine) as session:
        complete_job(session, job_id, {"version": 1})
    assert _job_row(engine, job_id).state == JobState.failed

    with session_scope(engine) as session:
        queued = create_job(session, "train", None, {}).id
    start_job(engine, queued)
    started = _job_row(engine, queued)
    assert (started.state, started.owner_host, started.owner_pid) == (JobState.running, socket.gethostname(), os.getpid())
    with pytest.raises(InvalidInput, match="is running, not queued"):
        start_job(engine, queued)  # another worker's job is not taken over


def _job_row(engine: Engine, job_id: int) -> Job:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        session.expunge(job)
        return job


def test_a_heartbeat_must_come_more_often_than_the_lost_rule_allows() -> None:
    with pytest.raises(ValidationError, match="must be greater than DRIFTLOOP_JOB_HEARTBEAT_SECONDS"):
        Settings(job_heartbeat_seconds=60, job_lost_after_seconds=60)
    assert Settings(job_heartbeat_seconds=1, job_lost_after_seconds=5).job_lost_after_seconds == 5


def test_a_job_handed_back_is_queued_again_and_its_old_work_can_neither_report_nor_commit_nor_fail_it(engine: Engine, task_name: str) -> None:
    job_id = _job(engine, task_name, Owner.this_process())
    report = progress_reporter(engine, job_id)
    with session_scope(engine) as session:
        assert hand_back(session, job_id, Owner.this_process(), "its runner stopped")
        assert not hand_back(session, job_id, Owner.this_process(), "twice")  # not this process's any more
    job, run = _states(engine, job_id)
    assert (job.state, job.owner_pid, job.sent_at, job.error, job.message) == (JobState.queued, None, None, None, "handed back: its runner stopped")
    assert (run.state, run.error) == (JobState.cancelled, "handed back: its runner stopped")
    assert lost_reason(job, lost_after=LOST_AFTER) is None  # waiting for the next runner, not lost

    with pytest.raises(HandedBack):
        report(0.5, "half way")
    with pytest.raises(HandedBack), session_scope(engine) as session:
        complete_job(session, job_id, {"version": 1})
    with session_scope(engine) as session:
        assert not fail_job(session, job_id, "RuntimeError: late")  # its old work fails nothing
        assert is_live(session, job_id)

    # another runner starts it: the old work still cannot touch it
    other = _exited_process()
    with session_scope(engine) as session:
        session.get(Job, job_id).state = JobState.running
        session.get(Job, job_id).owner_host, session.get(Job, job_id).owner_pid = other.host, other.pid
    with pytest.raises(HandedBack):
        report(1.0, "done")
    with pytest.raises(HandedBack), session_scope(engine) as session:
        complete_job(session, job_id, {"version": 1})
    with session_scope(engine) as session:
        assert not fail_job(session, job_id, "RuntimeError: late", queued_attempts=0)
    assert _states(engine, job_id)[0].state == JobState.running
