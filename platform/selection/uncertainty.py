"""Uncertainty of a classifier's predictions, and ranking by it.

Each function takes a probability matrix (n texts, k classes; rows sum to 1) and returns one
value per row, higher = more uncertain, so every uncertainty strategy ranks the same way:

- ``least_confidence``: 1 - max p (Lewis & Gale 1994);
- ``margin``: 1 - (p1 - p2), p1 and p2 the two largest ("breaking ties", Scheffer et al. 2001;
  Luo et al. 2005): the top two classes are nearly tied;
- ``entropy``: -Σ p log p, in nats, with 0 log 0 = 0 (Shannon; Settles 2009).
"""

import numpy as np
from scipy.special import entr


def _matrix(probabilities: np.ndarray) -> np.ndarray:
    p = np.asarray(probabilities)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"probabilities must be an (n, k) matrix with k ≥ 1, got shape {p.shape}")
    return p


def least_confidence(probabilities: np.ndarray) -> np.ndarray:
    p = _matrix(probabilities)
    return 1.0 - p.max(axis=1)


def margin(probabilities: np.ndarray) -> np.ndarray:
    p = _matrix(probabilities)
    if p.shape[1] == 1:  # one class: nothing to hesitate between
        return np.zeros(len(p), dtype=p.dtype)
    top_two = np.partition(p, -2, axis=1)[:, -2:]  # O(k) per row instead of a full sort
    return 1.0 - (top_two[:, 1] - top_two[:, 0])


def entropy(probabilities: np.ndarray) -> np.ndarray:
    # scipy's entr is -p log p elementwise with entr(0) = 0, without a warning for log 0.
    return entr(_matrix(probabilities)).sum(axis=1)


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest scores, highest first; equal scores in index order, so the
    same scores always give the same ranking. O(len) selection, then a sort of the ``n`` kept."""
    scores = np.asarray(scores)
    n = max(0, min(n, len(scores)))
    if n == len(scores):
        return np.argsort(-scores, kind="stable")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cutoff = np.partition(scores, len(scores) - n)[len(scores) - n]  # the n-th highest value
    above = np.flatnonzero(scores > cutoff)
    at_cutoff = np.flatnonzero(scores == cutoff)[: n - len(above)]  # lowest indices win the tie
    kept = np.concatenate([above, at_cutoff])
    return kept[np.argsort(-scores[kept], kind="stable")]
