"""The unlabeled pool kept ready between rounds: new texts embedded into the task's vector index
and scored by the champion (predictions stored per model version), so that a selection round
finds the work done. The ``score`` job runs it: queued after an ingest (coalesced: one pending
per task) and after a promotion (the new champion scores the pool again)."""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine

from driftloop.platform.config import Settings
from driftloop.platform.jobs import begin_job, complete_job, progress_reporter, running, submit
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.embeddings import embed_texts
from driftloop.platform.modeling.encoder import Encoder, load_encoder
from driftloop.platform.modeling.rounds import load_version
from driftloop.platform.selection.round_requests import unlabeled_pool
from driftloop.platform.selection.scoring import champion_probabilities
from driftloop.platform.selection.task_index import sync_index
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PoolRefresh:
    pool: int  # unlabeled, unpicked texts considered (newest first, at most DRIFTLOOP_SELECTION_MAX_POOL)
    indexed: int  # vectors in the task's index afterwards
    scored_by: int | None  # the champion's version that scored the pool; None without a champion


def refresh_pool(
    engine: Engine, settings: Settings, task: str, encoder: Encoder | None = None, progress: Progress | None = None
) -> PoolRefresh:
    """Embed the pool's texts that have no vector yet, bring the index up to date, and have the
    champion score what it has not scored. Each step does only what is missing, so a refresh
    after a small ingest is quick, and one that is run twice does nothing the second time."""
    encoder = encoder or load_encoder(settings)
    with session_scope(engine) as session:
        task_row = get_task(session, task)
        task_id = task_row.id
        champion = registry.champion(session, task_id)
        pool = unlabeled_pool(session, task_id, max_pool=settings.selection_max_pool)

    def report(stage: str) -> Callable[[int, int], None]:
        return lambda done, total: progress(stage, done, total) if progress else None

    embed_texts(engine, task_id, pool, encoder, settings.storage, progress=report("embed pool"))
    index = sync_index(engine, settings.storage, task_id, encoder)
    if champion is not None and pool:
        champion_probabilities(engine, settings.storage, task_id, champion, load_version(champion, encoder), pool, progress=report("score pool"))
    return PoolRefresh(len(pool), len(index), champion.version if champion else None)


def submit_score(engine: Engine, settings: Settings, task: str, *, runner: str = "thread") -> int:
    """Queue a refresh of the task's pool, unless one is queued already (its id then)."""
    return submit(engine, settings, "score", task, {"task": task}, runner=runner, coalesce=True)


def run_score_job(engine: Engine, settings: Settings, job_id: int) -> dict[str, Any]:
    """The ``score`` job's operation: :func:`refresh_pool` of its task."""
    with session_scope(engine) as session:
        task = begin_job(session, job_id).params["task"]
    with running(engine, job_id, settings.job_heartbeat_seconds):
        to_job = progress_reporter(engine, job_id, high=0.99)
        refreshed = refresh_pool(engine, settings, task, progress=lambda stage, done, total: to_job(done / max(total, 1), f"{stage} {done}/{total}"))
        result = asdict(refreshed)
        with session_scope(engine) as session:
            complete_job(session, job_id, result)
    return result
