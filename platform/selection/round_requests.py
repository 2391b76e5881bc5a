"""A selection round's request: what it holds, how it is checked, and how it is queued.

Apart from :mod:`driftloop.platform.selection.rounds` so that submitting a round imports nothing
heavy (no torch, faiss or scikit-learn): ``select --no-wait`` and ``POST …/select`` answer at once,
and refuse what the round would refuse — an unknown task or strategy, a budget under one, nothing
left to pick — with the same error, before a job exists.
"""

from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import Engine, exists, select
from sqlalchemy.orm import Session

from driftloop.platform.config import Settings
from driftloop.platform.errors import InvalidInput
from driftloop.platform.jobs import submit
from driftloop.platform.selection.choices import STRATEGY_NAMES
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Label, SelectionPick, TextRecord
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task


@dataclass(frozen=True)
class SelectionRequest:
    task: str
    budget: int
    strategy: str = "hybrid"
    window_days: float | None = None
    random_fraction: float = 0.0
    seed: int = 0


def check_request(request: SelectionRequest) -> None:
    """Refuse a request no round can run, before any job is made for it."""
    if request.budget < 1:
        raise InvalidInput("the budget must be at least 1", field="budget")
    if request.strategy not in STRATEGY_NAMES:
        raise InvalidInput(f"unknown selection strategy {request.strategy!r}: use one of {', '.join(STRATEGY_NAMES)}", field="strategy")


def check_pool(session: Session, request: SelectionRequest) -> None:
    """Refuse a round with nothing to pick from: no unlabeled, unpicked text in its window."""
    task = get_task(session, request.task)
    if not unlabeled_pool(session, task.id, window_days=request.window_days, max_pool=1):
        raise nothing_to_pick(request.task)


def unlabeled_pool(session: Session, task_id: int, *, window_days: float | None = None, max_pool: int) -> list[int]:
    """The texts a round may pick: no label, never picked; newest first, at most ``max_pool``."""
    query = (
        select(TextRecord.id)
        .where(
            TextRecord.task_id == task_id,
            ~exists().where(Label.text_id == TextRecord.id),
            ~exists().where(SelectionPick.task_id == task_id, SelectionPick.text_id == TextRecord.id),
        )
        .order_by(TextRecord.received_at.desc(), TextRecord.id.desc())
        .limit(max_pool)
    )
    if window_days is not None:
        query = query.where(TextRecord.received_at >= utcnow() - timedelta(days=window_days))
    return list(session.scalars(query))


def nothing_to_pick(task: str) -> InvalidInput:
    return InvalidInput(f"task {task} has no unlabeled, unpicked texts in the selection window", task=task)


def submit_selection(engine: Engine, settings: Settings, request: SelectionRequest, *, runner: str = "thread") -> int:
    """Queue a selection round as a job and have it run (:func:`driftloop.platform.jobs.submit`); its
    id. Raises what the round would raise at its start, and queues nothing then."""
    check_request(request)
    with session_scope(engine, read_only=True) as session:
        check_pool(session, request)
    return submit(engine, settings, "select", request.task, asdict(request), runner=runner)
