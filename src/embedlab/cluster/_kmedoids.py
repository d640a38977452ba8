"""k-medoids by FasterPAM: the ``kmedoids`` package on a distance matrix that fits, the same eager swaps without
the matrix beyond."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int
from embedlab._optional import import_optional
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster._kmeans import ClusterMetric, KMeans
from embedlab.cluster.naming import medoids
from embedlab.exceptions import ConfigurationError, MissingDependencyError
from embedlab.io.validation import fit_rows, new_rows

__all__ = ["KMedoids"]

logger = logging.getLogger(__name__)

SOLVERS = ("auto", "matrix", "blocked")
# Candidate distances computed at once by the blocked solver (one matrix product per block).
_CANDIDATE_VALUES = 2**23


def _distances(X: np.ndarray, Y: np.ndarray, metric: ClusterMetric) -> np.ndarray:
    """Cosine distances of unit rows, or Euclidean distances, between the rows of ``X`` and ``Y`` (float64)."""
    if metric == "cosine":
        return np.maximum(1.0 - X.astype(np.float64) @ Y.astype(np.float64).T, 0.0)
    squared = (X.astype(np.float64) ** 2).sum(1)[:, None] + (Y.astype(np.float64) ** 2).sum(1)[None]
    return np.sqrt(np.maximum(squared - 2.0 * X.astype(np.float64) @ Y.astype(np.float64).T, 0.0))


def _nearest_two(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's nearest medoid and its distances to the nearest and second-nearest.

    With one medoid the second is a finite bound above every distance a candidate can have (by the triangle
    inequality at most twice the largest distance to the medoid; 2 under cosine): the swap's change then sums to
    the candidate's total minus the medoid's, where an infinite second would give inf - inf.
    """
    near = distances.argmin(axis=1)
    rows = np.arange(distances.shape[0])
    first = distances[rows, near]
    if distances.shape[1] == 1:
        return near, first, np.full_like(first, 2.0 * max(float(first.max()), 1.0) + 1.0)
    masked = distances.copy()
    masked[rows, near] = np.inf
    return near, first, masked.min(axis=1)


