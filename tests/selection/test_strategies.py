"""Every registered strategy against the selection contract, then each one's defining property."""

import numpy as np
import pytest

from driftloop.platform.selection.base import SelectionContext
from driftloop.platform.selection.faiss_index import kmeans, typicality
from driftloop.platform.selection.picking import get_strategy, select
from driftloop.platform.selection.strategies import STRATEGIES
from tests.selection.vectors import blobs, unit


def context(n_blobs: int = 10, per_blob: int = 30, probabilities: bool = True, seed: int = 0, taken: np.ndarray | None = None) -> SelectionContext:
    points, _ = blobs(n_blobs, per_blob, seed=seed)
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(4), size=len(points)).astype(np.float32) if probabilities else None
    return SelectionContext(
        pool_ids=np.arange(10_000, 10_000 + len(points)),
        embeddings=points,
        probabilities=proba,
        taken_embeddings=taken if taken is not None else np.zeros((0, points.shape[1]), dtype=np.float32),
        seed=seed,
    )


@pytest.mark.parametrize("name", sorted(STRATEGIES))
class TestSelectionContract:
    def test_picks_budget_distinct_pool_texts_with_ranks(self, name: str) -> None:
        ctx = context()
        picks = select(get_strategy(name), ctx, 12)
        assert len(picks) == 12
        assert len({p.text_id for p in picks}) == 12
        assert {p.text_id for p in picks} <= set(ctx.pool_ids.tolist())
        assert [p.rank for p in picks] == list(range(12))

    def test_is_deterministic_for_a_seed(self, name: str) -> None:
        first = [p.text_id for p in select(get_strategy(name), context(), 8)]
        assert first == [p.text_id for p in select(get_strategy(name), context(), 8)]

    def test_budget_larger_than_the_pool_takes_what_is_there(self, name: str) -> None:
        ctx = context(n_blobs=2, per_blob=3, seed=1)
        assert len(select(get_strategy(name), ctx, 50, duplicate_threshold=1.01)) == 6

    def test_cold_start_without_a_champion(self, name: str) -> None:
        picks = select(get_strategy(name), context(probabilities=False), 10)
        assert len(picks) == 10
        if STRATEGIES[name].needs_probabilities:
            assert all(p.reason.startswith("cold start: diversity") for p in picks)

    def test_random_reserve_is_flagged(self, name: str) -> None:
        picks = select(get_strategy(name), context(), 20, random_fraction=0.25)
        reserve = [p for p in picks if p.is_random]
        assert len(reserve) == 5 and all(p.reason == "random reserve" and p.score is None for p in reserve)
        assert len({p.text_id for p in picks}) == 20


def test_uncertainty_strategies_pick_the_least_sure_points() -> None:
    ctx = context()
    proba = np.tile(np.array([0.97, 0.01, 0.01, 0.01], dtype=np.float32), (len(ctx.pool_ids), 1))
    proba[17] = [0.5, 0.5, 0.0, 0.0]  # a tie: the most uncertain by margin
    proba[42] = [0.25, 0.25, 0.25, 0.25]  # uniform: the most uncertain by entropy and least-confidence
    proba[99] = [0.55, 0.45, 0.0, 0.0]
    ctx = SelectionContext(ctx.pool_ids, ctx.embeddings, proba, ctx.taken_embeddings)
    ids = ctx.pool_ids
    assert [p.text_id for p in select(get_strategy("margin"), ctx, 3)] == [ids[17], ids[42], ids[99]]
    assert select(get_strategy("entropy"), ctx, 1)[0].text_id == ids[42]
    assert select(get_strategy("least-confidence"), ctx, 1)[0].text_id == ids[42]


@pytest.mark.parametrize("name", ["kmeans", "kcenter"])
def test_diversity_picks_span_the_clusters(name: str) -> None:
    points, blob = blobs(8, 40, seed=3)
    ctx = SelectionContext(np.arange(len(points)), points, None, np.zeros((0, points.shape[1]), dtype=np.float32), seed=3)
    picks = select(get_strategy(name), ctx, 8)
    assert len({blob[p.text_id] for p in picks}) == 8


@pytest.mark.parametrize(
    "options",
    [
        {"candidate_multiple": 4, "anneal_per_class": None, "within_cluster": "uncertain"},  # Cluster-Margin
        {"candidate_multiple": 1},  # the default, once the task has labels
    ],
)
def test_hybrid_covers_clusters_and_prefers_uncertain_points(options: dict) -> None:  # type: ignore[type-arg]
    points, blob = blobs(6, 40, seed=5)
    confident = np.random.default_rng(5).uniform(0.85, 0.95, size=len(points)).astype(np.float32)
    proba = np.stack([confident, 1 - confident], axis=1)
    uncertain = [b * 40 + 7 for b in range(6)]  # one unsure point per blob
    proba[uncertain] = [0.51, 0.49]
    labeled = unit(np.random.default_rng(1).normal(size=(60, points.shape[1])).astype(np.float32))  # 30 per class
    ctx = SelectionContext(np.arange(len(points)), points, proba, labeled)
    picks = select(get_strategy("hybrid", **options), ctx, 6)
    assert {p.text_id for p in picks} == set(uncertain)
    assert len({blob[p.text_id] for p in picks}) == 6
    # [0.51, 0.49]: a margin of 0.02, a score (1 - margin) of 0.98
    assert all(p.cluster is not None and p.reason.endswith("margin 0.020") for p in picks)
    assert all(p.score == pytest.approx(0.98) for p in picks)


