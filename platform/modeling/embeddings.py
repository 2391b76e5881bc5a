"""The embedding cache: each text is encoded at most once per encoder.

Vectors live outside the database, in one file per (task, encoder) of raw float32 rows:
``<home>/vectors/task-<id>/<encoder id>.f32``. The ``embeddings`` table maps a text to its row
(``vector_id``), and the task's FAISS index uses the same numbers as its ids, so a vector's
``vector_id`` must always be its row number in the file.

Appending keeps that true under concurrency and crashes. One writer at a time holds an
exclusive lock on ``<encoder id>.lock`` beside the file, and within it:

1. cuts the file back to the rows the table records (rows written by an append that crashed
   before its commit belong to no text),
2. appends the new rows and fsyncs them,
3. records them in the table and commits.

A crash before step 3 commits leaves only unrecorded rows, which the next append drops; rows
are never referenced before they are on disk.
"""

import fcntl
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, func, insert, select

from driftloop.platform.durability import fsync
from driftloop.platform.errors import DriftloopError, NotFound
from driftloop.platform.home import private_home
from driftloop.platform.modeling.encoder import Encoder, Progress
from driftloop.platform.store.engine import read_only
from driftloop.platform.store.in_lists import in_list_chunks
from driftloop.platform.store.models import Embedding, TextRecord
from driftloop.platform.store.types import utcnow

# Texts encoded between two appends: bounds memory, and what a crash can cost.
_APPEND_CHUNK = 4096
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")
_FLOAT32 = np.dtype(np.float32)


