"""The lazy farthest-first traversal against the plain loop it replaces: same picks, same distances."""

import numpy as np
import pytest

from driftloop.platform.selection.coreset import greedy_k_center
from tests.selection.vectors import blobs, unit


def reference_k_center(vectors: np.ndarray, budget: int, centers: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The textbook loop: every point's distance to each new center, then np.argmax (lowest row on ties)."""
    vectors = vectors.astype(np.float32)
    n = len(vectors)
    budget = min(budget, n)
    nearest = np.full(n, np.inf, dtype=np.float32)
    if centers is not None and len(centers):
        nearest = np.minimum(nearest, 1.0 - (vectors @ centers.astype(np.float32).T).max(axis=1))
    picks, distances = [], []
    for _ in range(budget):
        if np.isinf(nearest).all():
            choice = int(np.random.default_rng(seed).integers(n))
        else:
            choice = int(np.argmax(nearest))
        picks.append(choice)
        distances.append(nearest[choice] if np.isfinite(nearest[choice]) else 1.0)
        nearest = np.minimum(nearest, 1.0 - vectors @ vectors[choice])
    return np.array(picks, dtype=np.int64), np.array(distances, dtype=np.float32)


def gaussian(n: int, dim: int, seed: int) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=(n, dim)))


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    points, _ = blobs(50, n // 50, dim=dim, spread=0.3, seed=seed)
    return points


def assert_same_traversal(vectors: np.ndarray, budget: int, centers: np.ndarray | None = None, seed: int = 0) -> None:
    rows, distances = greedy_k_center(vectors, budget, centers=centers, seed=seed)
    expected_rows, expected_distances = reference_k_center(vectors, budget, centers, seed)
    assert rows.dtype == np.int64 and distances.dtype == np.float32
    np.testing.assert_array_equal(rows, expected_rows)
    # the BLAS calls group the sums differently: equal to float32 rounding
    np.testing.assert_allclose(distances, expected_distances, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("make", "n", "dim", "budget", "seed"),
    [
        (gaussian, 500, 8, 60, 0),
        (gaussian, 3_000, 64, 120, 1),
        (clustered, 5_000, 32, 80, 2),
        (clustered, 20_000, 48, 100, 3),  # more rows than the threshold's sample
        (gaussian, 40, 16, 40, 4),  # budget = n: the last picks are the leftovers
    ],
)
def test_picks_and_distances_match_the_plain_loop(make, n: int, dim: int, budget: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    assert_same_traversal(make(n, dim, seed), budget, seed=seed)


@pytest.mark.parametrize("n_centers", [1, 7, 1_500])  # 1,500: more than one block of centers
def test_given_centers_replace_the_random_start(n_centers: int) -> None:
    vectors = clustered(6_000, 32, seed=5)
    centers = gaussian(n_centers, 32, seed=6)
    assert_same_traversal(vectors, 50, centers=centers)
    rows, distances = greedy_k_center(vectors, 1, centers=centers)
    assert distances[0] == pytest.approx(1.0 - (vectors[rows[0]] @ centers.T).max(), abs=1e-6)


def test_tiny_pools_and_budgets_beyond_the_pool() -> None:
    one = gaussian(1, 8, seed=7)
    rows, distances = greedy_k_center(one, 5)
    assert rows.tolist() == [0] and distances.tolist() == [1.0]
    assert_same_traversal(gaussian(30, 8, seed=8), 100)
    empty_rows, empty_distances = greedy_k_center(gaussian(30, 8, seed=8), 0)
    assert len(empty_rows) == 0 and len(empty_distances) == 0


def test_the_seed_picks_the_start() -> None:
    vectors = gaussian(2_000, 16, seed=9)
    starts = {int(greedy_k_center(vectors, 3, seed=seed)[0][0]) for seed in range(5)}
    assert starts == {int(np.random.default_rng(seed).integers(2_000)) for seed in range(5)}
    assert_same_traversal(vectors, 30, seed=3)


def test_ties_go_to_the_lowest_row() -> None:
    # entries ±1/2 in 4-d: every dot product is exact in float32, so equal distances are
    # really equal and only the tie rule decides
    rng = np.random.default_rng(10)
    vectors = rng.choice([-0.5, 0.5], size=(300, 4)).astype(np.float32)
    assert_same_traversal(vectors, 40)
    assert_same_traversal(vectors, 40, centers=vectors[:3])
    axes = np.vstack([np.eye(4, dtype=np.float32)] * 3)  # rows 0-3, again as 4-7 and 8-11
    rows, distances = greedy_k_center(axes, 6, centers=axes[:1])
    assert rows.tolist() == [1, 2, 3, 0, 0, 0]  # row 0 is the given center: distance 0 after the axes
    assert distances.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_duplicates_are_picked_once_while_anything_else_is_farther() -> None:
    base = clustered(2_000, 16, seed=11)
    vectors = np.vstack([base, base[:500]])  # 500 exact copies
    rows, _ = greedy_k_center(vectors, 200)
    originals = np.where(rows >= 2_000, rows - 2_000, rows)
    assert len(set(originals.tolist())) == 200, "a row and its copy are never both picked"
    assert_same_traversal(vectors, 200)
