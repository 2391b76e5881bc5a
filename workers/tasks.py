"""The workers' tasks: one per kind of job, named ``driftloop.<kind>``, each taking the job's id.

They are thin: every one calls :func:`driftloop.platform.jobs.run_job`, which runs the job's
operation (a service of the platform, or labeling's sync) and records state, progress, error,
worker, queue and attempts on the job row. They are idempotent: a task delivered again runs
its job only if the job is still queued, or if its process died (then it is run again, up to
``DRIFTLOOP_JOB_MAX_ATTEMPTS`` starts); a job that succeeded is never run twice.

A worker stopped with SIGTERM (a warm shutdown) lets its running jobs finish within
``DRIFTLOOP_STOP_GRACE_SECONDS``; then it hands back those still running (their rows queued
again, :func:`driftloop.platform.jobs.hand_back`) and ends their pool processes, so that their
tasks, never acknowledged, go back to the broker for the next worker. Its log says which.
"""

import logging
import os
import signal
import socket
import threading
import time
from typing import Any

import psutil
from celery import Celery, Task
from celery.exceptions import Reject
from celery.signals import worker_process_init, worker_ready, worker_shutting_down

from driftloop.labeling import register_jobs
from driftloop.platform import jobs
from driftloop.platform.config import get_settings
from driftloop.platform.errors import Busy
from driftloop.platform.store.engine import get_engine, session_scope

log = logging.getLogger(__name__)


def register_tasks(app: Celery) -> None:
    """A task on ``app`` for every kind of job this process can run (the core's and labeling's)."""
    register_jobs()
    for kind in jobs.OPERATIONS:
        # JobFailed is expected: the job row holds the error and the log its line; Celery records
        # the task failed with a line of its own instead of a second traceback
        app.task(name=jobs.CELERY_TASK_PREFIX + kind, bind=True, queue=jobs.queue_of(kind), throws=(jobs.JobFailed,))(_run)


def _run(task: Task, job_id: int) -> dict[str, Any] | None:
    settings = get_settings()
    engine = get_engine(settings)
    delivery = task.request.delivery_info or {}
    try:
        return jobs.run_job(
            engine,
            settings,
            job_id,
            worker=task.request.hostname,
            queue=delivery.get("routing_key") or delivery.get("exchange") or None,
            redelivery=True,
            wait_if_busy=False,
            raise_failure=True,
        )
    except Busy as busy:
        # another training of the task runs: try later, without holding this worker meanwhile
        jobs.note_waiting(engine, job_id, busy)
        raise task.retry(countdown=settings.job_busy_retry_seconds, max_retries=None, exc=busy) from busy
    except jobs.HandedBack as handed:
        # the worker is stopping and gave the job back: so is its task, for the next worker (an
        # acknowledged one would leave the job queued with nothing to deliver it)
        raise Reject(handed.message, requeue=True) from handed


@worker_shutting_down.connect
def _finish_or_hand_back(sender: str = "", sig: str = "", how: str = "", **_: Any) -> None:
    """A warm shutdown (SIGTERM) has begun in this worker's parent: its pool processes finish the
    task they run, and Celery waits for them however long they take. A thread of the parent bounds
    that: see the module's docstring. (A cold shutdown cancels the tasks itself.)"""
    if how == "Warm":
        threading.Thread(target=_stop_gracefully, args=(sender, sig), name="driftloop-stop", daemon=True).start()


def _stop_gracefully(worker: str, sig: str) -> None:
    settings = get_settings()
    engine = get_engine(settings)
    host = socket.gethostname()
    pool = [jobs.Owner(host, child.pid, None) for child in psutil.Process().children(recursive=True)]
    try:
        with session_scope(engine) as session:
            held = jobs.held_jobs(session, pool)
    except Exception:  # the store does not answer: Celery's own warm shutdown goes on
        log.exception("stopping: the jobs of this worker could not be read")
        return
    if not held:
        return
    grace = settings.stop_grace_seconds
    log.warning(
        "stopping (%s): job %s may finish within DRIFTLOOP_STOP_GRACE_SECONDS (%gs), else it is handed back",
        sig, ", ".join(map(str, held)), grace,
    )
    reason = f"its worker ({worker}) stopped ({sig})"
    for job_id in jobs.finish_or_hand_back(engine, held, grace, reason, lambda line: log.warning("%s", line)):
        try:
            # its task was never acknowledged: the lost pool process sends it back to the broker
            os.kill(held[job_id].pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        log.warning("job %s: its task goes back to the broker, for the next worker", job_id)


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    """A forked child must not share its parent's database connections; and the worker's log
    says what tasks did, not every HTTP request the Argilla SDK makes for them."""
    get_engine(get_settings()).dispose(close=False)
    logging.getLogger("httpx").setLevel(logging.WARNING)


@worker_ready.connect
def _start_sending_what_the_broker_missed(**_: Any) -> None:
    """Jobs submitted while the broker was down are committed but were never sent: this worker's
    parent looks for them as it starts and every ``RESEND_SECONDS`` after (a send is claimed on
    the job row, so several workers never send one job twice)."""
    threading.Thread(target=_resend_forever, name="driftloop-resend", daemon=True).start()


RESEND_SECONDS = 10.0


def _resend_forever() -> None:
    settings = get_settings()
    while True:
        try:
            sent = jobs.send_unsent(get_engine(settings), settings)
            if sent:
                log.info("sent %d jobs that were waiting for the broker: %s", len(sent), sent)
        except Exception:  # the store may be down too: try again at the next round
            log.exception("could not look for unsent jobs")
        time.sleep(RESEND_SECONDS)
