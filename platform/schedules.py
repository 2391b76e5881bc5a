"""Schedules: stored in SQL, editable at run time, fired by a scheduler (:mod:`driftloop.platform.scheduler`).

A schedule is an action for a task (``train``, ``select``, ``sync``, ``loop``, ``drift``: a kind of
job) with parameters, and exactly one trigger: every N seconds (``30s``, ``10m``, ``6h``, ``1d``),
a cron expression (five fields, in UTC), N new train labels, or a drift report. It can be paused
and resumed. Every firing is recorded in ``schedule_firings``: the job it enqueued, or why nothing
was (``job 12 (train) is still running``, an action whose kind of job this process does not know).

**Why our own small scheduler, not celery beat with a SQL-backed scheduler (sqlalchemy-celery-beat).**
The schedules must live in our own Alembic migrations (that library brings tables and migrations
of its own); they carry triggers that are not times (after N labels, on drift), which celery beat
has no notion of; they must fire in-process with no broker at all (the embedded default:
``driftloop serve`` runs them beside the API); and every firing, or the reason it was skipped, is
recorded. Celery stays the transport when a broker is configured: a firing submits a job through
:func:`driftloop.platform.jobs.submit` like any other caller. Cron expressions are parsed and
evaluated by the maintained ``cronsim`` package.

**Exactly once per period, whoever runs.** A firing claims its slot with a compare-and-set on the
schedule's row (``UPDATE … SET next_run_at = :next, last_fired_at = :now WHERE id = :id AND
next_run_at IS NOT DISTINCT FROM :seen AND last_fired_at IS NOT DISTINCT FROM :seen_last``): of
any number of schedulers that saw the same due schedule, one updates the row and records the
firing and submits; the others change nothing. ``next_run_at`` becomes the first time after *now*
(on the schedule's grid for ``every``), so a schedule that was due several times while no
scheduler ran fires once when one returns, not once per missed period. On PostgreSQL the
scheduler also holds an advisory lock, so that one scheduler acts at a time and the others stand by.

**Coalescing.** Before submitting, a firing looks for a job of the same kind for the same task
that is still queued or running (lost ones are reaped first): if there is one, the firing is
recorded as skipped, with that job's id, instead of queueing a second one behind it.

**Label counts.** ``after_labels N`` fires when N train labels arrived after the champion's data
cutoff (the labels the next training would learn from) and after the schedule last fired.

**Drift.** :func:`on_drift` is the hook drift detection calls: it fires the task's ``on_drift``
schedules.
"""

import logging
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from cronsim import CronSim, CronSimError
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from driftloop.platform import durations, jobs
from driftloop.platform.config import Settings
from driftloop.platform.durations import format_duration
from driftloop.platform.errors import AlreadyExists, Conflict, DriftloopError, InvalidInput, NotFound
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.choices import MODES, REPLAY_STRATEGIES
from driftloop.platform.selection.choices import STRATEGY_NAMES
from driftloop.platform.storable import text_problem
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Schedule, ScheduleAction, ScheduleFiring, Task
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task

log = logging.getLogger(__name__)

ACTIONS = tuple(a.value for a in ScheduleAction)
MAX_EVERY_SECONDS = 366 * 86400
MAX_AFTER_LABELS = 10**9
RECENT_FIRINGS = 20


@dataclass(frozen=True)
class FiringInfo:
    """One firing: the job it enqueued, or why it enqueued none."""

    id: int
    schedule: int
    task: str
    action: str
    fired_at: datetime
    job: int | None
    skipped: str | None
    trigger: str


@dataclass(frozen=True)
class ScheduleInfo:
    id: int
    task: str
    action: str
    trigger: str  # "every 6h", "cron 0 3 * * *", "after 200 labels", "on drift"
    every_seconds: int | None
    cron: str | None
    after_labels: int | None
    on_drift: bool
    params: dict[str, Any]
    paused: bool
    created_at: datetime
    last_fired_at: datetime | None
    next_run_at: datetime | None


