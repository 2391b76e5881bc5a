"""Greedy k-center (farthest-first traversal): the core-set selection of Sener & Savarese
(2018). Each step picks the pool point farthest from every chosen or already labeled point."""

import numpy as np

_CHUNK = 65_536  # pool rows per BLAS call: bounds the temporaries for pools of millions


def greedy_k_center(vectors: np.ndarray, budget: int, *, centers: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices picked in order, and each pick's cosine distance to the nearest earlier
    center at the moment it was picked. ``vectors`` and ``centers`` are L2-normalised."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    budget = min(budget, n)
    nearest = np.full(n, np.inf, dtype=np.float32)  # distance to the closest center so far
    if centers is not None and len(centers):
        for start in range(0, len(centers), 1024):
            _update(nearest, vectors, np.ascontiguousarray(centers[start : start + 1024], dtype=np.float32))
    picks = np.empty(budget, dtype=np.int64)
    distances = np.empty(budget, dtype=np.float32)
    for step in range(budget):
        if np.isinf(nearest).all():
            choice = int(np.random.default_rng(seed).integers(n))  # nothing chosen yet: a seeded start
        else:
            choice = int(np.argmax(nearest))
        picks[step], distances[step] = choice, (nearest[choice] if np.isfinite(nearest[choice]) else 1.0)
        _update(nearest, vectors, vectors[choice : choice + 1])
    return picks, distances


def _update(nearest: np.ndarray, vectors: np.ndarray, new_centers: np.ndarray) -> None:
    """nearest = min(nearest, 1 − max cosine to the new centers), chunk by chunk, in place."""
    for start in range(0, len(vectors), _CHUNK):
        block = vectors[start : start + _CHUNK]
        similarity = block @ new_centers.T
        distance = 1.0 - (similarity.max(axis=1) if similarity.shape[1] > 1 else similarity[:, 0])
        np.minimum(nearest[start : start + _CHUNK], distance, out=nearest[start : start + _CHUNK])
