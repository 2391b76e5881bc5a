from typing import Annotated

from fastapi import APIRouter, status

from driftloop.platform import tasks
from driftloop.platform.api.auth import KeyCheckedRoute, require
from driftloop.platform.api.deps import ReadSessionDep, SessionDep
from driftloop.platform.api.errors import declare
from driftloop.platform.api.schemas import LabelsAdd, TaskCreate, TaskPublic
from driftloop.platform.api_keys import KeyInfo

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], route_class=KeyCheckedRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=declare(400, 401, 403, 409, 422),
    dependencies=[require("admin", all_tasks=True)],
)
def create_task(body: TaskCreate, session: SessionDep) -> TaskPublic:
    task = tasks.create_task(session, body.name, body.labels)
    return TaskPublic(name=task.name, labels=tasks.label_names(task), created_at=task.created_at, texts=0)


@router.get("", responses=declare(401))
def list_tasks(session: ReadSessionDep, key: Annotated[KeyInfo | None, require()]) -> list[TaskPublic]:
    """Every task; for a key bound to a task, that task alone."""
    return [
        TaskPublic(name=t.name, labels=t.labels, created_at=t.created_at, texts=t.texts)
        for t in tasks.list_tasks(session)
        if key is None or key.task is None or key.task == t.name
    ]


@router.get("/{task}", responses=declare(401, 403, 404, 422), dependencies=[require()])
def get_task(task: str, session: ReadSessionDep) -> TaskPublic:
    return TaskPublic(**vars(tasks.summarize(session, tasks.get_task(session, task))))


@router.post("/{task}/labels", responses=declare(400, 401, 403, 404, 422), dependencies=[require("admin")])
def add_labels(task: str, body: LabelsAdd, session: SessionDep) -> TaskPublic:
    return TaskPublic(**vars(tasks.summarize(session, tasks.add_labels(session, task, body.labels))))
