"""The selection math on constructed data: uncertainty functions, indexes, k-center."""

from pathlib import Path

import numpy as np
import pytest

from driftloop.platform.selection.coreset import greedy_k_center
from driftloop.platform.selection.faiss_index import FaissIndex, kmeans, typicality
from driftloop.platform.selection.index import ExactIndex
from driftloop.platform.selection.uncertainty import entropy, least_confidence, margin
from tests.selection.vectors import blobs, unit


def test_uncertainty_functions_on_known_values() -> None:
    proba = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.6, 0.3, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(least_confidence(proba), [0.0, 0.5, 0.4, 2 / 3])
    np.testing.assert_allclose(margin(proba), [0.0, 1.0, 0.7, 1.0])
    np.testing.assert_allclose(entropy(proba), [0.0, np.log(2), -(0.6 * np.log(0.6) + 0.3 * np.log(0.3) + 0.1 * np.log(0.1)), np.log(3)])


@pytest.mark.parametrize("make", [lambda d: FaissIndex.empty(d), lambda d: ExactIndex(d)])
def test_indexes_agree_with_brute_force_and_survive_save_load(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    vectors, queries = unit(rng.normal(size=(500, 16))), unit(rng.normal(size=(20, 16)))
    ids = np.arange(1000, 1500)
    index = make(16)
    index.add(vectors, ids)
    truth = queries @ vectors.T
    scores, found = index.search(queries, 5)
    np.testing.assert_array_equal(found, ids[np.argsort(-truth, axis=1)[:, :5]])
    np.testing.assert_allclose(scores, np.sort(truth, axis=1)[:, ::-1][:, :5], atol=1e-5)
    for hits, row in zip(index.range_search(queries, 0.5), truth, strict=True):
        assert set(hits.tolist()) == set(ids[row >= 0.5].tolist())
    with pytest.raises(ValueError, match="already"):
        index.add(vectors[:1], ids[:1])
    index.remove(ids[:100])
    assert len(index) == 400 and not np.isin(ids[:100], index.ids()).any()
    path = tmp_path / "index"
    index.save(path)
    reloaded = type(index).load(path)
    assert len(reloaded) == 400
    np.testing.assert_array_equal(reloaded.search(queries, 3)[1], index.search(queries, 3)[1])


def test_k_center_covers_every_blob_and_starts_from_labeled_points() -> None:
    points, blob = blobs(8, 50)
    rows, distances = greedy_k_center(points, 8, seed=0)
    assert len(set(blob[rows])) == 8
    assert (np.diff(distances[1:]) <= 1e-6).all(), "farthest-first distances never grow"
    # with blobs 0-3 already labeled, the first four picks cover the other blobs
    taken = points[blob < 4][::10]
    rows, _ = greedy_k_center(points, 4, centers=taken, seed=0)
    assert set(blob[rows]) == {4, 5, 6, 7}


def test_kmeans_finds_the_blobs() -> None:
    points, blob = blobs(6, 40)
    clusters = kmeans(points, 6, seed=0)
    assignment = clusters.assignment
    # every blob lands in one cluster, and clusters do not mix blobs
    assert all(len(set(assignment[blob == b])) == 1 for b in range(6))
    assert len(set(assignment)) == 6
    # the similarity kept from the assignment is each row's cosine to its own centroid
    own = clusters.centroids[assignment]
    np.testing.assert_allclose(clusters.similarity, np.einsum("ij,ij->i", points, own), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(clusters.centroids, axis=1), 1.0, rtol=1e-5)
    tiny = kmeans(points[:3], 5, seed=0)
    assert sorted(tiny.assignment.tolist()) == [0, 1, 2]
    np.testing.assert_allclose(tiny.similarity, 1.0, rtol=1e-5)


def test_typicality_is_the_inverse_mean_distance_to_the_nearest_neighbours() -> None:
    rng = np.random.default_rng(4)
    points = unit(np.vstack([rng.normal(size=(300, 16)), rng.normal(loc=3.0, scale=0.2, size=(100, 16))]))
    centroids = kmeans(points, 8, seed=0).centroids
    similarity = points @ points.T
    np.fill_diagonal(similarity, -np.inf)  # a point is not its own neighbour
    nearest = -np.sort(-similarity, axis=1)[:, :10]
    expected = 1.0 / (np.mean(1.0 - nearest, axis=1) + 1e-6)
    # probing every list is the exact figure
    np.testing.assert_allclose(typicality(points, centroids, neighbours=10, nprobe=8), expected, rtol=1e-4)
    # probing a few lists finds fewer true neighbours, never closer ones: never more typical
    probed = typicality(points, centroids, neighbours=10, nprobe=2)
    assert np.all(probed <= expected * (1 + 1e-4))
    # the tight group is more typical than the diffuse one, whatever the probes
    assert probed[300:].min() > probed[:300].max()
    alone = typicality(points[:1], centroids[:1])
    assert alone.tolist() == [0.0]  # no neighbour at all


def test_a_saved_faiss_index_is_counted_from_its_header(tmp_path: Path) -> None:
    index = FaissIndex.empty(16)
    index.add(unit(np.random.default_rng(1).normal(size=(321, 16))), np.arange(321))
    index.remove(np.arange(21))
    index.save(tmp_path / "index")
    assert FaissIndex.saved_count(tmp_path / "index") == len(FaissIndex.load(tmp_path / "index")) == 300
    (tmp_path / "other").write_bytes(b"not an index at all")
    with pytest.raises(ValueError, match="not a flat inner-product index"):
        FaissIndex.saved_count(tmp_path / "other")