@dataclass(frozen=True)
class ScheduleDetail(ScheduleInfo):
    firings: list[FiringInfo]  # the newest first


# --- parameters, checked when a schedule is added ------------------------------------------


@dataclass(frozen=True)
class _Param:
    kind: type
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    required: bool = False

    def check(self, key: str, value: Any) -> Any:
        where = f"params.{key}"
        if self.kind is bool:
            if not isinstance(value, bool):
                raise InvalidInput(f"param {key} must be true or false, not {_shown(value)}", field=where)
            return value
        if self.kind is str:
            if not isinstance(value, str) or value not in (self.choices or ()):
                raise InvalidInput(f"param {key} must be one of {', '.join(self.choices or ())}, not {_shown(value)}", field=where)
            return value
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if self.kind is int and not (numeric and float(value).is_integer()):
            raise InvalidInput(f"param {key} must be an integer, not {_shown(value)}", field=where)
        if self.kind is float and not (numeric and math.isfinite(value)):
            raise InvalidInput(f"param {key} must be a number, not {_shown(value)}", field=where)
        number = int(value) if self.kind is int else float(value)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise InvalidInput(f"param {key} must be from {self.low:g} to {self.high:g}, not {_shown(value)}", field=where)
        return number


_SEED = _Param(int, 0, 2**31 - 1)
# The same bounds as the API's train and select requests.
_PARAMS: dict[str, dict[str, _Param]] = {
    "train": {
        "mode": _Param(str, choices=MODES),
        "replay": _Param(str, choices=REPLAY_STRATEGIES),
        "epochs": _Param(int, 1, 10_000),
        "seed": _SEED,
        "distill": _Param(float, 0.0, 100.0),
        "promote": _Param(bool),
    },
    "select": {
        "budget": _Param(int, 1, 100_000, required=True),
        "strategy": _Param(str, choices=STRATEGY_NAMES),
        "window_days": _Param(float, 1e-9, 36_500),
        "random_fraction": _Param(float, 0.0, 1.0),
        "seed": _SEED,
    },
    "sync": {},
    "loop": {  # one pass of the loop (labeling/loop.py): sync, a training after retrain_after labels, a round of budget
        "budget": _Param(int, 1, 100_000),
        "retrain_after": _Param(int, 1, MAX_AFTER_LABELS),
        "strategy": _Param(str, choices=STRATEGY_NAMES),
    },
}


