"""FAISS behind the ``VectorIndex`` interface, and FAISS k-means. The only module that imports faiss.

The index is exact (``IndexFlatIP`` under an ``IndexIDMap2``, so vectors keep the ids they were
added with and can be removed): selection pools are at most a few million vectors, where a flat
scan is a matter of seconds and needs no training. Where FAISS sees a GPU, k-means and flat
search run there; range search has no GPU implementation in FAISS and stays on the CPU.
"""

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from driftloop.platform.selection.index import VectorIndex, check_new_ids, check_vectors, write_atomically


def use_gpu() -> bool:
    """True where the installed FAISS was built with CUDA and sees at least one GPU."""
    return faiss.get_num_gpus() > 0


class FaissIndex(VectorIndex):
    def __init__(self, index: faiss.IndexIDMap2) -> None:
        self._index = index
        self.dim = index.d
        self._gpu_copy: faiss.Index | None = None  # dropped on every change, so never stale

    @classmethod
    def empty(cls, dim: int) -> "FaissIndex":
        if dim < 1:
            raise ValueError(f"dim must be at least 1, got {dim}")
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path) -> "FaissIndex":
        index = faiss.read_index(str(path))
        if not isinstance(index, faiss.IndexIDMap2) or not isinstance(faiss.downcast_index(index.index), faiss.IndexFlatIP):
            raise ValueError(f"{path} is not a flat inner-product index with ids")
        return cls(index)

    @staticmethod
    def saved_count(path: Path) -> int:
        """How many vectors the index saved at ``path`` holds, read from its header: loading a
        flat index reads every vector (1.5 GB at a million), and a status check needs one number."""
        with path.open("rb") as stream:
            header = stream.read(16)
        # An IndexIDMap2 starts with its fourcc, then the common index header: d (int32), ntotal (int64).
        if len(header) < 16 or header[:4] != b"IxM2":
            raise ValueError(f"{path} is not a flat inner-product index with ids")
        return int(np.frombuffer(header, dtype="<i8", count=1, offset=8)[0])

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        vectors = check_vectors(vectors, self.dim)
        ids = check_new_ids(ids, len(vectors), self.ids())  # IndexIDMap2 would silently keep both
        self._index.add_with_ids(vectors, ids)
        self._gpu_copy = None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = check_vectors(queries, self.dim, "queries")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        similarities, ids = self._searcher().search(queries, k)
        similarities[ids < 0] = -np.inf  # FAISS pads with -FLT_MAX; the interface says -inf
        return similarities, ids

    def range_search(self, queries: np.ndarray, threshold: float) -> list[np.ndarray]:
        queries = check_vectors(queries, self.dim, "queries")
        # FAISS keeps inner products strictly above the radius; the float32 just below the
        # threshold turns that into "similarity ≥ threshold".
        radius = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
        limits, similarities, ids = self._index.range_search(queries, radius)
        results = []
        for start, stop in zip(limits[:-1], limits[1:], strict=True):
            order = np.lexsort((ids[start:stop], -similarities[start:stop]))  # most similar first
            results.append(ids[start:stop][order].astype(np.int64))
        return results

    def remove(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._index.remove_ids(faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids)))
        self._gpu_copy = None

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: Path) -> None:
        write_atomically(path, lambda name: faiss.write_index(self._index, name))

    def _searcher(self) -> faiss.Index:
        if not use_gpu():
            return self._index
        if self._gpu_copy is None:
            self._gpu_copy = faiss.index_cpu_to_all_gpus(self._index)  # the id map stays, the flat part moves
        return self._gpu_copy


def make_index(dim: int) -> VectorIndex:
    return FaissIndex.empty(dim)


@dataclass(frozen=True)
class Clusters:
    """k-means' result: ``centroids`` (k, d) on the unit sphere, and for each row its nearest
    centroid (``assignment``, int64) and its cosine similarity to it (``similarity``, float32)."""

    centroids: np.ndarray
    assignment: np.ndarray
    similarity: np.ndarray