def embed_texts(
    engine: Engine,
    task_id: int,
    text_ids: Sequence[int],
    encoder: Encoder,
    home: Path,
    *,
    progress: Progress | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Float32 vectors of ``text_ids`` (rows in the same order, repeats allowed), encoding only
    the texts that have no cached vector for ``encoder`` yet.

    ``progress(done, total)`` counts the texts this call encodes, from ``(0, total)``. Raises :class:`NotFound` if a
    text id is not one of the task's texts.
    """
    wanted = list(dict.fromkeys(int(i) for i in text_ids))
    with read_only(engine).connect() as connection:
        vector_ids = _recorded_vector_ids(connection, task_id, encoder.id, wanted)
    missing = [i for i in wanted if i not in vector_ids]
    _require_task_texts(engine, task_id, missing)

    if progress is not None and missing:
        progress(0, len(missing))  # the work is known before its first batch, which takes seconds on a CPU
    for start in range(0, len(missing), _APPEND_CHUNK):
        chunk = missing[start : start + _APPEND_CHUNK]
        texts = _texts(engine, chunk)
        vectors = encoder.embed(
            [texts[i] for i in chunk], batch_size=batch_size, progress=_offset(progress, start, len(missing))
        )
        vector_ids.update(_append(engine, task_id, encoder, home, chunk, vectors))

    unique = read_vectors(home, task_id, encoder.id, encoder.dim, [vector_ids[i] for i in wanted])
    row_of = {text_id: row for row, text_id in enumerate(wanted)}
    return unique[[row_of[int(i)] for i in text_ids]]


def read_vectors(home: Path, task_id: int, encoder_id: str, dim: int, vector_ids: Sequence[int]) -> np.ndarray:
    """Rows ``vector_ids`` of the task's vector file for ``encoder_id``, as a float32 array."""
    if len(vector_ids) == 0:
        return np.empty((0, dim), dtype=np.float32)
    if min(vector_ids) < 0:
        raise ValueError("vector ids start at 0")  # numpy would read from the end instead
    rows = int(max(vector_ids)) + 1
    path = vector_file(home, task_id, encoder_id)
    stored = path.stat().st_size // (dim * _FLOAT32.itemsize) if path.exists() else 0
    if stored < rows:
        raise _lost_rows(path, rows, stored)
    # Map only up to the highest row asked for: a concurrent append may cut unrecorded rows off
    # the end of the file, and a mapped page past the end of a file must never be touched.
    mapped = np.memmap(path, dtype=np.float32, mode="r", shape=(rows, dim))
    return np.array(mapped[np.asarray(vector_ids, dtype=np.int64)])


def vector_file(home: Path, task_id: int, encoder_id: str) -> Path:
    """Where the vectors of one task for one encoder are stored."""
    return home / "vectors" / f"task-{task_id}" / f"{_UNSAFE.sub('_', encoder_id)}.f32"


def _append(
    engine: Engine, task_id: int, encoder: Encoder, home: Path, text_ids: list[int], vectors: np.ndarray
) -> dict[int, int]:
    """Store ``vectors`` for the texts still without one; return every text's vector_id."""
    path = vector_file(home, task_id, encoder.id)
    private_home(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    row_bytes = encoder.dim * _FLOAT32.itemsize
    with _exclusive(path.with_suffix(".lock")), engine.connect() as connection:
        # A writing unit (BEGIN IMMEDIATE on SQLite): no other writer may slip in between reading
        # what is recorded and inserting. The file lock is always taken first, so they cannot deadlock.
        with connection.begin():
            recorded = _recorded_vector_ids(connection, task_id, encoder.id, text_ids)
            new = [n for n, text_id in enumerate(text_ids) if text_id not in recorded]
            if not new:
                return recorded
            first = _recorded_rows(connection, task_id, encoder.id)
            created = not path.exists()
            with path.open("a+b") as file:
                size = os.fstat(file.fileno()).st_size
                if size < first * row_bytes:
                    raise _lost_rows(path, first, size // row_bytes)
                file.truncate(first * row_bytes)
                file.write(np.ascontiguousarray(vectors[new], dtype=np.float32).tobytes())
                file.flush()
                os.fsync(file.fileno())
            if created:
                fsync(path.parent)  # or a crash could lose the new file's name, and its rows
            appended = {text_ids[n]: first + k for k, n in enumerate(new)}
            now = utcnow()
            rows = [
                {"task_id": task_id, "text_id": text_id, "encoder_id": encoder.id, "vector_id": vector_id, "created_at": now}
                for text_id, vector_id in appended.items()
            ]
            connection.execute(insert(Embedding), rows)
    return recorded | appended


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    # flock locks belong to an open file description, so this excludes other threads of this
    # process as well as other processes; the kernel drops the lock if the holder dies.
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock



def _recorded_vector_ids(connection: Connection, task_id: int, encoder_id: str, text_ids: list[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    for chunk in in_list_chunks(text_ids):
        query = select(Embedding.text_id, Embedding.vector_id).where(
            Embedding.task_id == task_id, Embedding.encoder_id == encoder_id, Embedding.text_id.in_(chunk)
        )
        found.update(connection.execute(query).all())
    return found


def _recorded_rows(connection: Connection, task_id: int, encoder_id: str) -> int:
    """How many rows of the vector file the table refers to (vector ids run from 0)."""
    query = select(func.max(Embedding.vector_id)).where(Embedding.task_id == task_id, Embedding.encoder_id == encoder_id)
    highest = connection.scalar(query)
    return 0 if highest is None else int(highest) + 1


def _require_task_texts(engine: Engine, task_id: int, text_ids: list[int]) -> None:
    found: set[int] = set()
    with read_only(engine).connect() as connection:
        for chunk in in_list_chunks(text_ids):
            query = select(TextRecord.id).where(TextRecord.task_id == task_id, TextRecord.id.in_(chunk))
            found.update(connection.scalars(query))
    unknown = [i for i in text_ids if i not in found]
    if unknown:
        shown = ", ".join(map(str, unknown[:20])) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
        raise NotFound(f"task {task_id} has no texts with ids {shown}", task_id=task_id, text_ids=unknown[:100])


def _texts(engine: Engine, text_ids: list[int]) -> dict[int, str]:
    texts: dict[int, str] = {}
    with read_only(engine).connect() as connection:
        for chunk in in_list_chunks(text_ids):
            texts.update(connection.execute(select(TextRecord.id, TextRecord.text).where(TextRecord.id.in_(chunk))).all())
    return texts


def _offset(progress: Progress | None, done_before: int, total: int) -> Progress | None:
    """Report one chunk's progress as progress through the whole call."""
    if progress is None:
        return None
    report = progress
    return lambda done, _chunk_total: report(done_before + done, total)


def _lost_rows(path: Path, needed: int, stored: int) -> DriftloopError:
    return DriftloopError(
        f"vector file {path} holds only {stored} rows, but the embeddings table refers to row {needed - 1}: it was "
        "deleted or cut short outside driftloop. Delete this encoder's embeddings rows for the task "
        "(and the file) to rebuild them.",
        path=str(path),
    )
