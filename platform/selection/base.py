"""The selection interface: a frozen context in, ranked picks with reasons out.

A strategy only ranks candidates (``rank``); ``picking.select`` is the template every strategy
shares:

1. reserve ``random_fraction`` of the budget for uniformly random picks, flagged as such, so
   accuracy can be estimated without the strategy's bias;
2. let the strategy rank the pool (with no champion, strategies that need probabilities fall
   back to diversity on the embeddings: cold start);
3. walk the ranking and skip near-duplicates of texts already labeled or queued, and of picks
   already made in this batch (cosine similarity ≥ ``duplicate_threshold``);
4. fill the reserve from what is left.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class SelectionContext:
    """What a strategy may look at. Rows of ``embeddings`` and ``probabilities`` follow ``pool_ids``.

    ``embeddings`` are L2-normalised (inner product = cosine). ``probabilities`` is None when
    the task has no champion yet. ``taken_embeddings`` are the vectors of texts already labeled
    or queued for labeling: new picks must not duplicate them.
    """

    pool_ids: np.ndarray  # int64 text ids
    embeddings: np.ndarray  # float32 (n, d)
    probabilities: np.ndarray | None = None  # float32 (n, k)
    taken_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    seed: int = 0


@dataclass(frozen=True)
class Ranked:
    """A strategy's ranking: pool row indices, best first, each with a score and cluster."""

    rows: np.ndarray  # int64 indices into the pool
    scores: np.ndarray  # float, higher = more worth labeling (uncertainty, or distance for diversity)
    clusters: np.ndarray | None = None  # int cluster per ranked row, for strategies that cluster
    reason: str = ""


@dataclass(frozen=True)
class Pick:
    text_id: int
    rank: int
    score: float | None
    cluster: int | None
    reason: str
    is_random: bool = False


class SelectionStrategy(ABC):
    name: ClassVar[str]
    needs_probabilities: ClassVar[bool] = False
    # What ``Ranked.scores`` hold, for the people reading them (the select table's column header).
    score_name: ClassVar[str] = "score"

    @abstractmethod
    def rank(self, context: SelectionContext, budget: int) -> Ranked:
        """Rank at least ``budget`` candidates (more lets the template skip duplicates)."""
