"""Each task's FAISS index, persisted under ``DRIFTLOOP_HOME/indexes``.

Its ids are the embeddings' vector ids (row numbers of the task's vector file), and the
``embeddings`` table maps them to text ids, so the mapping is stable and lives in SQL. The
index is brought up to date incrementally (vectors recorded since it was last saved are
added), and rebuilt from scratch when the two disagree. Each encoder has its own index file:
after the encoder changes, ``driftloop index rebuild`` embeds the task's texts with the new one
and builds its index in one go, instead of leaving that to the next selection rounds.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, Select, func, select

from driftloop.platform.config import Settings
from driftloop.platform.home import private_home
from driftloop.platform.jobs import begin_job, complete_job, progress_reporter, running, submit
from driftloop.platform.modeling.embeddings import embed_texts, read_vectors
from driftloop.platform.modeling.encoder import Encoder, load_encoder
from driftloop.platform.selection.faiss_index import FaissIndex
from driftloop.platform.selection.index import VectorIndex
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.in_lists import in_list_chunks
from driftloop.platform.store.models import Embedding, TextRecord

_CHUNK = 50_000


def index_path(home: Path, task_id: int, encoder_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-@" else "_" for c in encoder_id)
    return home / "indexes" / f"task-{task_id}" / f"{safe}.faiss"


def sync_index(engine: Engine, home: Path, task_id: int, encoder: Encoder) -> VectorIndex:
    """The task's index with every recorded vector in it; saved if anything was added."""
    path = index_path(home, task_id, encoder.id)
    index = FaissIndex.load(path) if path.exists() else FaissIndex.empty(encoder.dim)
    recorded = _recorded(engine, task_id, encoder.id)
    present = index.ids()
    if len(present) and not np.isin(present, recorded).all():
        return rebuild_index(engine, home, task_id, encoder, embed_missing=False)  # index ahead of the store
    missing = np.setdiff1d(recorded, present, assume_unique=True)
    for start in range(0, len(missing), _CHUNK):
        ids = missing[start : start + _CHUNK]
        index.add(read_vectors(home, task_id, encoder.id, encoder.dim, ids), ids)
    if len(missing):
        private_home(home)
        path.parent.mkdir(parents=True, exist_ok=True)
        index.save(path)
    return index


def rebuild_index(
    engine: Engine,
    home: Path,
    task_id: int,
    encoder: Encoder,
    *,
    embed_missing: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> VectorIndex:
    """A fresh index of the task's texts for ``encoder``, embedding those it lacks first.

    ``progress(done, total)`` counts the task's texts, those already embedded included.
    """
    if embed_missing:
        _embed_all(engine, home, task_id, encoder, progress)
    path = index_path(home, task_id, encoder.id)
    path.unlink(missing_ok=True)
    return sync_index(engine, home, task_id, encoder)


def submit_rebuild(engine: Engine, settings: Settings, task: str, *, runner: str = "thread") -> int:
    """Queue an index rebuild of ``task`` as a job and have it run (:func:`driftloop.platform.jobs.submit`); its id."""
    return submit(engine, settings, "rebuild", task, {"task": task}, runner=runner)


def run_rebuild_job(engine: Engine, settings: Settings, job_id: int) -> dict[str, Any]:
    """The ``rebuild`` job's operation: :func:`rebuild_index` of its task with the configured encoder."""
    from driftloop.platform.tasks import get_task

    with session_scope(engine) as session:
        job = begin_job(session, job_id)
        task_id = get_task(session, job.params["task"]).id
    with running(engine, job_id, settings.job_heartbeat_seconds):
        to_job = progress_reporter(engine, job_id, high=0.95)
        encoder = load_encoder(settings)
        index = rebuild_index(
            engine, settings.storage, task_id, encoder, progress=lambda done, total: to_job(done / max(total, 1), f"embedded {done}/{total}")
        )
        result = {"encoder": encoder.id, "vectors": len(index)}
        with session_scope(engine) as session:
            complete_job(session, job_id, result)  # the index file is written: a lost job leaves a usable index
    return result


@dataclass(frozen=True)
class IndexStatus:
    encoder_id: str
    path: Path
    texts: int  # the task's texts
    embedded: int  # of them, with a vector for this encoder
    indexed: int  # vectors in the saved index (0 when there is none)
    other_encoders: list[str]  # index files left by earlier encoders


def index_status(engine: Engine, home: Path, task_id: int, encoder_id: str) -> IndexStatus:
    """What the task's saved index holds against the store, without changing either."""
    path = index_path(home, task_id, encoder_id)
    others = sorted(p.stem for p in path.parent.glob("*.faiss") if p != path) if path.parent.exists() else []
    return IndexStatus(
        encoder_id=encoder_id,
        path=path,
        texts=_count(engine, select(func.count()).select_from(TextRecord).where(TextRecord.task_id == task_id)),
        embedded=_count(
            engine, select(func.count()).select_from(Embedding).where(Embedding.task_id == task_id, Embedding.encoder_id == encoder_id)
        ),
        indexed=FaissIndex.saved_count(path) if path.exists() else 0,
        other_encoders=others,
    )


def text_ids_for(engine: Engine, task_id: int, encoder_id: str, vector_ids: np.ndarray) -> dict[int, int]:
    """vector id → text id."""
    found: dict[int, int] = {}
    with session_scope(engine) as session:
        for chunk in in_list_chunks(int(v) for v in vector_ids):
            rows = session.execute(
                select(Embedding.vector_id, Embedding.text_id).where(
                    Embedding.task_id == task_id, Embedding.encoder_id == encoder_id, Embedding.vector_id.in_(chunk)
                )
            )
            found.update(rows.all())
    return found


def _recorded(engine: Engine, task_id: int, encoder_id: str) -> np.ndarray:
    with session_scope(engine) as session:
        ids = session.scalars(
            select(Embedding.vector_id).where(Embedding.task_id == task_id, Embedding.encoder_id == encoder_id)
        )
        return np.sort(np.fromiter(ids, dtype=np.int64))


def _embed_all(engine: Engine, home: Path, task_id: int, encoder: Encoder, progress: Callable[[int, int], None] | None) -> None:
    """Vectors for every text of the task, a chunk at a time: ``embed_texts`` returns all the
    vectors it is asked for, and a task of millions of texts would hold them at once for nothing."""
    text_ids = _text_ids(engine, task_id)
    for start in range(0, len(text_ids), _CHUNK):
        chunk = text_ids[start : start + _CHUNK]

        def report(done: int, _encoding: int, start: int = start) -> None:
            if progress is not None:
                progress(start + done, len(text_ids))

        embed_texts(engine, task_id, chunk, encoder, home, progress=report)
        report(len(chunk), 0)


def _count(engine: Engine, query: Select[tuple[int]]) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(query) or 0)


def _text_ids(engine: Engine, task_id: int) -> list[int]:
    with session_scope(engine) as session:
        return list(session.scalars(select(TextRecord.id).where(TextRecord.task_id == task_id).order_by(TextRecord.id)))
