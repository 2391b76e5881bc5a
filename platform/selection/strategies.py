"""The query strategies, each a small class that only ranks the pool.

Uncertainty strategies share ``UncertaintyStrategy`` and differ only in their uncertainty
function. Diversity strategies work on the embeddings. ``Hybrid`` (the default) combines the
two after Cluster-Margin (Citovsky et al., 2021): the most uncertain candidates, clustered, then
round-robin across clusters so a batch is both informative and varied.
"""

from collections.abc import Callable
from typing import ClassVar

import numpy as np
from scipy.stats import rankdata

from driftloop.platform.selection.base import Ranked, SelectionContext, SelectionStrategy
from driftloop.platform.selection.coreset import greedy_k_center
from driftloop.platform.selection.faiss_index import kmeans, typicality
from driftloop.platform.selection.uncertainty import entropy, least_confidence, margin


class RandomStrategy(SelectionStrategy):
    name = "random"
    score_name = "none (random order)"

    def rank(self, context: SelectionContext, budget: int) -> Ranked:
        rows = np.random.default_rng(context.seed).permutation(len(context.pool_ids))
        return Ranked(rows, np.zeros(len(rows)), reason="random")


class UncertaintyStrategy(SelectionStrategy):
    needs_probabilities = True
    uncertainty: ClassVar[Callable[[np.ndarray], np.ndarray]]

    def rank(self, context: SelectionContext, budget: int) -> Ranked:
        scores = type(self).uncertainty(context.probabilities)
        rows = np.argsort(-scores, kind="stable")  # ties keep pool order (newest first)
        return Ranked(rows, scores[rows], reason=self.name)


class LeastConfidence(UncertaintyStrategy):
    name = "least-confidence"
    score_name = "uncertainty (1 - top probability)"
    uncertainty = staticmethod(least_confidence)


class Margin(UncertaintyStrategy):
    name = "margin"
    score_name = "uncertainty (1 - margin)"
    uncertainty = staticmethod(margin)


class Entropy(UncertaintyStrategy):
    name = "entropy"
    score_name = "uncertainty (entropy, nats)"
    uncertainty = staticmethod(entropy)


class KMeansStrategy(SelectionStrategy):
    """The point nearest each k-means centroid (k = budget), largest clusters first; then the
    next-nearest of each cluster, round-robin, for when duplicates must be replaced."""

    name = "kmeans"
    score_name = "cosine to its cluster's centroid"

    def rank(self, context: SelectionContext, budget: int) -> Ranked:
        clusters = kmeans(context.embeddings, budget, seed=context.seed)
        order = round_robin(clusters.assignment, -clusters.similarity, by_size=True)
        return Ranked(order, clusters.similarity[order].astype(np.float64), clusters.assignment[order], reason="k-means centroid")


class KCenterStrategy(SelectionStrategy):
    name = "kcenter"
    score_name = "distance to the nearest pick or labeled text"
    slack: ClassVar[int] = 10  # traversal steps past the budget, to replace skipped near-duplicates

    def rank(self, context: SelectionContext, budget: int) -> Ranked:
        taken = context.taken_embeddings if context.taken_embeddings.size else None
        rows, distances = greedy_k_center(context.embeddings, budget + self.slack, centers=taken, seed=context.seed)
        return Ranked(rows, distances.astype(np.float64), reason="k-center distance")


WITHIN_CLUSTER = ("central", "representative", "uncertain")


