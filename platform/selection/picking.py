"""``select``: the template every strategy runs in (see ``base`` for the steps)."""

from collections.abc import Callable

import numpy as np

from driftloop.platform.selection.base import Pick, Ranked, SelectionContext, SelectionStrategy
from driftloop.platform.selection.faiss_index import make_index
from driftloop.platform.selection.index import VectorIndex
from driftloop.platform.selection.strategies import STRATEGIES, KMeansStrategy


def get_strategy(name: str, **options: object) -> SelectionStrategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name](**options)


def ranker(strategy: SelectionStrategy, context: SelectionContext) -> SelectionStrategy:
    """The strategy that ranks ``context``: ``strategy``, or with no champion's probabilities for
    one that needs them, k-means diversity (cold start)."""
    return KMeansStrategy() if strategy.needs_probabilities and context.probabilities is None else strategy


def select(
    strategy: SelectionStrategy,
    context: SelectionContext,
    budget: int,
    *,
    random_fraction: float = 0.0,
    duplicate_threshold: float = 0.95,
    index_factory: Callable[[int], VectorIndex] = make_index,
) -> list[Pick]:
    _validate(context, budget, random_fraction)
    n = len(context.pool_ids)
    budget = min(budget, n)
    n_random = int(round(budget * random_fraction))
    ranking = ranker(strategy, context)
    cold = ranking is not strategy
    guard = _Guard(context, duplicate_threshold, index_factory)

    accepted: list[tuple[int, float | None, int | None, str]] = []
    wanted = budget - n_random
    request = wanted  # strategies that rank by budget (k-means: k) must see the real one
    seen: set[int] = set()
    while wanted and len(accepted) < wanted:
        ranked = ranking.rank(context, min(request, n))
        for position, row in enumerate(ranked.rows):
            row = int(row)
            if len(accepted) == wanted:
                break
            if row in seen:
                continue
            seen.add(row)
            if guard.is_duplicate(row):
                continue
            guard.accept(row)
            accepted.append((row, float(ranked.scores[position]), _cluster(ranked, position), _reason(ranked, position, cold)))
        if request >= n or len(ranked.rows) < min(request, n):
            break  # the strategy has nothing more to offer
        request *= 3

    chosen = {row for row, *_ in accepted}
    reserve = 0
    for row in np.random.default_rng([context.seed, 1]).permutation(n) if n_random else []:
        if reserve == n_random:
            break
        row = int(row)
        if row in chosen or guard.is_duplicate(row):
            continue
        guard.accept(row)
        accepted.append((row, None, None, "random reserve"))
        reserve += 1

    return [
        Pick(int(context.pool_ids[row]), rank, score, cluster, reason, is_random=reason == "random reserve")
        for rank, (row, score, cluster, reason) in enumerate(accepted)
    ]


class _Guard:
    """Near-duplicate checks: against what is labeled or queued (one batched FAISS range
    search up front) and against the picks accepted so far.

    The picks so far are a few budgets' rows at most, checked with one numpy mat-vec per
    candidate: a FAISS call per pick (search, then add) cost more than its arithmetic, and on a
    busy machine each call's thread pool waited to be scheduled (bench/RESULTS.md, selection
    speed). Not ``ExactIndex`` either: it re-stacks its whole matrix on every add, quadratic in
    a large budget; this buffer doubles.
    """

    def __init__(self, context: SelectionContext, threshold: float, index_factory: Callable[[int], VectorIndex]) -> None:
        self.context, self.threshold = context, threshold
        dim = context.embeddings.shape[1]
        self.near_taken = np.zeros(len(context.pool_ids), dtype=bool)
        if context.taken_embeddings.size:
            taken = index_factory(dim)
            taken.add(context.taken_embeddings, np.arange(len(context.taken_embeddings)))
            hits = taken.range_search(context.embeddings, threshold)
            self.near_taken = np.array([len(h) > 0 for h in hits])
        self._picked = np.empty((64, dim), dtype=np.float32)
        self._count = 0

    def is_duplicate(self, row: int) -> bool:
        if self.near_taken[row]:
            return True
        if not self._count:
            return False
        return bool((self._picked[: self._count] @ self.context.embeddings[row]).max() >= self.threshold)

    def accept(self, row: int) -> None:
        if self._count == len(self._picked):
            self._picked = np.concatenate([self._picked, np.empty_like(self._picked)])
        self._picked[self._count] = self.context.embeddings[row]
        self._count += 1


def _cluster(ranked: Ranked, position: int) -> int | None:
    return None if ranked.clusters is None else int(ranked.clusters[position])


def _reason(ranked: Ranked, position: int, cold: bool) -> str:
    score = ranked.scores[position]
    if cold:
        return f"cold start: diversity, cluster {_cluster(ranked, position)}"
    match ranked.reason:
        # Their score is 1 - margin, so that higher means less sure; the reason gives the
        # margin itself (top probability - second), which is what "margin" means to a reader.
        case "hybrid":
            return f"cluster {_cluster(ranked, position)}, margin {1 - score:.3f}"
        case "margin":
            return f"margin {1 - score:.3f}"
        case "k-means centroid":
            return f"nearest to centroid {_cluster(ranked, position)} (cos {score:.3f})"
        case "k-center distance":
            return f"k-center distance {score:.3f}"
        case "random":
            return "random"
    return f"{ranked.reason} {score:.3f}"


def _validate(context: SelectionContext, budget: int, random_fraction: float) -> None:
    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    if not 0.0 <= random_fraction <= 1.0:
        raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction}")
    n = len(context.pool_ids)
    if context.embeddings.shape[0] != n:
        raise ValueError(f"{context.embeddings.shape[0]} embeddings for a pool of {n}")
    if context.probabilities is not None and context.probabilities.shape[0] != n:
        raise ValueError(f"{context.probabilities.shape[0]} probability rows for a pool of {n}")
    if n == 0:
        raise ValueError("the pool is empty")
