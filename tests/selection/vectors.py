"""Constructed embeddings for the selection tests: unit vectors in well-separated blobs, so that
what a strategy should pick is known."""

import numpy as np


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def blobs(n_blobs: int, per_blob: int, dim: int = 32, spread: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = unit(rng.normal(size=(n_blobs, dim)))
    points = np.repeat(centers, per_blob, axis=0) + spread * rng.normal(size=(n_blobs * per_blob, dim))
    return unit(points), np.repeat(np.arange(n_blobs), per_blob)
