"""A task's schedules over HTTP: add, list, show (with its latest firings), pause, resume, remove.
A scheduler (``driftloop beat``, or ``driftloop serve`` itself without a broker) sees a change at
its next tick."""

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from driftloop.platform import schedules
from driftloop.platform.api.auth import KeyCheckedRoute, require
from driftloop.platform.api.deps import ReadSessionDep, RowNumber, SessionDep
from driftloop.platform.api.errors import declare

router = APIRouter(prefix="/v1/tasks/{task}/schedules", tags=["schedules"], route_class=KeyCheckedRoute)

Scalar = str | int | float | bool | None


class ScheduleCreate(BaseModel):
    action: Literal["train", "select", "sync", "drift", "loop"]
    every: str | None = Field(None, description="a duration: 30s, 10m, 6h, 1d", examples=["6h"])
    cron: str | None = Field(None, description="a cron expression of five fields, in UTC", examples=["0 3 * * *"])
    after_labels: int | None = Field(None, ge=1, le=schedules.MAX_AFTER_LABELS, description="after this many new train labels")
    on_drift: bool = Field(False, description="when drift detection reports drift in the task")
    params: dict[str, Scalar] = Field(
        default_factory=dict,
        description="the action's: select needs budget; train takes mode, replay, epochs, seed, distill, promote; loop budget, retrain_after, strategy",
    )


class SchedulePublic(BaseModel):
    id: int
    task: str
    action: str
    trigger: str = Field(description='"every 6h", "cron 0 3 * * *", "after 200 labels" or "on drift"')
    every_seconds: int | None
    cron: str | None
    after_labels: int | None
    on_drift: bool
    params: dict[str, Any]
    paused: bool
    created_at: datetime
    last_fired_at: datetime | None
    next_run_at: datetime | None


class FiringPublic(BaseModel):
    id: int
    fired_at: datetime
    trigger: str
    job: int | None = Field(description="the job it enqueued")
    skipped: str | None = Field(description="why it enqueued none")


class ScheduleDetailPublic(SchedulePublic):
    firings: list[FiringPublic] = Field(description="the latest firings, newest first")


def _public(info: schedules.ScheduleInfo) -> SchedulePublic:
    return SchedulePublic(**{k: v for k, v in asdict(info).items() if k in SchedulePublic.model_fields})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=declare(400, 401, 403, 404, 409, 422),
    dependencies=[require("admin")],
)
def add_schedule(task: str, body: ScheduleCreate, session: SessionDep, response: Response) -> SchedulePublic:
    """Add a schedule with exactly one trigger (``every``, ``cron``, ``after_labels`` or ``on_drift``);
    its parameters are checked now. 409 when the task has the same schedule already."""
    info = schedules.add(
        session, task, body.action, every=body.every, cron=body.cron, after_labels=body.after_labels, on_drift=body.on_drift, params=body.params
    )
    response.headers["Location"] = f"/v1/tasks/{task}/schedules/{info.id}"
    return _public(info)


@router.get("", responses=declare(401, 403, 404, 422), dependencies=[require()])
def list_schedules(task: str, session: ReadSessionDep) -> list[SchedulePublic]:
    return [_public(info) for info in schedules.list_schedules(session, task)]


@router.get("/{schedule_id}", responses=declare(401, 403, 404, 422), dependencies=[require()])
def show_schedule(task: str, schedule_id: RowNumber, session: ReadSessionDep) -> ScheduleDetailPublic:
    detail = schedules.show(session, schedule_id, task)
    firings = [FiringPublic(id=f.id, fired_at=f.fired_at, trigger=f.trigger, job=f.job, skipped=f.skipped) for f in detail.firings]
    return ScheduleDetailPublic(**_public(detail).model_dump(), firings=firings)


@router.post("/{schedule_id}/pause", responses=declare(401, 403, 404, 409, 422), dependencies=[require("admin")])
def pause_schedule(task: str, schedule_id: RowNumber, session: SessionDep) -> SchedulePublic:
    """Pause: it does not fire until resumed. 409 when it is paused already."""
    return _public(schedules.pause(session, schedule_id, task))


@router.post("/{schedule_id}/resume", responses=declare(401, 403, 404, 409, 422), dependencies=[require("admin")])
def resume_schedule(task: str, schedule_id: RowNumber, session: SessionDep) -> SchedulePublic:
    """Resume: a time trigger fires next at its first time after now. 409 when it is not paused."""
    return _public(schedules.resume(session, schedule_id, task))


@router.delete(
    "/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=declare(401, 403, 404, 422),
    dependencies=[require("admin")],
)
def remove_schedule(task: str, schedule_id: RowNumber, session: SessionDep) -> Response:
    """Remove the schedule and the record of its firings."""
    schedules.remove(session, schedule_id, task)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
