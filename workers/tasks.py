"""The workers' tasks: one per kind of job, named ``driftloop.<kind>``, each taking the job's id.

They are thin: every one calls :func:`driftloop.platform.jobs.run_job`, which runs the job's
operation (a service of the platform, or labeling's sync) and records state, progress, error,
worker, queue and attempts on the job row. They are idempotent: a task delivered again runs
its job only if the job is still queued, or if its process died (then it is run again, up to
``DRIFTLOOP_JOB_MAX_ATTEMPTS`` starts); a job that succeeded is never run twice.
"""

import logging
import threading
import time
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init, worker_ready

from driftloop.labeling import register_jobs
from driftloop.platform import jobs
from driftloop.platform.config import get_settings
from driftloop.platform.errors import Busy
from driftloop.platform.store.engine import get_engine

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
