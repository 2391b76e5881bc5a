"""Selection rounds: build the pool from the store, let a strategy pick, record the round.

The pool is the task's texts that have no label and were never picked, received within the
window (newest first, at most ``selection_max_pool``), so a stream of millions stays cheap. Texts already
labeled or queued are "taken": picks must not be near-duplicates of them. Picks are recorded
with their score, cluster, reason and strategy in one transaction; the store's unique
(task, text) key on picks guarantees a text is never picked twice, even by concurrent rounds.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from driftloop.platform.config import Settings
from driftloop.platform.jobs import begin_job, complete_job, lock_running, progress_reporter, running
from driftloop.platform.labels.outbox import queue_picks
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.embeddings import embed_texts
from driftloop.platform.modeling.encoder import Encoder, load_encoder
from driftloop.platform.modeling.rounds import load_version
from driftloop.platform.selection.base import SelectionContext
from driftloop.platform.selection.picking import get_strategy, ranker
from driftloop.platform.selection.picking import select as select_picks
from driftloop.platform.selection.round_requests import (  # noqa: F401 - the round's request, re-exported
    SelectionRequest,
    check_request,
    nothing_to_pick,
    submit_selection,
    unlabeled_pool,
)
from driftloop.platform.selection.scoring import champion_probabilities
from driftloop.platform.selection.task_index import sync_index
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.in_lists import in_list_chunks
from driftloop.platform.store.models import Label, SelectionPick, SelectionRound, TextRecord
from driftloop.platform.tasks import get_task

Progress = Callable[[str, int, int], None]  # stage, done, total


@dataclass(frozen=True)
class PickedText:
    rank: int
    text_id: int
    external_id: str
    text: str
    score: float | None
    cluster: int | None
    reason: str
    is_random: bool


@dataclass(frozen=True)
class SelectionResult:
    round_id: int
    strategy: str
    model_version: int | None
    pool_size: int
    picks: list[PickedText]
    score_name: str  # what the picks' scores hold, e.g. "uncertainty (1 - margin)"


def run_select_job(engine: Engine, settings: Settings, job_id: int) -> dict[str, Any]:
    """The ``select`` job's operation: the round its params describe, as that job."""
    with session_scope(engine) as session:
        params = begin_job(session, job_id).params
    with running(engine, job_id, settings.job_heartbeat_seconds):
        to_job = progress_reporter(engine, job_id)
        result = run_selection(
            engine, settings, SelectionRequest(**params), progress=lambda stage, done, total: to_job(done / max(total, 1), f"{stage} {done}/{total}"), job_id=job_id
        )
    return _job_result(result.round_id, len(result.picks), result.pool_size, result.model_version)


def run_selection(
    engine: Engine,
    settings: Settings,
    request: SelectionRequest,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
    job_id: int | None = None,
) -> SelectionResult:
    """Pick ``request.budget`` texts and record the round (and complete job ``job_id``, a running
    ``select`` job, in the same transaction)."""
    check_request(request)
    options = strategy_options(request.strategy, settings)
    strategy = get_strategy(request.strategy, **options)
    encoder = encoder or load_encoder(settings)
    with session_scope(engine) as session:
        task = get_task(session, request.task)
        task_id = task.id
        champion = registry.champion(session, task_id)
        pool_ids = _pool(session, task_id, request, settings.selection_max_pool)
        taken_ids = _taken(session, task_id)
    if not pool_ids:
        raise nothing_to_pick(request.task)

    def report(stage: str) -> Callable[[int, int], None]:
        return lambda done, total: progress(stage, done, total) if progress else None

    embeddings = embed_texts(engine, task_id, pool_ids, encoder, settings.storage, progress=report("embed pool"))
    taken = embed_texts(engine, task_id, taken_ids, encoder, settings.storage, progress=report("embed labeled"))
    sync_index(engine, settings.storage, task_id, encoder)  # the task's index gains what was just embedded
    probabilities = None
    if champion is not None and strategy.needs_probabilities:
        model = load_version(champion, encoder)
        probabilities = champion_probabilities(
            engine, settings.storage, task_id, champion, model, pool_ids, progress=report("score pool")
        )
    context = SelectionContext(
        pool_ids=np.asarray(pool_ids, dtype=np.int64),
        embeddings=embeddings,
        probabilities=probabilities,
        taken_embeddings=taken,
        seed=request.seed,
    )
    picks = select_picks(
        strategy,
        context,
        request.budget,
        random_fraction=request.random_fraction,
        duplicate_threshold=settings.selection_duplicate_threshold,
    )
    params = {"duplicate_threshold": settings.selection_duplicate_threshold, **options}
    version_id, version = (champion.id, champion.version) if champion else (None, None)
    score_name = ranker(strategy, context).score_name
    return _record(engine, task_id, request, version_id, version, len(pool_ids), params, picks, score_name, job_id)


