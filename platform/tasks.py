"""Tasks and their ordered label sets. Labels can be appended (classes appear over time),
never removed or reordered: stored labels and trained heads refer to them by position."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from driftloop.platform.config import Settings
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


def update_settings(
    session: Session,
    name: str,
    *,
    store_predictions: bool | None = None,
    gate_policy: str | None = None,
    half_life_labels: int | None = None,
    eval_fraction: float | None = None,
) -> Task:
    """Set some of task NAME's own settings (None: left as it is). Gate values go under
    ``settings["gate"]``, where the gate reads its rules; the others are checked here."""
    gate = {key: value for key, value in (("policy", gate_policy), ("half_life_labels", half_life_labels)) if value is not None}
    if not gate and store_predictions is None and eval_fraction is None:
        raise InvalidInput("nothing to change: give gate, half_life_labels, eval_fraction or store_predictions")
    task = get_task(session, name, lock=True)
    changed = dict(task.settings)
    if gate:
        changed["gate"] = _checked_gate({**(task.settings.get("gate") or {}), **gate})
    if eval_fraction is not None:
        # NaN fails the comparison too
        if isinstance(eval_fraction, bool) or not isinstance(eval_fraction, int | float) or not 0 <= eval_fraction < 1:
            raise InvalidInput(f"eval_fraction must be a number from 0 up to, not including, 1; got {eval_fraction!r}", field="eval_fraction")
        changed["eval_fraction"] = float(eval_fraction)
    if store_predictions is not None:
        if not isinstance(store_predictions, bool):
            raise InvalidInput(f"store_predictions must be true or false, got {store_predictions!r}", field="store_predictions")
        changed["store_predictions"] = store_predictions
    task.settings = changed  # a new dict: the JSON column sees a change only when it is assigned
    session.flush()
    return task


def _checked_gate(rules: dict[str, object]) -> dict[str, object]:
    # Here, not at import: the gate imports scikit-learn (its metrics), which `task list` must not load.
    from driftloop.platform.evaluation.gate import GateRules

    try:
        GateRules.from_dict(rules)
    except ValueError as error:
        raise InvalidInput(str(error), field="gate") from None
    return rules


@dataclass(frozen=True)
class TaskSettings:
    """A task's effective settings: its own value where it set one, else the default."""

    gate: str  # the gate's policy
    half_life_labels: int
    eval_fraction: float
    store_predictions: bool
    # the settings the task did not set: they follow the defaults, and change with them
    defaults: list[str]


def task_settings(task: Task, settings: Settings) -> TaskSettings:
    """``task``'s settings as :func:`update_settings` sets them, defaults filled in: the gate's
    from :class:`GateRules`, ``eval_fraction`` and ``store_predictions`` from ``settings``
    (DRIFTLOOP_EVAL_FRACTION, DRIFTLOOP_PREDICT_STORE)."""
    from driftloop.platform.evaluation.gate import GateRules  # scikit-learn: see _checked_gate

    gate = task.settings.get("gate") or {}
    rules = GateRules()
    # (the task's own value or None, the default)
    values: dict[str, tuple[Any, Any]] = {
        "gate": (gate.get("policy"), rules.policy),
        "half_life_labels": (gate.get("half_life_labels"), rules.half_life_labels),
        "eval_fraction": (task.settings.get("eval_fraction"), settings.eval_fraction),
        "store_predictions": (task.settings.get("store_predictions"), settings.predict_store),
    }
    return TaskSettings(
        **{name: default if own is None else own for name, (own, default) in values.items()},
        defaults=[name for name, (own, _) in values.items() if own is None],
    )


def settings_by_task(session: Session, settings: Settings) -> dict[str, TaskSettings]:
    """Every task's :func:`task_settings`, by task name (``list_tasks`` leaves them out: their
    defaults come from the gate, which `task list` does not load)."""
    return {task.name: task_settings(task, settings) for task in session.scalars(select(Task))}


def stores_predictions(task: Task, default: bool) -> bool:
    """The task's own choice (:func:`update_settings`), else ``default`` (DRIFTLOOP_PREDICT_STORE)."""
    return bool(task.settings.get("store_predictions", default))


def eval_fraction_of(task: Task, default: float) -> float:
    """The share of each class's new labels the task holds out for eval: its own
    (:func:`update_settings`), else ``default`` (DRIFTLOOP_EVAL_FRACTION)."""
    return float(task.settings.get("eval_fraction", default))


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