def kmeans(
    vectors: np.ndarray,
    k: int,
    *,
    seed: int,
    niter: int = 20,
    restarts: int = 5,
    training_work: int = 2**24,
) -> Clusters:
    """Spherical FAISS k-means of L2-normalised rows into min(k, n) clusters.

    Seeding is k-means++: with random seeding two seeds often land in one well-separated group
    and Lloyd's iterations never move one of them out. Even k-means++ sometimes merges two
    groups and splits a third, so ``restarts`` runs are made and the best objective kept.
    Training uses at most 256 points per centroid (FAISS samples them with the seed); every row
    is then assigned, and the assignment's inner products are kept as ``similarity``, so that
    callers ranking by closeness to the centroid need not compute them again (on a pool of
    millions that is a second pass over the pool). With ``k ≥ n`` each row is its own cluster.

    Training is capped at ``training_work`` point-to-centroid distances, all restarts and
    iterations together (2**24: about 0.2 s of one core at 384-d), because restarts are cheap
    only on small pools. There, where they matter (the merges they guard against are of small,
    well-separated groups), a pool gets them all while they fit the cap: BBC News' 1,700 rows at
    k = 10 still get five runs on every row. Past the cap the restarts go first, then the sample
    shrinks, to no fewer than 32 points per centroid: at 100,000 rows and k = 100 five runs on
    256 points per centroid were most of the time, and a big pool's sample holds thousands of
    points from which k-means++ seeds every large group anyway. On the active-learning benchmark
    the health tweets' pool (10,000 rows, k = 50) now trains once instead of five times with no
    loss of label efficiency (bench/RESULTS.md, selection speed).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"k-means needs a non-empty (n, d) matrix, got shape {np.shape(vectors)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n, dim = x.shape
    if k >= n:  # FAISS needs more points than centroids
        centroids = x.copy()
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        np.divide(centroids, norms, out=centroids, where=norms > 0)
        return Clusters(centroids, np.arange(n, dtype=np.int64), np.einsum("ij,ij->i", x, centroids))
    one_run = min(n, 256 * k) * k * niter
    restarts = max(1, min(restarts, training_work // one_run))
    # rounded up, so that a pool whose single run fits the cap is taken whole
    per_centroid = int(np.clip(-(-training_work // (k * k * niter)), 32, 256))
    model = faiss.Kmeans(
        dim,
        k,
        niter=niter,
        nredo=restarts,
        seed=seed % 2**31,  # FAISS takes a C int
        spherical=True,  # centroids stay on the unit sphere, as cosine similarity needs
        init_method=faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS,
        min_points_per_centroid=1,  # small pools are normal here: no "please provide more points" warning
        max_points_per_centroid=per_centroid,
        gpu=use_gpu(),
        verbose=False,
    )
    model.train(x)
    similarity, assignment = model.assign(x)  # spherical: an inner-product index, so D is the cosine
    return Clusters(model.centroids, assignment.astype(np.int64), similarity)


def typicality(vectors: np.ndarray, centroids: np.ndarray, *, neighbours: int = 20, nprobe: int = 8) -> np.ndarray:
    """TypiClust's typicality (Hacohen et al., 2022): the inverse of a point's mean cosine
    distance to its ``neighbours`` nearest neighbours among ``vectors``; 0 for a point with none.

    The neighbours are searched in an IVF index whose lists are the caller's k-means clusters
    (``centroids``), probing the ``nprobe`` nearest lists: the cost is a few clusters per point
    instead of the whole set, which keeps it cheap on a candidate set of many thousands. With
    ``nprobe`` at least the number of clusters it is the exact k-nearest-neighbour figure.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    quantizer = faiss.IndexFlatIP(x.shape[1])
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    index = faiss.IndexIVFFlat(quantizer, x.shape[1], len(centroids), faiss.METRIC_INNER_PRODUCT)
    index.is_trained = True  # the lists are the caller's clusters: nothing to train
    index.add(x)
    index.nprobe = min(nprobe, len(centroids))
    similarity, found = index.search(x, min(neighbours + 1, len(x)))
    # A point finds itself (or, among exact duplicates, maybe not); short lists pad with -1.
    neighbour = (found >= 0) & (found != np.arange(len(x))[:, None])
    neighbour &= np.cumsum(neighbour, axis=1) <= neighbours
    count = neighbour.sum(axis=1)
    mean_distance = np.where(neighbour, 1.0 - similarity, 0.0).sum(axis=1) / np.maximum(count, 1)
    return np.where(count > 0, 1.0 / (mean_distance + 1e-6), 0.0)
