from typing import Annotated

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from driftloop.platform import tasks
from driftloop.platform.api.auth import KeyCheckedRoute, require
from driftloop.platform.api.deps import ReadSessionDep, SessionDep, SettingsDep
from driftloop.platform.api.errors import declare
from driftloop.platform.api.schemas import LabelsAdd, TaskCreate, TaskPublic, TaskSettingsPublic, TaskSettingsUpdate
from driftloop.platform.api_keys import KeyInfo
from driftloop.platform.config import Settings
from driftloop.platform.store.models import Task

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], route_class=KeyCheckedRoute)


def _public(session: Session, task: Task, settings: Settings) -> TaskPublic:
    summary = tasks.summarize(session, task)
    return TaskPublic(**vars(summary), settings=TaskSettingsPublic(**vars(tasks.task_settings(task, settings))))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=declare(400, 401, 403, 409, 422),
    dependencies=[require("admin", all_tasks=True)],
)
def create_task(body: TaskCreate, session: SessionDep, settings: SettingsDep) -> TaskPublic:
    return _public(session, tasks.create_task(session, body.name, body.labels), settings)


@router.get("", responses=declare(401))
def list_tasks(session: ReadSessionDep, settings: SettingsDep, key: Annotated[KeyInfo | None, require()]) -> list[TaskPublic]:
    """Every task; for a key bound to a task, that task alone."""
    effective = tasks.settings_by_task(session, settings)
    return [
        TaskPublic(**vars(t), settings=TaskSettingsPublic(**vars(effective[t.name])))
        for t in tasks.list_tasks(session)
        if key is None or key.task is None or key.task == t.name
    ]


@router.get("/{task}", responses=declare(401, 403, 404, 422), dependencies=[require()])
def get_task(task: str, session: ReadSessionDep, settings: SettingsDep) -> TaskPublic:
    return _public(session, tasks.get_task(session, task), settings)


@router.patch("/{task}", responses=declare(400, 401, 403, 404, 422), dependencies=[require("admin")])
def update_task(task: str, body: TaskSettingsUpdate, session: SessionDep, settings: SettingsDep) -> TaskPublic:
    """Change the task's own settings (at least one); the answer has every setting, defaults
    included. API processes serving the task apply store_predictions within
    DRIFTLOOP_SERVE_CHECK_SECONDS; the others apply from the next label or training round."""
    changed = tasks.update_settings(
        session,
        task,
        gate_policy=body.gate,
        half_life_labels=body.half_life_labels,
        eval_fraction=body.eval_fraction,
        store_predictions=body.store_predictions,
    )
    return _public(session, changed, settings)


@router.post("/{task}/labels", responses=declare(400, 401, 403, 404, 422), dependencies=[require("admin")])
def add_labels(task: str, body: LabelsAdd, session: SessionDep, settings: SettingsDep) -> TaskPublic:
    return _public(session, tasks.add_labels(session, task, body.labels), settings)
