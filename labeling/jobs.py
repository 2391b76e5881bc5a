"""Labeling's operations as jobs: ``sync`` (retry pending pushes, then read every answer back).

The platform's job runner knows only the core's kinds (:data:`driftloop.platform.jobs.OPERATIONS`);
the core never imports labeling. Whoever wires labeling in (the CLI, the API, a worker) calls
:func:`driftloop.labeling.register_jobs` as it starts, so that its runner can run these kinds too.
"""

from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine

from driftloop.labeling import register_jobs
from driftloop.labeling.connection import connect
from driftloop.labeling.sync import SyncResult, sync
from driftloop.platform import jobs
from driftloop.platform.config import Settings
from driftloop.platform.errors import Unavailable
from driftloop.platform.store.engine import session_scope


def submit_sync(engine: Engine, settings: Settings, task: str, *, runner: str = "thread") -> int:
    """Queue a sync of ``task`` as a job and have it run; its id."""
    register_jobs()
    return jobs.submit(engine, settings, "sync", task, {"task": task}, runner=runner)


def run_sync_job(engine: Engine, settings: Settings, job_id: int) -> dict[str, Any]:
    """The ``sync`` job's operation. Argilla being unreachable fails the job with the reason (the
    pushes stay pending and the next sync retries them); reading is idempotent, so a job that is
    run again after a crash only finds what is still new."""
    with session_scope(engine) as session:
        task = jobs.begin_job(session, job_id).params["task"]
    with jobs.running(engine, job_id, settings.job_heartbeat_seconds):
        to_job = jobs.progress_reporter(engine, job_id)
        result = sync(
            engine, settings, task, lambda: connect(settings), progress=lambda done, total: to_job(done / max(total, 1), f"read {done} responses")
        )
        if result.push.error is not None:
            raise Unavailable(f"Argilla could not be reached; {result.push.pending} pushes stay pending: {result.push.error}")
        summary = sync_summary(task, result)
        with session_scope(engine) as session:
            jobs.complete_job(session, job_id, summary)
    return summary


def sync_summary(task: str, result: SyncResult) -> dict[str, Any]:
    """A sync as JSON: what ``driftloop sync --json`` prints and a ``sync`` job's result."""
    return {"task": task, **asdict(result)}