def check_params(action: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked for ``action`` (now, not when it fires), numbers as their type.

    ``drift`` is a kind of job yet to come: it takes any scalar values (text, numbers, true/false),
    checked only for what the store can hold."""
    if not isinstance(params, dict):
        raise InvalidInput("params must be an object of names and values", field="params")
    spec = _PARAMS.get(action)
    if spec is None:
        return {key: _free_value(key, value) for key, value in params.items()}
    unknown = sorted(set(params) - set(spec))
    if unknown:
        allowed = ", ".join(spec) or "none"
        raise InvalidInput(f"{action} takes no param {_shown(unknown[0])} (its params: {allowed})", field=f"params.{unknown[0]}")
    missing = [key for key, param in spec.items() if param.required and key not in params]
    if missing:
        raise InvalidInput(f"{action} needs the param {missing[0]} (e.g. {missing[0]}=50)", field=f"params.{missing[0]}")
    return {key: spec[key].check(key, value) for key, value in params.items()}


def _free_value(key: str, value: Any) -> Any:
    problem = text_problem(key) if isinstance(key, str) else "is not text"
    if problem or not 0 < len(key) <= 100:
        raise InvalidInput(f"param name {_shown(key)} {problem or 'must be 1 to 100 characters'}", field="params")
    where = f"params.{key}"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise InvalidInput(f"param {key} is out of range (at most 2**53)", field=where)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"param {key} must be a finite number", field=where)
        return value
    if isinstance(value, str):
        problem = text_problem(value)
        if problem or len(value) > 1000:
            raise InvalidInput(f"param {key} {problem or 'is longer than 1000 characters'}", field=where)
        return value
    raise InvalidInput(f"param {key} must be text, a number, true or false, not {type(value).__name__}", field=where)


def parse_duration(value: str) -> int:
    """``30s``, ``10m``, ``6h``, ``1d`` as seconds."""
    return durations.parse_duration(value, field="every", maximum=MAX_EVERY_SECONDS)


def _shown(value: object) -> str:
    """``value`` as an error message quotes it: at most 100 characters of it."""
    text = repr(value)
    return text if len(text) <= 100 else f"{text[:100]}…"


def _next_cron(expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``expression`` names (UTC)."""
    return next(CronSim(expression, after))


def _check_cron(expression: str, now: datetime) -> datetime:
    if not isinstance(expression, str) or not expression.strip() or len(expression) > 200 or text_problem(expression):
        raise InvalidInput(f"cron: {_shown(expression)} is not a cron expression: use five fields, e.g. \"0 3 * * *\"", field="cron")
    try:
        return _next_cron(expression, now)
    except (CronSimError, ValueError, StopIteration) as error:
        raise InvalidInput(f"cron: {_shown(expression)} is not a valid cron expression: {error}", field="cron") from None


# --- the services --------------------------------------------------------------------------


def add(
    session: Session,
    task: str,
    action: str,
    *,
    every: str | None = None,
    cron: str | None = None,
    after_labels: int | None = None,
    on_drift: bool = False,
    params: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ScheduleInfo:
    """A new schedule of ``action`` for ``task`` with exactly one trigger; refused with what is
    wrong and where (``InvalidInput.detail["field"]``) before anything is stored."""
    now = now or utcnow()
    found = get_task(session, task)
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {_shown(action)}: use one of {', '.join(ACTIONS)}", field="action")
    given = [name for name, value in (("every", every), ("cron", cron), ("after_labels", after_labels)) if value is not None]
    given += ["on_drift"] if on_drift else []
    if len(given) != 1:
        said = f"got {' and '.join(given)}" if given else "got none"
        raise InvalidInput(f"a schedule needs exactly one trigger: every, cron, after_labels or on_drift ({said})", field="trigger")
    schedule = Schedule(action=ScheduleAction(action), on_drift=on_drift, paused=False, created_at=now)
    if every is not None:
        schedule.every_seconds = parse_duration(every)
        schedule.next_run_at = now + timedelta(seconds=schedule.every_seconds)
    elif cron is not None:
        schedule.next_run_at = _check_cron(cron, now)
        schedule.cron = cron.strip()
    elif after_labels is not None:
        if isinstance(after_labels, bool) or not isinstance(after_labels, int) or not 0 < after_labels <= MAX_AFTER_LABELS:
            raise InvalidInput(f"after_labels must be a whole number from 1 to {MAX_AFTER_LABELS}, not {after_labels!r}", field="after_labels")
        schedule.after_labels = after_labels
    schedule.params = check_params(action, params or {})
    schedule.task_id = found.id
    for other in session.scalars(select(Schedule).where(Schedule.task_id == found.id)):
        if _same(other, schedule):
            raise AlreadyExists(f"schedule {other.id} of task {task} is the same ({_info(other, task).trigger}, {action})", schedule=other.id)
    session.add(schedule)
    session.flush()
    return _info(schedule, found.name)


def list_schedules(session: Session, task: str | None = None) -> list[ScheduleInfo]:
    """Every schedule (of one task, or of all), oldest first."""
    query = select(Schedule, Task.name).join(Task, Task.id == Schedule.task_id).order_by(Schedule.id)
    if task is not None:
        query = query.where(Schedule.task_id == get_task(session, task).id)
    return [_info(schedule, name) for schedule, name in session.execute(query)]


def show(session: Session, schedule_id: int, task: str | None = None, *, firings: int = RECENT_FIRINGS) -> ScheduleDetail:
    """A schedule and its latest ``firings``, the newest first."""
    schedule, name = _load(session, schedule_id, task)
    rows = session.scalars(
        select(ScheduleFiring).where(ScheduleFiring.schedule_id == schedule.id).order_by(ScheduleFiring.id.desc()).limit(firings)
    )
    return ScheduleDetail(**asdict(_info(schedule, name)), firings=[_firing(f, schedule, name) for f in rows])


def pause(session: Session, schedule_id: int, task: str | None = None) -> ScheduleInfo:
    """Pause a schedule: it never fires until resumed (what falls due meanwhile is not caught up)."""
    schedule, name = _load(session, schedule_id, task, lock=True)
    if schedule.paused:
        raise Conflict(f"schedule {schedule.id} is paused already", schedule=schedule.id)
    schedule.paused = True
    session.flush()
    return _info(schedule, name)


def resume(session: Session, schedule_id: int, task: str | None = None, *, now: datetime | None = None) -> ScheduleInfo:
    """Resume a paused schedule; a time trigger fires next at its first time after now."""
    schedule, name = _load(session, schedule_id, task, lock=True)
    if not schedule.paused:
        raise Conflict(f"schedule {schedule.id} is not paused", schedule=schedule.id)
    schedule.paused = False
    now = now or utcnow()
    if schedule.next_run_at is not None and schedule.next_run_at <= now:
        schedule.next_run_at = _next_time(schedule, now)
    session.flush()
    return _info(schedule, name)


def remove(session: Session, schedule_id: int, task: str | None = None) -> ScheduleInfo:
    """Delete a schedule and its firings; what it was."""
    schedule, name = _load(session, schedule_id, task, lock=True)
    info = _info(schedule, name)
    session.delete(schedule)
    session.flush()
    return info


def due(session: Session, now: datetime) -> list[int]:
    """The ids of the schedules that should fire at ``now``: time triggers whose time has come,
    and label triggers with enough new labels. Drift triggers fire only through :func:`on_drift`."""
    timed = session.scalars(
        select(Schedule.id).where(Schedule.paused.is_(False), Schedule.next_run_at.is_not(None), Schedule.next_run_at <= now)
    )
    ids = set(timed)
    for schedule in session.scalars(select(Schedule).where(Schedule.paused.is_(False), Schedule.after_labels.is_not(None))):
        if new_train_labels(session, schedule) >= schedule.after_labels:  # type: ignore[operator]
            ids.add(schedule.id)
    return sorted(ids)


def next_due_at(session: Session) -> datetime | None:
    """The soonest time a time trigger falls due (a scheduler sleeps no longer than that)."""
    return session.scalar(select(func.min(Schedule.next_run_at)).where(Schedule.paused.is_(False)))


def new_train_labels(session: Session, schedule: Schedule) -> int:
    """Train labels of the schedule's task that arrived after the champion's data cutoff and
    after the schedule last fired."""
    return registry.new_train_labels(session, schedule.task_id, since=schedule.last_fired_at)


def fire(
    engine: Engine,
    settings: Settings,
    schedule_id: int,
    now: datetime,
    *,
    runner: str = "thread",
    drift: str | None = None,
) -> FiringInfo | None:
    """Fire the schedule if it is due at ``now`` and this caller wins its slot (see the module's
    docstring): the recorded firing, or None when it was not due, paused, or another scheduler
    fired it. ``drift`` (what drift detection found) fires an ``on_drift`` schedule; nothing
    else does. ``runner`` is where its job runs when no broker is configured (see
    :func:`driftloop.platform.jobs.submit`)."""
    with session_scope(engine) as session:
        row = session.execute(select(Schedule, Task.name).join(Task, Task.id == Schedule.task_id).where(Schedule.id == schedule_id)).first()
        if row is None or row[0].paused:
            return None
        schedule, task = row
        trigger = _trigger_now(session, schedule, now, drift)
        if trigger is None:
            return None
        following = _next_time(schedule, now) if schedule.next_run_at is not None else None
        claimed = session.execute(
            update(Schedule)
            .where(
                Schedule.id == schedule.id,
                Schedule.paused.is_(False),
                Schedule.next_run_at.is_not_distinct_from(schedule.next_run_at),
                Schedule.last_fired_at.is_not_distinct_from(schedule.last_fired_at),
            )
            .values(next_run_at=following, last_fired_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            return None  # another scheduler fired it, or it was edited meanwhile
        action = schedule.action.value
        skipped = _still_live(session, settings, schedule.task_id, action)
        firing = ScheduleFiring(schedule_id=schedule.id, fired_at=now, skipped=skipped, trigger_detail=trigger[:500])
        session.add(firing)
        session.flush()
        firing_id, params = firing.id, dict(schedule.params)
    if skipped is None:
        job_id, skipped = _submit(engine, settings, action, task, params, runner)
        with session_scope(engine) as session:
            session.execute(update(ScheduleFiring).where(ScheduleFiring.id == firing_id).values(job_id=job_id, skipped=skipped))
    else:
        job_id = None
    return FiringInfo(firing_id, schedule_id, task, action, now, job_id, skipped, trigger[:500])


def on_drift(engine: Engine, settings: Settings, task: str, *, detail: str = "", runner: str = "thread") -> list[FiringInfo]:
    """The hook drift detection calls when it finds drift in ``task``: fire the task's unpaused
    ``on_drift`` schedules; their firings. ``detail`` (what drifted) is recorded with each."""
    with session_scope(engine) as session:
        task_id = get_task(session, task).id
        ids = list(
            session.scalars(
                select(Schedule.id).where(Schedule.task_id == task_id, Schedule.on_drift.is_(True), Schedule.paused.is_(False)).order_by(Schedule.id)
            )
        )
    now = utcnow()
    fired = (fire(engine, settings, schedule_id, now, runner=runner, drift=detail) for schedule_id in ids)
    return [firing for firing in fired if firing is not None]


# --- helpers -------------------------------------------------------------------------------


def _trigger_now(session: Session, schedule: Schedule, now: datetime, drift: str | None) -> str | None:
    """What fires the schedule at ``now`` (its trigger detail), or None when nothing does."""
    if schedule.on_drift:
        return None if drift is None else f"on drift: {drift}" if drift else "on drift"
    if schedule.after_labels is not None:
        new = new_train_labels(session, schedule)
        return f"after {schedule.after_labels} labels: {new} new" if new >= schedule.after_labels else None
    if schedule.next_run_at is None or schedule.next_run_at > now:
        return None
    late = (now - schedule.next_run_at).total_seconds()
    trigger = f"every {format_duration(schedule.every_seconds)}" if schedule.every_seconds else f"cron {schedule.cron}"
    return trigger if late < 60 else f"{trigger} (due {schedule.next_run_at.isoformat(timespec='seconds')}: late, fired once)"


def _next_time(schedule: Schedule, now: datetime) -> datetime:
    """The schedule's first time after ``now``: on its grid (``every``), or its cron's."""
    if schedule.every_seconds:
        every = timedelta(seconds=schedule.every_seconds)
        seen = schedule.next_run_at or now
        if seen > now:
            return seen
        return seen + every * ((now - seen) // every + 1)
    return _next_cron(schedule.cron, now)  # type: ignore[arg-type]


def _still_live(session: Session, settings: Settings, task_id: int, kind: str) -> str | None:
    """Why a firing should queue no job: one of the same kind for the task is queued or running."""
    live = jobs.live_job(session, task_id, kind, lost_after=settings.job_lost_after_seconds)
    return None if live is None else f"job {live.id} ({kind}) is still {live.state.value}"


def _submit(engine: Engine, settings: Settings, action: str, task: str, params: dict[str, Any], runner: str) -> tuple[int | None, str | None]:
    """Submit the action's job: (its id, None), or (None, why it could not be)."""
    try:
        if action == "train":  # refused, and recorded as skipped, when there is nothing new to learn
            from driftloop.platform.modeling.round_requests import request_from_params, submit_train

            request = request_from_params(_job_params(settings, action, task, params))
            return submit_train(engine, settings, request, runner=runner), None
        return jobs.submit(engine, settings, action, task, _job_params(settings, action, task, params), runner=runner), None
    except DriftloopError as error:  # a kind of job this process does not know, nothing to learn...
        return None, error.message
    except Exception as error:  # a broker that does not answer: recorded, and the next period tries again
        log.exception("schedule firing for task %s (%s) could not submit its job", task, action)
        return None, f"{type(error).__name__}: {error}"


def _job_params(settings: Settings, action: str, task: str, params: dict[str, Any]) -> dict[str, Any]:
    """A job's params for the action, as its other callers (the CLI, the API) build them."""
    if action == "train":
        from driftloop.platform.modeling.round_requests import RoundRequest, TrainingConfig, request_params

        training = TrainingConfig(epochs=params.get("epochs"), distill_weight=params.get("distill", 0.0), seed=params.get("seed", 0))
        request = RoundRequest(
            task=task,
            mode=params.get("mode", "head"),
            replay=params.get("replay", "reservoir"),
            replay_ratio=settings.replay_ratio,
            replay_capacity=settings.replay_capacity,
            training=training,
            promote=params.get("promote", True),
        )
        return request_params(request)
    if action == "select":
        from driftloop.platform.selection.round_requests import SelectionRequest

        return asdict(SelectionRequest(task=task, **params))
    return {"task": task, **params}


def _same(one: Schedule, other: Schedule) -> bool:
    fields = ("action", "every_seconds", "cron", "after_labels", "on_drift", "params")
    return all(getattr(one, name) == getattr(other, name) for name in fields)


def _load(session: Session, schedule_id: int, task: str | None, *, lock: bool = False) -> tuple[Schedule, str]:
    query = select(Schedule, Task.name).join(Task, Task.id == Schedule.task_id).where(Schedule.id == schedule_id)
    if task is not None:
        query = query.where(Schedule.task_id == get_task(session, task).id)
    if lock:
        query = query.with_for_update(of=Schedule)
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"no schedule {schedule_id}{f' for task {task}' if task is not None else ''}", schedule=schedule_id)
    return row[0], row[1]


def _describe(schedule: Schedule) -> str:
    if schedule.every_seconds is not None:
        return f"every {format_duration(schedule.every_seconds)}"
    if schedule.cron is not None:
        return f"cron {schedule.cron}"
    if schedule.after_labels is not None:
        return f"after {schedule.after_labels} labels"
    return "on drift"


def _info(schedule: Schedule, task: str) -> ScheduleInfo:
    return ScheduleInfo(
        id=schedule.id,
        task=task,
        action=schedule.action.value,
        trigger=_describe(schedule),
        every_seconds=schedule.every_seconds,
        cron=schedule.cron,
        after_labels=schedule.after_labels,
        on_drift=schedule.on_drift,
        params=dict(schedule.params or {}),
        paused=schedule.paused,
        created_at=schedule.created_at,
        last_fired_at=schedule.last_fired_at,
        next_run_at=schedule.next_run_at,
    )


def _firing(firing: ScheduleFiring, schedule: Schedule, task: str) -> FiringInfo:
    return FiringInfo(
        id=firing.id,
        schedule=schedule.id,
        task=task,
        action=schedule.action.value,
        fired_at=firing.fired_at,
        job=firing.job_id,
        skipped=firing.skipped,
        trigger=firing.trigger_detail,
    )
