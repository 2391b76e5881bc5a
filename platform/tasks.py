"""Tasks and their ordered label sets. Labels can be appended (classes appear over time),
never removed or reordered: stored labels and trained heads refer to them by position."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from driftloop.platform.errors import AlreadyExists, InvalidInput, NotFound
from driftloop.platform.storable import text_problem
from driftloop.platform.store.models import Task, TaskLabel, TextRecord

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class TaskSummary:
    name: str
    labels: list[str]
    created_at: datetime
    texts: int


def create_task(session: Session, name: str, labels: Sequence[str]) -> Task:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"task name {name!r} is not valid: use 1-100 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            field="name",
        )
    clean = _clean_labels(labels)
    if not clean:
        raise InvalidInput("a task needs at least one label", field="labels")
    if session.scalar(select(Task.id).where(Task.name == name)) is not None:
        raise AlreadyExists(f"task {name!r} already exists", task=name)
    task = Task(name=name, settings={})
    task.labels = [TaskLabel(name=label, position=i) for i, label in enumerate(clean)]
    session.add(task)
    session.flush()
    return task


def ensure_task(session: Session, name: str, labels: Sequence[str]) -> bool:
    """The task, created with ``labels`` when it does not exist yet, else given those it lacks
    (appended); True when it was created."""
    if session.scalar(select(Task.id).where(Task.name == name)) is None:
        create_task(session, name, labels)
        return True
    add_labels(session, name, labels)
    return False


def add_labels(session: Session, name: str, labels: Sequence[str]) -> Task:
    """Append labels that are new to the task; labels it already has are left as they are."""
    task = get_task(session, name, lock=True)
    existing = [label.name for label in task.labels]
    new = [label for label in _clean_labels(labels) if label not in existing]
    task.labels.extend(TaskLabel(name=label, position=len(existing) + i) for i, label in enumerate(new))
    session.flush()
    return task


def get_task(session: Session, name: str, *, lock: bool = False) -> Task:
    # A name no task can have is not looked up: it may hold what the database refuses (a NUL).
    task = None
    if _NAME.fullmatch(name):
        query = select(Task).where(Task.name == name).options(selectinload(Task.labels))
        if lock:
            query = query.with_for_update()
        task = session.scalar(query)
    if task is None:
        raise NotFound(f"no task named {name!r} (see `driftloop task list`)", task=name)
    return task


def list_tasks(session: Session) -> list[TaskSummary]:
    counts = dict(session.execute(select(TextRecord.task_id, func.count()).group_by(TextRecord.task_id)).all())
    tasks = session.scalars(select(Task).options(selectinload(Task.labels)).order_by(Task.name))
    return [
        TaskSummary(t.name, [label.name for label in t.labels], t.created_at, counts.get(t.id, 0)) for t in tasks
    ]


def summarize(session: Session, task: Task) -> TaskSummary:
    """One task as ``list_tasks`` shows it, with its text count."""
    texts = session.scalar(select(func.count()).select_from(TextRecord).where(TextRecord.task_id == task.id))
    return TaskSummary(task.name, label_names(task), task.created_at, texts or 0)


def set_store_predictions(session: Session, name: str, store: bool) -> Task:
    """Whether the task's prediction requests store their texts when they do not say (``?store=``)."""
    task = get_task(session, name, lock=True)
    task.settings = {**task.settings, "store_predictions": store}
    return task


def stores_predictions(task: Task, default: bool) -> bool:
    """The task's own choice (:func:`set_store_predictions`), else ``default`` (DRIFTLOOP_PREDICT_STORE)."""
    return bool(task.settings.get("store_predictions", default))


def label_names(task: Task) -> list[str]:
    return [label.name for label in task.labels]


def _clean_labels(labels: Sequence[str]) -> list[str]:
    clean: list[str] = []
    for raw in labels:
        label = raw.strip() if isinstance(raw, str) else raw
        if not isinstance(label, str) or not label:
            raise InvalidInput(f"label {raw!r} is empty or not a string", field="labels")
        if problem := text_problem(label):
            raise InvalidInput(f"label {label[:40]!r} {problem}", field="labels")
        if len(label) > 200:
            raise InvalidInput(f"label {label[:40]!r}... is over 200 characters", field="labels")
        if label in clean:
            raise InvalidInput(f"label {label!r} is given twice", field="labels")
        clean.append(label)
    return clean
