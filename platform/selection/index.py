"""Vector indexes over L2-normalised embeddings (inner product = cosine similarity).

``VectorIndex`` is the interface; ``ExactIndex`` is a plain numpy implementation, the
reference for tests. The FAISS implementation lives in ``faiss_index`` (the only module that
imports faiss). Ids are the embeddings' vector ids (row numbers of the task's vector file).
"""

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from driftloop.platform.durability import fsync


class VectorIndex(ABC):
    dim: int

    @abstractmethod
    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add float32 (n, dim) vectors under int64 ids (an id already present is an error)."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by similarity: (similarities (m, k), ids (m, k)); id -1 (similarity -inf) where fewer exist."""

    @abstractmethod
    def range_search(self, queries: np.ndarray, threshold: float) -> list[np.ndarray]:
        """For each query, the ids with similarity ≥ threshold."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> None: ...

    @abstractmethod
    def ids(self) -> np.ndarray: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write atomically (temporary name, then rename)."""


class ExactIndex(VectorIndex):
    """Brute force in numpy: the reference the FAISS index is tested against."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if np.isin(ids, self._ids).any():
            raise ValueError("some ids are already in the index")
        self._vectors = np.vstack([self._vectors, np.asarray(vectors, dtype=np.float32)])
        self._ids = np.concatenate([self._ids, ids])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        similarity = np.asarray(queries, dtype=np.float32) @ self._vectors.T
        top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(similarity, top, axis=1)
        ids = self._ids[top]
        if k > len(self._ids):  # pad like FAISS: -1 ids where fewer vectors exist
            pad = k - len(self._ids)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        return scores, ids

    def range_search(self, queries: np.ndarray, threshold: float) -> list[np.ndarray]:
        similarity = np.asarray(queries, dtype=np.float32) @ self._vectors.T
        return [self._ids[row >= threshold] for row in similarity]

    def remove(self, ids: np.ndarray) -> None:
        keep = ~np.isin(self._ids, ids)
        self._vectors, self._ids = self._vectors[keep], self._ids[keep]

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def __len__(self) -> int:
        return len(self._ids)

    def save(self, path: Path) -> None:
        temporary = path.with_name(path.name + ".tmp.npz")
        np.savez(temporary, vectors=self._vectors, ids=self._ids)
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> "ExactIndex":
        with np.load(path) as data:
            index = cls(data["vectors"].shape[1])
            index.add(data["vectors"], data["ids"])
        return index


def check_vectors(vectors: np.ndarray, dim: int, what: str = "vectors") -> np.ndarray:
    """``vectors`` as a C-contiguous float32 (n, dim) matrix (no copy when it already is one)."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"{what} must have shape (n, {dim}), got {np.shape(vectors)}")
    return array


def check_new_ids(ids: np.ndarray, count: int, present: np.ndarray) -> np.ndarray:
    """``ids`` as int64, one per vector, none repeated and none already in the index."""
    array = np.ascontiguousarray(ids, dtype=np.int64)
    if array.shape != (count,):
        raise ValueError(f"expected {count} ids, got shape {np.shape(ids)}")
    if len(np.unique(array)) != count:
        raise ValueError("ids must not repeat")
    clash = array[np.isin(array, present)]
    if len(clash):
        raise ValueError(f"ids already in the index: {clash[:5].tolist()}")
    return array


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write`` on a temporary name next to ``path``, then rename it over ``path``: a
    reader (or a crash) sees the old file or the new one, never half of one."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        fsync(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync(path.parent)  # or a crash could lose the new name
