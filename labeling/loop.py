"""One pass of the active-learning loop for a task, as the ``loop`` job runs it (on a schedule,
on a worker or in ``driftloop loop run``):

1. sync: pending picks pushed to Argilla, annotators' answers read back as labels;
2. retrain: when ``retrain_after`` train labels have arrived since the champion's data cutoff
   and no training of the task is queued or running, a ``train`` job is queued (it runs on the
   ``train`` queue; train → gate → promote, then the pool is re-scored);
3. next round: when no pick is waiting for an answer, a selection round of ``budget`` texts is
   picked and pushed.

Each step does nothing when there is nothing to do, so a pass can run as often as wanted.
"""

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine

from driftloop.labeling.connection import connect, target
from driftloop.labeling.jobs import sync_summary
from driftloop.labeling.push import push_if_configured
from driftloop.labeling.sync import sync
from driftloop.platform import jobs
from driftloop.platform.config import Settings
from driftloop.platform.errors import InvalidInput, Unavailable
from driftloop.platform.labels.outbox import awaiting_answers
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.rounds import RoundRequest, request_params
from driftloop.platform.selection.rounds import SelectionRequest, run_selection
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task

DEFAULT_BUDGET = 50
DEFAULT_RETRAIN_AFTER = 200


@dataclass(frozen=True)
class LoopPass:
    task: str
    sync: dict[str, Any] | None  # None when no Argilla is configured (answers come by label import)
    new_labels: int
    training_job: int | None  # queued by this pass
    training_skipped: str | None  # why no training was queued
    awaiting_answers: int  # picks nobody has answered yet, before this pass selected
    selection_round: int | None
    picks: int
    pushed: int


def advance(engine: Engine, settings: Settings, task: str, *, budget: int = DEFAULT_BUDGET, retrain_after: int = DEFAULT_RETRAIN_AFTER, strategy: str = "hybrid") -> LoopPass:
    """One pass (see the module's docstring). Raises :class:`Unavailable` when Argilla is
    configured but cannot be reached: nothing else is done, the next pass tries again."""
    synced = None
    if target(settings) is not None:
        result = sync(engine, settings, task, lambda: connect(settings))
        if result.push.error is not None:
            raise Unavailable(f"Argilla could not be reached; {result.push.pending} pushes stay pending: {result.push.error}")
        synced = sync_summary(task, result)

    with session_scope(engine) as session:  # it may reap a lost training
        task_id = get_task(session, task).id
        arrived = registry.new_train_labels(session, task_id)
        live = jobs.live_job(session, task_id, "train", lost_after=settings.job_lost_after_seconds)
        training = live.id if live is not None else None
        waiting = awaiting_answers(session, task_id)
    training_job, skipped = None, None
    if arrived < retrain_after:
        skipped = f"{arrived} new train labels, fewer than {retrain_after}"
    elif training is not None:
        skipped = f"job {training} (train) is queued or running"
    else:
        request = RoundRequest(task=task, replay_capacity=settings.replay_capacity, replay_ratio=settings.replay_ratio)
        training_job = jobs.submit(engine, settings, "train", task, request_params(request), runner=jobs.follow_up_runner())

    round_id, picks, pushed = None, 0, 0
    if waiting == 0:
        try:
            selected = run_selection(engine, settings, SelectionRequest(task=task, budget=budget, strategy=strategy))
        except InvalidInput as nothing:  # every text is labeled or picked
            skipped = skipped or str(nothing)
        else:
            round_id, picks = selected.round_id, len(selected.picks)
            push = push_if_configured(engine, settings, task)
            pushed = push.pushed if push is not None else 0
    return LoopPass(task, synced, arrived, training_job, skipped, waiting, round_id, picks, pushed)


def run_loop_job(engine: Engine, settings: Settings, job_id: int) -> dict[str, Any]:
    """The ``loop`` job's operation: one :func:`advance` of its task with its params."""
    with session_scope(engine) as session:
        params = jobs.begin_job(session, job_id).params
    with jobs.running(engine, job_id, settings.job_heartbeat_seconds):
        done = advance(
            engine,
            settings,
            params["task"],
            budget=int(params.get("budget", DEFAULT_BUDGET)),
            retrain_after=int(params.get("retrain_after", DEFAULT_RETRAIN_AFTER)),
            strategy=params.get("strategy", "hybrid"),
        )
        result = asdict(done)
        with session_scope(engine) as session:
            jobs.complete_job(session, job_id, result)
    return result