def test_near_duplicates_are_suppressed() -> None:
    points, _ = blobs(5, 20, seed=7)
    pool = np.vstack([np.repeat(points[:1], 5, axis=0), points[1:]])  # five copies of one text
    taken = points[50:51]  # already labeled: its pool twin must not come back
    proba = np.full((len(pool), 2), 0.5, dtype=np.float32)  # all equally uncertain
    ctx = SelectionContext(np.arange(len(pool)), unit(pool), proba, taken)
    picks = select(get_strategy("margin"), ctx, 30)
    chosen = {p.text_id for p in picks}
    assert len(chosen & {0, 1, 2, 3, 4}) == 1
    assert 50 + 4 not in chosen  # pool row 54 is points[50], identical to the labeled text


def test_invalid_input_is_refused_clearly() -> None:
    ctx = context()
    with pytest.raises(ValueError, match="budget must be at least 1"):
        select(get_strategy("random"), ctx, 0)
    with pytest.raises(ValueError, match="random_fraction"):
        select(get_strategy("random"), ctx, 5, random_fraction=2)
    with pytest.raises(ValueError, match="unknown selection strategy 'x'"):
        get_strategy("x")
    bad = SelectionContext(ctx.pool_ids[:5], ctx.embeddings, None)
    with pytest.raises(ValueError, match="embeddings for a pool of 5"):
        select(get_strategy("random"), bad, 2)


def test_hybrid_variants_widen_the_candidates_on_a_small_budget_and_pick_central_points() -> None:
    points, blob = blobs(6, 40, seed=5)
    proba = np.full((len(points), 2), 0.9, dtype=np.float32)
    proba[:, 1] = 0.1
    proba[:40] = [0.5, 0.5]  # blob 0 is all uncertain
    no_labels = SelectionContext(np.arange(len(points)), points, proba, np.zeros((0, points.shape[1]), dtype=np.float32))
    narrow = select(get_strategy("hybrid", candidate_multiple=1, anneal_per_class=None), no_labels, 6)
    assert {blob[p.text_id] for p in narrow} == {0}  # only the uncertain blob is a candidate
    wide = select(get_strategy("hybrid", candidate_multiple=1, anneal_per_class=10), no_labels, 6)
    assert len({blob[p.text_id] for p in wide}) == 6  # no labels yet: the whole pool is a candidate
    elsewhere = unit(np.random.default_rng(0).normal(size=(40, points.shape[1])).astype(np.float32))
    many_labels = SelectionContext(no_labels.pool_ids, points, proba, elsewhere)  # 20 labels per class: annealed away
    assert {blob[p.text_id] for p in select(get_strategy("hybrid", candidate_multiple=1, anneal_per_class=10), many_labels, 6)} == {0}

    central = select(get_strategy("hybrid", candidate_multiple=40), no_labels, 6)  # central is the default
    for pick in central:  # each pick is the point of its blob nearest the blob's mean direction
        members = np.flatnonzero(blob == blob[pick.text_id])
        mean = points[members].mean(axis=0)
        assert pick.text_id == members[np.argmax(points[members] @ mean)]


def test_hybrid_representative_picks_are_central_and_in_a_dense_part_of_their_cluster() -> None:
    # Each cluster: a diffuse shell, a tight knot far off-centre (the densest spot), a dense
    # group near the centre, and one lone point at the centre itself (the most central spot).
    rng = np.random.default_rng(0)
    points, part = [], []
    for center in unit(rng.normal(size=(4, 32))):
        points += [
            center + 0.25 * rng.normal(size=(60, 32)),
            center + 0.3 * rng.normal(size=32) + 0.002 * rng.normal(size=(24, 32)),
            center + 0.03 * rng.normal(size=32) + 0.012 * rng.normal(size=(30, 32)),
            center[None, :],
        ]
        part += ["shell"] * 60 + ["knot"] * 24 + ["group"] * 30 + ["lone"]
    vectors = unit(np.vstack(points))
    proba = np.full((len(vectors), 2), 0.5, dtype=np.float32)
    ctx = SelectionContext(np.arange(len(vectors)), vectors, proba, np.zeros((0, 32), dtype=np.float32))

    representative = select(get_strategy("hybrid", candidate_multiple=100, within_cluster="representative"), ctx, 4)
    assert [part[p.text_id] for p in representative] == ["group"] * 4
    assert len({p.cluster for p in representative}) == 4
    # either measure alone goes wrong here: the centre alone finds the lone point...
    central = select(get_strategy("hybrid", candidate_multiple=100), ctx, 4)  # central is the default
    assert "lone" in {part[p.text_id] for p in central}
    # ...and density alone the knot
    clusters = kmeans(vectors, 4, seed=0)
    assignment, density = clusters.assignment, typicality(vectors, clusters.centroids)
    assert {part[np.flatnonzero(assignment == c)[np.argmax(density[assignment == c])]] for c in range(4)} == {"knot"}