def _blocked_fasterpam(
    X: np.ndarray,
    chosen: np.ndarray,
    metric: ClusterMetric,
    max_iter: int,
    rng: np.random.RandomState,
    progress: ProgressReporter,
) -> tuple[np.ndarray, int]:
    """FasterPAM's eager swaps from the medoids ``chosen``, with the candidates' distances computed in blocks:
    memory is n x k distances, never n x n. Returns the medoids and the passes made."""
    n, k = X.shape[0], chosen.size
    distances = _distances(X, X[chosen], metric)
    near, first, second = _nearest_two(distances)
    removal = np.bincount(near, weights=second - first, minlength=k)
    block = max(1, _CANDIDATE_VALUES // n)
    order = np.roll(np.arange(n), -rng.randint(n))
    passes = 0
    with progress.task(f"k-medoids, {k} medoids", max_iter) as advance:
        for _ in range(max_iter):
            passes += 1
            swaps = 0
            for start in range(0, n, block):
                candidates = order[start : start + block]
                for c, d in zip(candidates, _distances(X[candidates], X, metric), strict=True):
                    if first[c] == 0.0:  # a medoid, or a copy of one: swapping it changes nothing
                        continue
                    # FastPAM1: the change of total deviation for swapping c with every medoid at once.
                    closer = d < first
                    between = ~closer & (d < second)
                    delta = removal + np.bincount(near[closer], weights=(first - second)[closer], minlength=k)
                    delta += np.bincount(near[between], weights=(d - second)[between], minlength=k)
                    m = int(delta.argmin())
                    if delta[m] + (d - first)[closer].sum() < -1e-7 * first.sum():
                        chosen[m] = c
                        distances[:, m] = d
                        near, first, second = _nearest_two(distances)
                        removal = np.bincount(near, weights=second - first, minlength=k)
                        swaps += 1
            advance(1)
            if swaps == 0:
                break
    return chosen, passes


class KMedoids(ClusterMixin, BaseEstimator):
    """k-medoids: ``n_clusters`` rows of the set (the medoids) that minimise the total distance of every row to
    its nearest medoid, found by FasterPAM's eager swaps.

    Seeded with the medoid of each (spherical, for cosine) k-means cluster. FasterPAM (Schubert and Rousseeuw
    2021) then takes each non-medoid row in turn as a candidate, computes the change of total deviation for
    swapping it with every medoid at once from each row's nearest and second-nearest medoid (FastPAM1, O(k)
    faster than PAM), and makes the best swap at once when it lowers the deviation, until a pass over all rows
    makes none. The ``matrix`` solver is the ``kmedoids`` package's FasterPAM (the ``kmedoids`` extra) on the
    n x n distance matrix; the ``blocked`` solver makes the same swaps with the candidates' distances computed in
    blocks, so memory is n x k distances: it is what runs past ``max_matrix_bytes``, where the matrix would not
    fit.

    Parameters
    ----------
    n_clusters : int, default=8
    metric : {"cosine", "l2"}, default="cosine"
        Cosine distance of unit-normalised rows, or Euclidean distance.
    max_iter : int, default=100
        Passes over the candidates at most.
    solver : {"auto", "matrix", "blocked"}, default="auto"
        ``auto``: the ``kmedoids`` package when it is installed and the float64 matrix fits
        ``max_matrix_bytes``, else ``blocked``.
    max_matrix_bytes : int, default=2**30
        The largest n x n distance matrix ``auto`` builds (1 GiB: about 11,500 rows).
    random_state : int, RandomState or None, default=0
        Seeds the k-means (hence the first medoids) and the row the blocked solver's first pass starts from.

    Attributes
    ----------
    medoid_indices_ : ndarray of shape (n_clusters,), int64
        Row positions of the medoids.
    cluster_centers_ : ndarray of shape (n_clusters, d), float32
        The medoids (unit-normalised under cosine).
    labels_ : ndarray of shape (n,), int64
        Each row's nearest medoid, an index into ``medoid_indices_``.
    inertia_ : float
        The total deviation: the sum of each row's distance to its medoid.
    n_iter_ : int
        Passes made.
    solver_ : str
        ``"matrix"`` or ``"blocked"``.
    n_features_in_ : int

    References
    ----------
    Schubert and Rousseeuw (2021), "Fast and eager k-medoids clustering: O(k) runtime improvement of the PAM,
    CLARA, and CLARANS algorithms", Information Systems 101. Kaufman and Rousseeuw (1990), "Partitioning around
    medoids (program PAM)", Finding Groups in Data.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.concatenate([np.random.default_rng(0).normal(size=(30, 4)) + 8 * c for c in np.eye(4)[:3]])
    >>> model = KMedoids(3, metric="l2", solver="blocked").fit(X)
    >>> sorted(np.bincount(model.labels_).tolist()), model.solver_
    ([30, 30, 30], 'blocked')
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        metric: ClusterMetric = "cosine",
        max_iter: int = 100,
        solver: str = "auto",
        max_matrix_bytes: int = 2**30,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.metric = metric
        self.max_iter = max_iter
        self.solver = solver
        self.max_matrix_bytes = max_matrix_bytes
        self.random_state = random_state

    def _solver(self, n: int) -> str:
        solver = check_choice(self.solver, "solver", SOLVERS)
        fits = 8 * n * n <= check_int(self.max_matrix_bytes, "max_matrix_bytes")
        if solver == "blocked" or (solver == "auto" and not fits):
            return "blocked"
        try:
            import_optional("kmedoids", "kmedoids", purpose="k-medoids on a distance matrix (FasterPAM)")
        except MissingDependencyError:
            if solver == "matrix":
                raise
            logger.info("the kmedoids package is not installed: k-medoids runs the blocked solver")
            return "blocked"
        return "matrix"

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> KMedoids:
        """Find the medoids of ``X`` (``y`` is ignored).

        Raises
        ------
        ConfigurationError
            On bad parameters, or ``n_clusters`` larger than the rows.
        MissingDependencyError
            With ``solver="matrix"`` when the ``kmedoids`` package is missing.
        """
        metric = check_choice(self.metric, "metric", ("cosine", "l2"))
        k = check_int(self.n_clusters, "n_clusters")
        max_iter = check_int(self.max_iter, "max_iter")
        rows = fit_rows(self, X, metric)
        if k > rows.n:
            raise ConfigurationError(f"n_clusters={k} but X has only {rows.n} rows.")
        rng = check_random_state(self.random_state)
        solver = self._solver(rows.n)
        seeds = KMeans(k, metric=metric, random_state=rng).fit(rows).labels_
        chosen = np.fromiter(medoids(rows.vectors, seeds, metric=metric, sample=rows.n).values(), dtype=np.int64)
        if solver == "matrix":
            kmedoids = import_optional("kmedoids", "kmedoids", purpose="k-medoids on a distance matrix (FasterPAM)")
            with progress.task(f"k-medoids, {k} medoids", None):
                result = kmedoids.fasterpam(
                    _distances(rows.vectors, rows.vectors, metric),
                    chosen,
                    max_iter=max_iter,
                    n_cpu=1,  # the parallel variant's result depends on the thread count
                )
            chosen, self.n_iter_ = np.asarray(result.medoids, dtype=np.int64), int(result.n_iter)
        else:
            chosen, self.n_iter_ = _blocked_fasterpam(rows.vectors, chosen, metric, max_iter, rng, progress)
        self.medoid_indices_ = chosen
        self.cluster_centers_ = rows.vectors[chosen].copy()
        distances = _distances(rows.vectors, self.cluster_centers_, metric)
        self.labels_ = distances.argmin(axis=1).astype(np.int64)
        self.inertia_ = float(distances.min(axis=1).sum())
        self.solver_ = solver
        return self

    def predict(self, X: object) -> np.ndarray:
        """The nearest medoid of each row of ``X``."""
        rows = new_rows(self, X, self.metric)
        return _distances(rows.vectors, self.cluster_centers_, self.metric).argmin(axis=1).astype(np.int64)
