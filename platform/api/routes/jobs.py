from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel

from driftloop.platform.api.auth import KeyCheckedRoute, require_for_job
from driftloop.platform.api.deps import RowNumber, SessionDep, SettingsDep
from driftloop.platform.api.errors import declare
from driftloop.platform.jobs import cancel_job, job_info

router = APIRouter(tags=["jobs"], route_class=KeyCheckedRoute)


class JobPublic(BaseModel):
    id: int
    kind: str
    task: str | None
    state: str
    progress: float
    message: str | None
    error: str | None
    result: dict | None
    owner_host: str | None
    owner_pid: int | None
    heartbeat_at: datetime | None
    attempts: int
    worker: str | None
    queue: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobAccepted(BaseModel):
    """The answer to slow work: the job that does it, queued, and where to follow it."""

    job: int
    state: str
    url: str


def accepted(job_id: int, response: Response) -> JobAccepted:
    """A 202's body and its ``Location`` for a job that was just submitted."""
    url = f"/v1/jobs/{job_id}"
    response.headers["Location"] = url
    return JobAccepted(job=job_id, state="queued", url=url)


@router.get("/v1/jobs/{job_id}", responses=declare(401, 403, 404, 422), dependencies=[require_for_job()])
def read_job(job_id: RowNumber, session: SessionDep, settings: SettingsDep) -> JobPublic:
    # a job whose process died is marked failed here rather than shown as running
    return JobPublic(**asdict(job_info(session, job_id, lost_after=settings.job_lost_after_seconds)))


@router.post(
    "/v1/jobs/{job_id}/cancel",
    responses=declare(401, 403, 404, 409, 422),
    dependencies=[require_for_job(cancel=True)],
)
def cancel(job_id: RowNumber, session: SessionDep, settings: SettingsDep) -> JobPublic:
    """Cancel a queued or running job: a queued one never starts, a running one stops at its next
    progress report and commits nothing. 409 when it has ended already."""
    cancel_job(session, job_id)
    session.flush()
    return JobPublic(**asdict(job_info(session, job_id, lost_after=settings.job_lost_after_seconds)))