class Hybrid(SelectionStrategy):
    """The most uncertain candidates (``candidate_multiple`` × the budget), clustered into as
    many clusters as the budget, then round-robin across clusters.

    Two refinements of Cluster-Margin, on by default (the figures are in bench/RESULTS.md):
    - ``anneal_per_class``: while the task has fewer than this many labels per class, the
      candidate set widens towards the whole pool (diversity matters most on a small budget,
      uncertainty later: Hacohen et al., 2022), shrinking linearly to ``candidate_multiple``;
    - ``within_cluster``: which candidate of a cluster goes first. ``"uncertain"`` is
      Cluster-Margin's most uncertain one, which on noisy labels keeps finding unlearnable
      outliers. ``"central"`` (the default) is the one nearest the centroid.
      ``"representative"`` ranks by centrality plus typicality (TypiClust's local density), so
      a pick is both in the middle of its cluster and in a dense part of it. It measured a
      little better on the noisy health tweets and a little worse on BBC News, both within
      noise, and its neighbour search adds about a second on a wide candidate set (20,000),
      so it is an option (``DRIFTLOOP_SELECTION_HYBRID_WITHIN_CLUSTER``), not the default.
    ``anneal_per_class=None, within_cluster="uncertain"`` is the original Cluster-Margin.
    """

    name = "hybrid"
    needs_probabilities = True
    score_name = "uncertainty (1 - margin)"
    max_candidate_multiple: ClassVar[int] = 200  # the annealed candidate set's ceiling, × the budget

    def __init__(
        self, candidate_multiple: int = 10, *, anneal_per_class: float | None = 20.0, within_cluster: str = "central"
    ) -> None:
        if anneal_per_class is not None and anneal_per_class <= 0:
            raise ValueError(f"anneal_per_class must be positive or None, got {anneal_per_class}")
        if within_cluster not in WITHIN_CLUSTER:
            raise ValueError(f"within_cluster must be one of {', '.join(map(repr, WITHIN_CLUSTER))}, got {within_cluster!r}")
        self.candidate_multiple = candidate_multiple
        self.anneal_per_class = anneal_per_class
        self.within_cluster = within_cluster

    def rank(self, context: SelectionContext, budget: int) -> Ranked:
        scores = margin(context.probabilities)
        n_candidates = min(len(scores), self._candidates(context, budget))
        candidates = np.argpartition(-scores, n_candidates - 1)[:n_candidates] if n_candidates < len(scores) else np.arange(len(scores))
        vectors = context.embeddings[candidates]
        clusters = kmeans(vectors, budget, seed=context.seed)
        if self.within_cluster == "uncertain":
            key = -scores[candidates]
        elif self.within_cluster == "central":
            key = -clusters.similarity
        else:  # ranks, so that neither measure's scale decides
            key = -(rankdata(clusters.similarity) + rankdata(typicality(vectors, clusters.centroids)))
        order = round_robin(clusters.assignment, key, by_size=self.within_cluster != "uncertain")
        rows = candidates[order]
        return Ranked(rows, scores[rows], clusters.assignment[order], reason="hybrid")

    def _candidates(self, context: SelectionContext, budget: int) -> int:
        wanted = self.candidate_multiple * budget
        if self.anneal_per_class is None:
            return wanted
        classes = context.probabilities.shape[1] if context.probabilities is not None else 1
        labels_per_class = len(context.taken_embeddings) / max(classes, 1)
        wide = max(0.0, 1.0 - labels_per_class / self.anneal_per_class)  # 1 with no labels, 0 once enough
        # Capped: on a pool of millions, clustering all of it would cost what k-means does.
        return max(wanted, min(int(wide * len(context.pool_ids)), self.max_candidate_multiple * budget))


def round_robin(assignment: np.ndarray, key: np.ndarray, *, by_size: bool) -> np.ndarray:
    """Indices taking one member per cluster in turn, each cluster's members by ascending
    ``key``; clusters ordered by size (``by_size``) or by their best member's key."""
    order = np.lexsort((key, assignment))  # by cluster, then key
    clusters, starts, sizes = np.unique(assignment[order], return_index=True, return_counts=True)
    if by_size:
        cluster_order = np.argsort(-sizes, kind="stable")
    else:
        cluster_order = np.argsort(key[order][starts], kind="stable")
    position_in_cluster = np.arange(len(order)) - np.repeat(starts, sizes)
    rank_of_cluster = np.empty(len(clusters), dtype=np.int64)
    rank_of_cluster[cluster_order] = np.arange(len(clusters))
    turn = position_in_cluster * len(clusters) + np.repeat(rank_of_cluster, sizes)
    return order[np.argsort(turn, kind="stable")]


STRATEGIES: dict[str, type[SelectionStrategy]] = {
    cls.name: cls for cls in (RandomStrategy, LeastConfidence, Margin, Entropy, KMeansStrategy, KCenterStrategy, Hybrid)
}
DEFAULT_STRATEGY = "hybrid"
