"""Greedy k-center (farthest-first traversal): the core-set selection of Sener & Savarese
(2018). Each step picks the pool point farthest from every chosen or already labeled point.

The textbook loop computes every point's distance to every pick: a full pass over the pool per
step. Most of that work cannot change the answer. A point's distance to its nearest center
only ever shrinks, so a stale distance is an upper bound, and a point whose bound is below the
farthest distance found so far cannot be the farthest. ``_LazyTraversal`` keeps exact only the
few points whose bound reaches a threshold (the "members"), and brings the others up to date
in batches, one GEMM per batch, when the threshold has to come down to them. The picks are
the textbook loop's: the same argmax over the same distances, ties to the lowest row. In
high dimensions the triangle inequality prunes almost nothing (every center is at about the
same distance from everything), so the bounds come from the distances themselves. On the
benchmark's pools (bench/selection_speed.py, 110 picks) this computes under 40% of the
textbook loop's distances, and in GEMMs over many pending picks rather than one mat-vec per
pick.
"""

import numpy as np

_CHUNK = 65_536  # pool rows per BLAS call over the whole pool: bounds the temporaries for pools of millions
_GATHER = 16_384  # rows gathered per BLAS call when only some rows are updated
_CENTERS = 1_024  # centers per BLAS call: bounds the (rows, centers) similarity block
_SAMPLE = 4_096  # rows whose bounds place the threshold; which rows does not change the picks
_ADMIT = 16  # lowering the threshold admits about 1/_ADMIT of the pool, doubled while nothing qualifies
_MEMBER_BYTES = 2**25  # the members' gathered vectors stay under this


def greedy_k_center(vectors: np.ndarray, budget: int, *, centers: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices picked in order, and each pick's cosine distance to the nearest earlier
    center at the moment it was picked. ``vectors`` and ``centers`` are L2-normalised.

    With no ``centers`` the first pick is a seeded random row, at distance 1.0. Among rows at
    the same distance the lowest row is picked. Distances agree with a plain mat-vec loop to
    float32 rounding (the BLAS calls group the sums differently)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    budget = min(budget, n)
    picks = np.empty(budget, dtype=np.int64)
    distances = np.empty(budget, dtype=np.float32)
    if budget == 0:
        return picks, distances
    nearest = np.full(n, np.inf, dtype=np.float32)  # distance to the closest center so far
    if centers is not None and len(centers):
        _lower(nearest, vectors, np.ascontiguousarray(centers, dtype=np.float32))
        first = 0
    else:
        picks[0], distances[0] = int(np.random.default_rng(seed).integers(n)), 1.0  # nothing chosen yet: a seeded start
        _lower(nearest, vectors, vectors[picks[0] : picks[0] + 1])
        first = 1
    traversal = _LazyTraversal(vectors, nearest, budget)
    for step in range(first, budget):
        choice = traversal.farthest()
        picks[step], distances[step] = choice, nearest[choice]
        traversal.add(choice)
    return picks, distances


class _LazyTraversal:
    """Farthest-first over a pool whose ``nearest`` is exact for every row at the start (the
    given centers, or the random first pick, already applied).

    ``nearest[i]`` covers those and the first ``seen[i]`` picks made here: an upper bound on
    row i's distance, exact when ``seen[i] == count``. Invariant: every row outside ``members``
    has a bound below ``threshold``, and members are exact; so a member at or above the
    threshold that is the members' farthest is the pool's farthest."""

    def __init__(self, vectors: np.ndarray, nearest: np.ndarray, capacity: int) -> None:
        n, dim = vectors.shape
        self.vectors, self.nearest = vectors, nearest
        self.picked = np.empty(capacity, dtype=np.int64)  # rows, in pick order
        self.count = 0
        self.seen = np.zeros(n, dtype=np.int32)
        self.sample = np.arange(0, n, max(1, n // _SAMPLE))
        self.threshold = np.float32(np.inf)
        self.members = np.empty(0, dtype=np.int64)  # ascending, so argmax ties go to the lowest row
        self.member_vectors = np.empty((0, dim), dtype=np.float32)
        self.max_members = max(1, _MEMBER_BYTES // (4 * dim))

    def farthest(self) -> int:
        admit = max(1, len(self.vectors) // _ADMIT)
        while True:
            values = self.nearest[self.members]
            if len(values):
                best = int(np.argmax(values))
                if values[best] >= self.threshold:  # nothing outside can reach it
                    return int(self.members[best])
            if self.threshold == -np.inf:  # every row was taken in and none compares: NaNs
                return int(np.argmax(self.nearest))
            self._lower_threshold(admit)
            admit *= 2

    def add(self, row: int) -> None:
        self.picked[self.count] = row
        self.count += 1
        if len(self.members):
            distance = 1.0 - self.member_vectors @ self.vectors[row]
            self.nearest[self.members] = np.minimum(self.nearest[self.members], distance)
            self.seen[self.members] = self.count

    def _lower_threshold(self, admit: int) -> None:
        """Lower the threshold so that about ``admit`` more rows reach it (placed by the
        sample's bounds), bring those rows up to date, and keep as members the rows whose
        exact distance still reaches it."""
        bounds = self.nearest[self.sample]
        rank = admit * len(bounds) // len(self.vectors)
        threshold = _largest(bounds, rank + 1) if rank < len(bounds) else np.float32(-np.inf)
        rows = np.flatnonzero(self.nearest >= threshold)
        self._catch_up(rows[self.seen[rows] < self.count])
        exact = self.nearest[rows]
        if len(rows) > self.max_members:  # raising it again over exact rows keeps the invariant
            threshold = max(threshold, _largest(exact, self.max_members))
        self.members = rows[exact >= threshold]
        self.member_vectors = self.vectors[self.members]
        self.threshold = threshold

    def _catch_up(self, rows: np.ndarray) -> None:
        """Apply to ``rows`` the picks they have not seen, in one batch of GEMMs from the
        oldest missing pick. Rows that saw more picks get some of them again: harmless for a
        minimum, and about 15% more arithmetic than grouping rows by what each has seen, but a
        few large BLAS calls instead of many small ones (on a busy machine every threaded BLAS
        call waits for its threads to be scheduled)."""
        if len(rows):
            missing = self.picked[int(self.seen[rows].min()) : self.count]
            _lower(self.nearest, self.vectors, self.vectors[missing], rows)
            self.seen[rows] = self.count


def _largest(values: np.ndarray, rank: int) -> np.float32:
    """The rank-th largest of ``values`` (1 = the maximum)."""
    return np.partition(values, len(values) - rank)[len(values) - rank]


def _lower(nearest: np.ndarray, vectors: np.ndarray, centers: np.ndarray, rows: np.ndarray | None = None) -> None:
    """nearest = min(nearest, 1 − max cosine to ``centers``) over ``rows`` (all when None), in
    place, a block of rows and of centers at a time."""
    total = len(vectors) if rows is None else len(rows)
    step = _CHUNK if rows is None else _GATHER
    for start in range(0, total, step):
        index = slice(start, start + step) if rows is None else rows[start : start + step]
        block = vectors[index]
        for first in range(0, len(centers), _CENTERS):
            similarity = block @ centers[first : first + _CENTERS].T
            distance = 1.0 - (similarity.max(axis=1) if similarity.shape[1] > 1 else similarity[:, 0])
            nearest[index] = np.minimum(nearest[index], distance)
