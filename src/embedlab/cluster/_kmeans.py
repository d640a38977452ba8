"""k-means with BLAS assignments: greedy k-means++ seeding, the spherical variant for cosine, restarts, and
mini-batch k-means for sets streamed from disk."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from embedlab._checks import check_choice, check_int
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.shards import ShardedSet
from embedlab.io.summary import row_hashes
from embedlab.io.validation import fit_rows, new_rows, prepare
from embedlab.scale import Backend

__all__ = ["KMeans", "MiniBatchKMeans", "assign_with_margin"]

logger = logging.getLogger(__name__)

ClusterMetric = Literal["cosine", "l2"]
_METRICS = ("cosine", "l2")
#: Rows summed per update block (64 MB of float32 at d = 256).
_BLOCK_ROWS = 65_536
#: Row-by-centre scores per assignment block (16 MB of float32).
_SCORE_BLOCK_VALUES = 2**22
#: ``n_candidates="auto"``: this many candidate centres per row from this many clusters on.
_AUTO_CANDIDATES = 64
_AUTO_CANDIDATES_FROM = 256
#: The graph-assignment phase ends once an iteration moves at most this share of the rows.
_GRAPH_SETTLED_SHARE = 1e-3


def _nearest_centers(X: np.ndarray, centers: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Squared Euclidean distances (clipped at 0) and indices of the ``k`` (1 or 2) nearest centres of each row.

    Blocks of ``||c||^2 - 2 x.c`` scores through numpy's BLAS, then an arg-min per row. Measured on the WordNet
    set (65,536 rows): 2.6 times faster than ``faiss.knn`` at 45 centres and 1.35 times at 1,000, because the
    faiss wheel's bundled BLAS is built for generic x86-64 while numpy's picks the CPU's kernels at run time.
    """
    centers32 = np.ascontiguousarray(centers, dtype=np.float32)
    center_norms = np.einsum("ij,ij->i", centers32, centers32)
    minus_twice = np.ascontiguousarray(-2.0 * centers32.T)
    sq = np.empty((X.shape[0], k), dtype=np.float32)
    idx = np.empty((X.shape[0], k), dtype=np.int64)
    step = max(1, _SCORE_BLOCK_VALUES // centers32.shape[0])
    for start in range(0, X.shape[0], step):
        block = X[start : start + step]
        scores = block @ minus_twice
        scores += center_norms
        rows = np.arange(scores.shape[0])
        row_norms_block = np.einsum("ij,ij->i", block, block)
        for column in range(k):  # k is 1 or 2: repeated arg-min passes beat a partition
            best = np.argmin(scores, axis=1)
            idx[start : start + step, column] = best
            sq[start : start + step, column] = scores[rows, best] + row_norms_block
            if column + 1 < k:
                scores[rows, best] = np.inf
    np.maximum(sq, 0.0, out=sq)
    return sq, idx


def _cluster_sums(X: np.ndarray, labels: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums of the rows (float64, block by block) and member counts."""
    sums = np.zeros((n_clusters, X.shape[1]))
    for start in range(0, X.shape[0], _BLOCK_ROWS):
        block_labels = labels[start : start + _BLOCK_ROWS]
        one_hot = sparse.csr_matrix(
            (np.ones(block_labels.size, dtype=np.float32), (block_labels, np.arange(block_labels.size))),
            shape=(n_clusters, block_labels.size),
        )
        # float32 products within a block (no float64 copy of the rows), accumulated in float64 across blocks
        sums += one_hot @ X[start : start + _BLOCK_ROWS]
    return sums, np.bincount(labels, minlength=n_clusters)


def kmeans_plusplus_indices(X: np.ndarray, n_clusters: int, rng: np.random.RandomState) -> np.ndarray:
    """Row indices of greedy k-means++ seeds: each new centre is the best of ``2 + log k`` D^2-sampled candidates.

    The candidates' squared distances to all rows come from one float32 product ``||x||^2 - 2 x.c + ||c||^2``
    per step, which reads the rows once; scikit-learn's ``kmeans_plusplus`` upcasts float32 blocks to float64
    for the same distances and is about 2 times slower (``benchmarks/bench_seeding.py``). The sampling only
    needs the distances to within rounding, so float32 loses nothing.

    References
    ----------
    Arthur and Vassilvitskii (2007), "k-means++: the advantages of careful seeding", SODA (greedy variant in
    its section 6, the one scikit-learn uses).
    """
    n = X.shape[0]
    n_trials = 2 + int(np.log(n_clusters))
    row_sq = np.einsum("ij,ij->i", X, X)
    chosen = np.empty(n_clusters, dtype=np.int64)
    chosen[0] = rng.randint(n)
    closest = np.maximum(row_sq - 2.0 * (X @ X[chosen[0]]) + row_sq[chosen[0]], 0.0)
    potential = float(closest.sum(dtype=np.float64))
    for step in range(1, n_clusters):
        thresholds = rng.uniform(size=n_trials) * potential
        candidates = np.minimum(np.searchsorted(np.cumsum(closest, dtype=np.float64), thresholds), n - 1)
        squared = X[candidates] @ X.T
        squared *= -2.0
        squared += row_sq
        squared += row_sq[candidates, None]
        np.maximum(squared, 0.0, out=squared)
        np.minimum(squared, closest, out=squared)
        potentials = squared.sum(axis=1, dtype=np.float64)
        best = int(np.argmin(potentials))
        chosen[step], closest, potential = candidates[best], squared[best], float(potentials[best])
    return chosen


def _seed(X: np.ndarray, n_clusters: int, init_size: int, rng: np.random.RandomState) -> np.ndarray:
    """k-means++ centres chosen from a uniform sample of ``init_size`` rows (all rows when fewer)."""
    rows = X if init_size >= X.shape[0] else X[np.sort(rng.choice(X.shape[0], init_size, replace=False))]
    return rows[kmeans_plusplus_indices(rows, n_clusters, rng)].astype(np.float64)


def _normalised(centers: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(centers, axis=1, keepdims=True)
    return np.divide(centers, norms, out=centers, where=norms > 0)


def _next_centers(
    sums: np.ndarray, counts: np.ndarray, farthest: Callable[[int], np.ndarray], spherical: bool
) -> np.ndarray:
    """The means of the clusters; an empty cluster takes one of the ``farthest(m)`` rows from their centres, as
    in scikit-learn; unit-normalised for spherical k-means."""
    updated = sums / np.maximum(counts, 1)[:, None]
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        updated[empty] = farthest(empty.size)
        logger.debug("k-means: %d empty clusters moved to the farthest rows", empty.size)
    if spherical:
        _normalised(updated)
    return updated


#: One Lloyd step: centres -> (inertia of the assignment, cluster sums, counts, the ``m`` farthest rows).
LloydStep = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray, Callable[[int], np.ndarray]]]


def lloyd_iterations(
    step: LloydStep,
    centers: np.ndarray,
    *,
    spherical: bool,
    max_iter: int,
    tol: float,
    advance: Advance,
    settled: Callable[[], bool] = lambda: False,
) -> tuple[np.ndarray, list[float]]:
    """Lloyd iterations from ``centers`` until the squared centre shift is at most ``tol`` (absolute), or
    until ``settled()`` says so after a step.

    ``step`` assigns the rows (an array, or every shard of a set) and sums them per cluster. Returns the final
    centres and the inertia of each iteration's assignment (one entry per iteration). Empty clusters take the
    rows farthest from their centres, as in scikit-learn.
    """
    inertias: list[float] = []
    while len(inertias) < max_iter:
        inertia, sums, counts, farthest = step(centers)
        inertias.append(inertia)
        updated = _next_centers(sums, counts, farthest, spherical)
        shift = float(((updated - centers) ** 2).sum())
        centers = updated
        advance(1)
        if shift <= tol or settled():
            break
    return centers, inertias


def _center_neighbours(centers: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` nearest centres of each centre (itself first), exactly, in blocks of rows."""
    centers32 = np.ascontiguousarray(centers, dtype=np.float32)
    norms = np.einsum("ij,ij->i", centers32, centers32)
    out = np.empty((centers32.shape[0], m), dtype=np.int64)
    step = max(1, _SCORE_BLOCK_VALUES // centers32.shape[0])
    for start in range(0, centers32.shape[0], step):
        scores = centers32[start : start + step] @ (-2.0 * centers32.T)
        scores += norms
        rows = np.arange(scores.shape[0])
        scores[rows, start + rows] = -np.inf  # a centre is its own first neighbour, even among equal ones
        part = np.argpartition(scores, m - 1, axis=1)[:, :m]
        out[start : start + step] = np.take_along_axis(part, np.argsort(scores[rows[:, None], part], axis=1), 1)
    return out


def _graph_assign(X: np.ndarray, labels: np.ndarray, centers: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest centre among the ``m`` nearest centres of its current one (Deng and Zhao 2018).

    Rows are taken cluster by cluster, so each cluster's rows meet its candidates in one small BLAS product.
    Returns the squared distances (clipped at 0) and the new labels.
    """
    neighbours = _center_neighbours(centers, m)
    centers32 = np.ascontiguousarray(centers, dtype=np.float32)
    center_norms = np.einsum("ij,ij->i", centers32, centers32)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(centers32.shape[0] + 1))
    sq = np.empty(X.shape[0], dtype=np.float32)
    new = np.empty(X.shape[0], dtype=np.int64)
    for c in np.flatnonzero(np.diff(bounds)):
        rows = order[bounds[c] : bounds[c + 1]]
        block = X[rows]
        candidates = neighbours[c]
        scores = block @ (-2.0 * centers32[candidates].T)
        scores += center_norms[candidates]
        best = np.argmin(scores, axis=1)
        new[rows] = candidates[best]
        sq[rows] = scores[np.arange(rows.size), best] + np.einsum("ij,ij->i", block, block)
    np.maximum(sq, 0.0, out=sq)
    return sq, new


def _lloyd(
    X: np.ndarray,
    centers: np.ndarray,
    *,
    spherical: bool,
    max_iter: int,
    tol: float,
    advance: Advance,
    candidates: int | None = None,
) -> tuple[np.ndarray, list[float]]:
    """:func:`lloyd_iterations` over the rows of an array.

    With ``candidates``, every iteration after the first assigns each row among the ``candidates`` nearest
    centres of its current centre (:func:`_graph_assign`) until an iteration moves at most
    ``_GRAPH_SETTLED_SHARE`` of the rows (the centre shift of a graph phase keeps creeping down long after
    its assignments stop improving); exact iterations then run from there until the centres settle, so the
    result is a fixed point of exact Lloyd iterations.
    """
    n_clusters = centers.shape[0]
    current_labels: list[np.ndarray] = []
    moved = [1.0]

    def update(sq: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, Callable]:
        current_labels[:] = [labels]
        sums, counts = _cluster_sums(X, labels, n_clusters)
        return (
            float(sq.sum(dtype=np.float64)),
            sums,
            counts,
            lambda m: X[np.argsort(sq, kind="stable")[::-1][:m]],
        )

    def exact(current: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, Callable[[int], np.ndarray]]:
        sq, labels = _nearest_centers(X, current)
        return update(sq[:, 0], labels[:, 0])

    def graph(current: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, Callable[[int], np.ndarray]]:
        if not current_labels:
            return exact(current)
        previous = current_labels[0]
        sq, labels = _graph_assign(X, previous, current, candidates)
        moved[0] = float(np.count_nonzero(labels != previous)) / labels.size
        return update(sq, labels)

    inertias: list[float] = []
    if candidates is not None and candidates < n_clusters:
        centers, inertias = lloyd_iterations(
            graph,
            centers,
            spherical=spherical,
            max_iter=max(max_iter - 1, 1),
            tol=tol,
            advance=advance,
            settled=lambda: moved[0] <= _GRAPH_SETTLED_SHARE,
        )
    centers, exact_inertias = lloyd_iterations(
        exact, centers, spherical=spherical, max_iter=max(max_iter - len(inertias), 1), tol=tol, advance=advance
    )
    return centers, inertias + exact_inertias


def assign_with_margin(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Nearest centre of each validated row, its margin ``1 - d1 / d2`` (1 with one centre), and the inertia.

    d1 and d2 are the Euclidean distances to the nearest and second-nearest centres: the margin is 0 on a
    boundary between two clusters and 1 at a centre.
    """
    k_nearest = min(2, centers.shape[0])
    sq, idx = _nearest_centers(X, centers, k_nearest)
    if k_nearest == 1:
        margin = np.ones(X.shape[0], dtype=np.float32)
    else:
        d = np.sqrt(sq)
        margin = np.where(d[:, 1] > 0, 1.0 - d[:, 0] / np.maximum(d[:, 1], 1e-30), 0.0).astype(np.float32)
    return idx[:, 0].copy(), margin, float(sq[:, 0].sum(dtype=np.float64))


class KMeans(ClusterMixin, BaseEstimator):
    """k-means clustering: k-means++ seeding, Lloyd iterations with an exact BLAS nearest-centre search.

    Every row takes part in every iteration unless ``max_points_per_centroid`` asks for faiss's subsampling,
    and then the rows used are reported (``n_training_points_``). With ``metric="cosine"`` this is spherical
    k-means: rows and centres are unit-normalised and rows go to the centre of highest cosine.

    Parameters
    ----------
    n_clusters : int, default=8
    metric : {"cosine", "l2"}, default="cosine"
    n_init : int, default=1
        Seedings run; the one of lowest inertia is kept.
    max_iter : int, default=100
        Lloyd iterations per run at most.
    tol : float, default=1e-4
        Stop when the total squared centre shift falls to ``tol`` times the mean per-feature variance of the
        rows (scikit-learn's rule).
    init : {"k-means++", "random"} or ndarray of shape (n_clusters, d), default="k-means++"
        Seeding: greedy k-means++ (``2 + log k`` candidates per centre), random distinct rows, or given centres.
    init_size : int, optional
        Rows sampled for the seeding (default ``min(n, max(10000, 32 n_clusters))``); k-means++ is quadratic
        in k, and the Lloyd iterations that follow use every row.
    max_points_per_centroid : int, optional
        Train on a seeded sample of ``n_clusters * max_points_per_centroid`` rows (faiss's default is 256),
        then assign every row. None (default) trains on all rows.
    n_candidates : int, None or "auto", default="auto"
        Approximate assignment for large k (Deng and Zhao 2018): after the first iteration each row is
        compared only with the ``n_candidates`` nearest centres of its current centre; once an iteration moves
        at most 0.1% of the rows, exact iterations continue until the centres settle, so the result is a
        fixed point of exact Lloyd iterations. None assigns exactly throughout; ``"auto"`` uses 64 candidates
        from k = 256 on (``benchmarks/bench_kmeans.py`` measures the gain).
    random_state : int, RandomState or None, default=None
    backend : {"local", "ray"} or Backend, default="local"
        Where the shards of a :class:`~embedlab.io.shards.ShardedSet` given to ``fit`` are processed (one pass
        per Lloyd iteration, :mod:`embedlab.scale`); an array is clustered in memory.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, d), float32
    labels_ : ndarray of shape (n,), int64
    confidence_ : ndarray of shape (n,), float32
        ``1 - d1 / d2`` with d1, d2 the Euclidean distances to the nearest and second-nearest centres: 0 on a
        boundary, 1 at a centre (1 everywhere when ``n_clusters == 1``).
    inertia_ : float
        Sum of squared Euclidean distances of the rows to their centres (unit rows for cosine).
    n_iter_ : int
        Lloyd iterations of the kept run.
    inertia_history_ : list of float
        Inertia of the training rows at the start of each of those iterations (non-increasing).
    n_training_points_ : int
    init_size_ : int

    References
    ----------
    Lloyd (1982), "Least squares quantization in PCM", IEEE Transactions on Information Theory 28(2).
    Arthur and Vassilvitskii (2007), "k-means++: the advantages of careful seeding", SODA.
    Dhillon and Modha (2001), "Concept decompositions for large sparse text data using clustering", Machine
    Learning 42 (spherical k-means).
    Johnson, Douze and Jégou (2019), "Billion-scale similarity search with GPUs", IEEE Transactions on Big
    Data (faiss).
    Deng and Zhao (2018), "Fast k-means based on k-NN graph", IEEE International Conference on Data
    Engineering (ICDE).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(50, 4)) + 8, rng.normal(size=(50, 4)) - 8].astype(np.float32)
    >>> km = KMeans(n_clusters=2, metric="l2", random_state=0).fit(X)
    >>> sorted(np.bincount(km.labels_).tolist())
    [50, 50]
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        metric: ClusterMetric = "cosine",
        n_init: int = 1,
        max_iter: int = 100,
        tol: float = 1e-4,
        init: str | np.ndarray = "k-means++",
        init_size: int | None = None,
        max_points_per_centroid: int | None = None,
        n_candidates: int | Literal["auto"] | None = "auto",
        random_state: int | np.random.RandomState | None = None,
        backend: str | Backend = "local",
    ) -> None:
        self.n_clusters = n_clusters
        self.metric = metric
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.init_size = init_size
        self.max_points_per_centroid = max_points_per_centroid
        self.n_candidates = n_candidates
        self.random_state = random_state
        self.backend = backend

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> KMeans:
        """Cluster the rows of ``X`` (an array, or a :class:`~embedlab.io.shards.ShardedSet` processed shard by
        shard on ``backend``); ``progress`` receives one step per Lloyd iteration.

        Raises
        ------
        EmbeddingDataError
            On invalid rows (NaN/Inf, zero rows under cosine).
        ConfigurationError
            On bad parameters, or ``n_clusters`` larger than the number of distinct rows (an all-identical set
            has one cluster).
        """
        if isinstance(X, ShardedSet):
            from embedlab.cluster._sharded import fit_shards  # it builds on this module's helpers

            fit_shards(self, X, progress)
            return self
        k = check_int(self.n_clusters, "n_clusters")
        check_choice(self.metric, "metric", _METRICS)
        for name in ("n_init", "max_iter"):
            check_int(getattr(self, name), name)
        rng = check_random_state(self.random_state)
        X = fit_rows(self, X, self.metric).vectors
        n = X.shape[0]
        if k > n:
            raise ConfigurationError(f"n_clusters={k} but X has only {n} rows; use n_clusters <= {n}.")
        distinct = np.unique(row_hashes(X)).size
        if k > distinct:
            raise ConfigurationError(
                f"n_clusters={k} but X has only {distinct} distinct rows, so some clusters would be copies of "
                f"others; use n_clusters <= {distinct} or remove the duplicates."
            )
        train = X
        if self.max_points_per_centroid is not None and k * self.max_points_per_centroid < n:
            train = X[np.sort(rng.choice(n, k * int(self.max_points_per_centroid), replace=False))]
            logger.info("k-means: training on %d of %d rows (max_points_per_centroid)", train.shape[0], n)
        self.n_training_points_ = int(train.shape[0])
        self.init_size_ = int(min(train.shape[0], self.init_size or max(10_000, 32 * k)))
        tol = self.tol * float(np.mean(np.var(train, axis=0, dtype=np.float64)))
        n_init = 1 if isinstance(self.init, np.ndarray) else int(self.n_init)
        candidates = self._candidates(k)
        best = None
        with progress.task(f"k-means, k={k}", n_init * self.max_iter) as advance:
            for _ in range(n_init):
                centers = self._initial_centers(train, k, rng)
                centers, inertias = _lloyd(
                    train,
                    centers,
                    spherical=self.metric == "cosine",
                    max_iter=self.max_iter,
                    tol=tol,
                    advance=advance,
                    candidates=candidates,
                )
                # With one run there is nothing to compare: skip the extra assignment pass.
                inertia = float(_nearest_centers(train, centers)[0].sum(dtype=np.float64)) if n_init > 1 else 0.0
                if best is None or inertia < best[0]:
                    best = (inertia, centers, inertias)
        _, centers, self.inertia_history_ = best
        self.n_iter_ = len(self.inertia_history_)
        self.cluster_centers_ = centers.astype(np.float32)
        if self.n_iter_ == self.max_iter:
            logger.info("k-means: stopped at max_iter=%d before the centres settled", self.max_iter)
        self.labels_, self.confidence_, self.inertia_ = assign_with_margin(X, self.cluster_centers_)
        logger.info("k-means: k=%d, inertia %.6g after %d iterations", k, self.inertia_, self.n_iter_)
        return self

    def _candidates(self, k: int) -> int | None:
        if self.n_candidates == "auto":
            return _AUTO_CANDIDATES if k >= _AUTO_CANDIDATES_FROM else None
        if self.n_candidates is None:
            return None
        return check_int(self.n_candidates, "n_candidates", 2)

    def _initial_centers(self, X: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
        if isinstance(self.init, np.ndarray):
            centers = np.asarray(self.init, dtype=np.float64)
            if centers.shape != (k, X.shape[1]):
                raise ConfigurationError(f"init has shape {centers.shape}; expected ({k}, {X.shape[1]}).")
            return _normalised(centers.copy()) if self.metric == "cosine" else centers.copy()
        if self.init == "random":
            return X[rng.choice(X.shape[0], k, replace=False)].astype(np.float64)
        if self.init == "k-means++":
            return _seed(X, k, self.init_size_, rng)
        raise ConfigurationError(f"init must be 'k-means++', 'random' or an array of centres, got {self.init!r}.")

    def predict(self, X: object) -> np.ndarray:
        """Index of the nearest centre of each row of ``X``."""
        check_is_fitted(self, "cluster_centers_")
        return assign_with_margin(self._check_new(X), self.cluster_centers_)[0]

    def predict_confidence(self, X: object) -> np.ndarray:
        """``1 - d1 / d2`` for each row of ``X`` (see ``confidence_``)."""
        check_is_fitted(self, "cluster_centers_")
        return assign_with_margin(self._check_new(X), self.cluster_centers_)[1]

    def score(self, X: object, y: object = None) -> float:
        """Opposite of the inertia of ``X`` against the fitted centres (higher is better)."""
        check_is_fitted(self, "cluster_centers_")
        return -assign_with_margin(self._check_new(X), self.cluster_centers_)[2]

    def _check_new(self, X: object) -> np.ndarray:
        return new_rows(self, X, self.metric).vectors


class MiniBatchKMeans(ClusterMixin, BaseEstimator):
    """Mini-batch k-means for sets larger than memory: feed batches to ``partial_fit`` (or ``fit`` an array).

    Each batch is assigned to the nearest centres (exact, through BLAS); each centre moves to the running mean
    of all rows ever assigned to it (per-centre learning rate 1 / count, Sculley 2010). The first batch seeds
    the centres by k-means++ and must hold at least ``n_clusters`` rows. Cosine makes it spherical.

    Parameters
    ----------
    n_clusters : int, default=8
    metric : {"cosine", "l2"}, default="cosine"
    batch_size : int, default=4096
        Rows per step of ``fit``.
    max_epochs : int, default=1
        Passes of ``fit`` over the array.
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, d), float32
    counts_ : ndarray of shape (n_clusters,), int64
        Rows assigned to each centre so far.
    n_seen_ : int
    labels_ : ndarray of shape (n,)
        After ``fit`` only: the final assignment of the array.

    References
    ----------
    Sculley (2010), "Web-scale k-means clustering", WWW.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(500, 4)) + 8, rng.normal(size=(500, 4)) - 8].astype(np.float32)
    >>> km = MiniBatchKMeans(n_clusters=2, metric="l2", batch_size=100, random_state=0)
    >>> for start in range(0, 1000, 250):
    ...     _ = km.partial_fit(X[rng.permutation(1000)[:250]])
    >>> sorted(np.bincount(km.predict(X)).tolist())
    [500, 500]
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        metric: ClusterMetric = "cosine",
        batch_size: int = 4096,
        max_epochs: int = 1,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.metric = metric
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.random_state = random_state

    def partial_fit(self, X: object, y: object = None) -> MiniBatchKMeans:
        """Update the centres with one batch of rows."""
        k = check_int(self.n_clusters, "n_clusters")
        check_choice(self.metric, "metric", _METRICS)
        first = not hasattr(self, "cluster_centers_")
        batch = fit_rows(self, X, self.metric) if first else new_rows(self, X, self.metric)
        batch = batch.vectors
        if first:
            if batch.shape[0] < k:
                raise EmbeddingDataError(
                    f"the first batch has {batch.shape[0]} rows, fewer than n_clusters={k}; "
                    "seed with a larger first batch."
                )
            self._rng = check_random_state(self.random_state)
            self._centers = _seed(batch, k, max(10_000, 32 * k), self._rng)
            self.counts_ = np.zeros(k, dtype=np.int64)
            self.n_seen_ = 0
        _, labels = _nearest_centers(batch, self._centers)
        sums, counts = _cluster_sums(batch, labels[:, 0], k)
        total = self.counts_ + counts
        moved = counts > 0
        self._centers[moved] = (self._centers[moved] * self.counts_[moved, None] + sums[moved]) / total[moved, None]
        if self.metric == "cosine":
            _normalised(self._centers)
        self.counts_ = total
        self.n_seen_ += batch.shape[0]
        self.cluster_centers_ = self._centers.astype(np.float32)
        return self

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> MiniBatchKMeans:
        """Run ``max_epochs`` shuffled passes of mini-batches over the rows of ``X``, then assign them."""
        k = check_int(self.n_clusters, "n_clusters")
        check_choice(self.metric, "metric", _METRICS)
        rows = prepare(X, self.metric)
        if rows.n < k:
            raise ConfigurationError(f"n_clusters={k} but X has only {rows.n} rows.")
        for attribute in ("cluster_centers_", "_centers", "counts_", "n_seen_", "n_features_in_"):
            self.__dict__.pop(attribute, None)
        rng = check_random_state(self.random_state)
        step = max(int(self.batch_size), k)
        with progress.task(f"mini-batch k-means, k={k}", int(self.max_epochs) * rows.n) as advance:
            for _ in range(int(self.max_epochs)):
                order = rng.permutation(rows.n)
                for start in range(0, rows.n, step):
                    self.partial_fit(rows.take(np.sort(order[start : start + step])))
                    advance(min(step, rows.n - start))
        self.labels_ = self.predict(rows)
        return self

    def predict(self, X: object) -> np.ndarray:
        """Index of the nearest centre of each row of ``X``."""
        check_is_fitted(self, "cluster_centers_")
        rows = new_rows(self, X, self.metric).vectors
        return _nearest_centers(rows, self.cluster_centers_)[1][:, 0].copy()
