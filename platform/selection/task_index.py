"""Each task's FAISS index, persisted under ``DRIFTLOOP_HOME/indexes``.

Its ids are the embeddings' vector ids (row numbers of the task's vector file), and the
``embeddings`` table maps them to text ids, so the mapping is stable and lives in SQL. The
index is brought up to date incrementally (vectors recorded since it was last saved are
added), and rebuilt from scratch when the encoder changes or the two disagree.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select

from driftloop.platform.modeling.embeddings import embed_texts, read_vectors
from driftloop.platform.modeling.encoder import Encoder
from driftloop.platform.selection.faiss_index import FaissIndex
from driftloop.platform.selection.index import VectorIndex
from driftloop.platform.store.engine import session_scope
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
    """A fresh index of the task's texts for ``encoder``, embedding those it lacks first."""
    if embed_missing:
        with session_scope(engine) as session:
            text_ids = list(session.scalars(select(TextRecord.id).where(TextRecord.task_id == task_id).order_by(TextRecord.id)))
        embed_texts(engine, task_id, text_ids, encoder, home, progress=progress)
    path = index_path(home, task_id, encoder.id)
    path.unlink(missing_ok=True)
    return sync_index(engine, home, task_id, encoder)


def text_ids_for(engine: Engine, task_id: int, encoder_id: str, vector_ids: np.ndarray) -> dict[int, int]:
    """vector id → text id."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Embedding.vector_id, Embedding.text_id).where(
                Embedding.task_id == task_id,
                Embedding.encoder_id == encoder_id,
                Embedding.vector_id.in_([int(v) for v in vector_ids]),
            )
        )
        return dict(rows.all())


def _recorded(engine: Engine, task_id: int, encoder_id: str) -> np.ndarray:
    with session_scope(engine) as session:
        ids = session.scalars(
            select(Embedding.vector_id).where(Embedding.task_id == task_id, Embedding.encoder_id == encoder_id)
        )
        return np.sort(np.fromiter(ids, dtype=np.int64))