def round_picks(engine: Engine, round_id: int) -> list[int]:
    """The text ids a selection round picked, in rank order."""
    with session_scope(engine) as session:
        return list(session.scalars(select(SelectionPick.text_id).where(SelectionPick.round_id == round_id).order_by(SelectionPick.rank)))


def strategy_options(strategy: str, settings: Settings) -> dict[str, object]:
    """The settings that tune a strategy, as its keyword arguments."""
    return {"within_cluster": settings.selection_hybrid_within_cluster} if strategy == "hybrid" else {}


def _pool(session, task_id: int, request: SelectionRequest, max_pool: int) -> list[int]:  # type: ignore[no-untyped-def]
    return unlabeled_pool(session, task_id, window_days=request.window_days, max_pool=max_pool)


def _taken(session, task_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    labeled = select(Label.text_id).where(Label.task_id == task_id)
    queued = select(SelectionPick.text_id).where(SelectionPick.task_id == task_id)
    return sorted(set(session.scalars(labeled)) | set(session.scalars(queued)))


def _job_result(round_id: int, picks: int, pool_size: int, model_version: int | None) -> dict[str, Any]:
    """A ``select`` job's result, as stored on the job and returned by its operation."""
    return {"round": round_id, "picks": picks, "pool_size": pool_size, "model_version": model_version}


def _record(
    engine: Engine,
    task_id: int,
    request: SelectionRequest,
    version_id: int | None,
    version: int | None,
    pool_size: int,
    params: dict[str, object],
    picks: list,  # type: ignore[type-arg]
    score_name: str,
    job_id: int | None,
) -> SelectionResult:
    with session_scope(engine) as session:
        if job_id is not None:
            lock_running(session, job_id)  # a cancelled or lost job's round is not recorded
        round_ = SelectionRound(
            task_id=task_id,
            strategy=request.strategy,
            budget=request.budget,
            model_version_id=version_id,
            params={
                "window_days": request.window_days,
                "random_fraction": request.random_fraction,
                "seed": request.seed,
                "pool_size": pool_size,
                **params,
            },
        )
        session.add(round_)
        session.flush()
        session.add_all(
            SelectionPick(
                round_id=round_.id,
                task_id=task_id,
                text_id=p.text_id,
                rank=p.rank,
                score=p.score,
                cluster=p.cluster,
                reason=p.reason,
                is_random=p.is_random,
            )
            for p in picks
        )
        queue_picks(session, task_id, round_.id, [p.text_id for p in picks])  # the same transaction: no pick lost
        session.flush()
        found = {
            text_id: (external_id, text)
            for chunk in in_list_chunks(p.text_id for p in picks)
            for text_id, external_id, text in session.execute(
                select(TextRecord.id, TextRecord.external_id, TextRecord.text).where(TextRecord.id.in_(chunk))
            )
        }
        if job_id is not None:
            complete_job(session, job_id, _job_result(round_.id, len(picks), pool_size, version))
        return SelectionResult(
            round_.id,
            request.strategy,
            version,
            pool_size,
            [
                PickedText(p.rank, p.text_id, *found[p.text_id], p.score, p.cluster, p.reason, p.is_random)
                for p in picks
            ],
            score_name,
        )
