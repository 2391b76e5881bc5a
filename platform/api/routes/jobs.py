from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from driftloop.platform.api.deps import RowNumber, SessionDep, SettingsDep
from driftloop.platform.api.errors import declare
from driftloop.platform.jobs import get_job

router = APIRouter(tags=["jobs"])


class JobPublic(BaseModel):
    id: int
    kind: str
    state: str
    progress: float
    message: str | None
    error: str | None
    result: dict | None
    owner_host: str | None
    owner_pid: int | None
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@router.get("/v1/jobs/{job_id}", responses=declare(404, 422))
def read_job(job_id: RowNumber, session: SessionDep, settings: SettingsDep) -> JobPublic:
    # a job whose process died is marked failed here rather than shown as running
    job = get_job(session, job_id, lost_after=settings.job_lost_after_seconds)
    return JobPublic(
        id=job.id,
        kind=job.kind,
        state=job.state.value,
        progress=job.progress,
        message=job.message,
        error=job.error,
        result=job.result,
        owner_host=job.owner_host,
        owner_pid=job.owner_pid,
        heartbeat_at=job.heartbeat_at,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )
