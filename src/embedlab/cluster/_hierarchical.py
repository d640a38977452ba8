"""Hierarchical k-means with resampling (Vo et al. 2024): a bottom-up tree of k-means levels whose clusters
spread evenly over the concepts of the data rather than over its dense regions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster._kmeans import ClusterMetric, KMeans, _nearest_centers
from embedlab.exceptions import ConfigurationError
from embedlab.io.shards import ShardedSet
from embedlab.io.validation import fit_rows, new_rows
from embedlab.scale import Backend

__all__ = ["HierarchicalKMeans", "KMeansLevel"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KMeansLevel:
    """One level of the tree.

    Attributes
    ----------
    centers : ndarray of shape (k, d), float32
    assignment : ndarray of shape (m,), int64
        Cluster of each point of the level's input: the rows of the data at level 0, the centres of the level
        below at level l > 0.
    sample_size : int
        Points per cluster kept in each resampling step (0 when the level was not resampled).
    """

    centers: np.ndarray
    assignment: np.ndarray
    sample_size: int


def _closest_per_cluster(sq_distances: np.ndarray, labels: np.ndarray, size: int) -> np.ndarray:
    """Positions of the ``size`` points of each cluster nearest its centre (all of a smaller cluster)."""
    order = np.lexsort((sq_distances, labels))
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
    return np.sort(order[rank < size])


class HierarchicalKMeans(ClusterMixin, BaseEstimator):
    """Bottom-up hierarchical k-means with resampling-clustering steps, the clustering of Vo et al. (2024).

    Level 0 clusters the rows into ``n_clusters[0]`` groups; level l clusters the centres of level l - 1 into
    ``n_clusters[l]``. At each level, ``n_resamples`` resampling steps then keep the ``sample_size`` points of
    each cluster nearest its centre, re-run k-means (k-means++ seeding) on those points alone, and reassign
    every point of the level to the new centres. Because every cluster contributes the same number of points,
    dense regions stop attracting most centres, and the top levels spread over the data's concepts. The whole
    tree is kept (``levels_``) for balanced sampling from it.

    Parameters
    ----------
    n_clusters : int or sequence of int
        Clusters per level, bottom first and non-increasing, e.g. ``(1000, 100, 10)``; an int is one level.
    metric : {"cosine", "l2"}, default="cosine"
        Cosine runs spherical k-means at every level.
    n_resamples : int, default=10
        Resampling-clustering steps per level (the paper's default); 0 gives plain hierarchical k-means.
    sample_sizes : sequence of int, optional
        Points kept per cluster in the resampling steps of each level. By default about half the mean cluster
        size of the level, as the paper's configurations choose: ``max(1, m // (2 k))`` for m points.
    max_iter : int, default=50
        Lloyd iterations of each k-means run.
    random_state : int, RandomState or None, default=None
    backend : {"local", "ray"} or Backend, default="local"
        Where level 0 runs when ``fit`` is given a :class:`~embedlab.io.shards.ShardedSet`: its k-means and
        resampling steps pass over the shards (:mod:`embedlab.scale`); the levels above cluster centres, in
        memory.

    Attributes
    ----------
    levels_ : list of KMeansLevel
    labels_ : ndarray of shape (n,), int64
        Top-level cluster of each row.
    labels_per_level_ : ndarray of shape (n, n_levels), int64
        Cluster of each row at every level (the row's path up the tree).
    cluster_centers_ : ndarray of shape (n_clusters[-1], d), float32
        Top-level centres.
    n_iter_ : int
        The most Lloyd iterations any of its k-means runs took (``max_iter`` when one stopped before settling).
    n_features_in_ : int

    References
    ----------
    Vo, Khalidov, Darcet, Moutakanni, Smetanin, Szafraniec, Touvron, Couprie, Oquab, Joulin, Jégou, Labatut
    and Bojanowski (2024), "Automatic data curation for self-supervised learning: a clustering-based
    approach", Transactions on Machine Learning Research (arXiv:2405.15613).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 8)).astype(np.float32)
    >>> hkm = HierarchicalKMeans((30, 5), metric="l2", n_resamples=2, random_state=0).fit(X)
    >>> hkm.labels_per_level_.shape, int(hkm.labels_.max()) + 1
    ((600, 2), 5)
    """

    def __init__(
        self,
        n_clusters: int | Sequence[int],
        *,
        metric: ClusterMetric = "cosine",
        n_resamples: int = 10,
        sample_sizes: Sequence[int] | None = None,
        max_iter: int = 50,
        random_state: int | np.random.RandomState | None = None,
        backend: str | Backend = "local",
    ) -> None:
        self.n_clusters = n_clusters
        self.metric = metric
        self.n_resamples = n_resamples
        self.sample_sizes = sample_sizes
        self.max_iter = max_iter
        self.random_state = random_state
        self.backend = backend

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> HierarchicalKMeans:
        """Build the tree on the rows of ``X`` (an array, or a :class:`~embedlab.io.shards.ShardedSet` whose
        level 0 runs shard by shard on ``backend``); ``progress`` receives one step per k-means run.

        Raises
        ------
        ConfigurationError
            On empty, increasing or non-positive ``n_clusters``, ``sample_sizes`` of another length, or a level
            with more clusters than points.
        EmbeddingDataError
            On invalid rows (on shards, naming the file and rows).
        """
        sizes = self._check_levels()
        rng = check_random_state(self.random_state)
        sharded = X if isinstance(X, ShardedSet) else None
        points = None if sharded is not None else fit_rows(self, X, self.metric).vectors
        if sharded is not None:
            self.n_features_in_ = sharded.dim
        self.levels_, self._runs = [], []
        runs = len(sizes) * (1 + int(self.n_resamples))
        with progress.task(f"hierarchical k-means, {len(sizes)} levels", runs) as advance:
            for level, k in enumerate(sizes):
                m = sharded.n_rows if points is None else points.shape[0]
                if k > m:
                    raise ConfigurationError(f"level {level} asks for {k} clusters but has only {m} points to cluster.")
                sample_size = self._sample_size(level, m, k)
                if points is None:
                    from embedlab.cluster._sharded import hierarchical_level_shards  # it builds on this module

                    centers, assignment = hierarchical_level_shards(self, sharded, k, sample_size, rng, advance)
                else:
                    centers, assignment = self._level(points, k, sample_size, rng, advance)
                self.levels_.append(KMeansLevel(centers, assignment, sample_size if self.n_resamples else 0))
                logger.info("hierarchical k-means: level %d, %d clusters of %d points", level, k, m)
                points = centers
        paths = [self.levels_[0].assignment]
        for level in self.levels_[1:]:
            paths.append(level.assignment[paths[-1]])
        self.labels_per_level_ = np.column_stack(paths)
        self.labels_ = self.labels_per_level_[:, -1].copy()
        self.cluster_centers_ = self.levels_[-1].centers
        self.n_iter_ = max(run.n_iter_ for run in self._runs)
        del self._runs
        return self

    def _check_levels(self) -> list[int]:
        levels = self.n_clusters
        if isinstance(levels, int | np.integer) and not isinstance(levels, bool | np.bool_):
            levels = (levels,)  # one level: plain k-means with its resampling steps
        sizes = [int(k) for k in levels] if isinstance(levels, Sequence) else []
        if not sizes or min(sizes) < 1 or any(a < b for a, b in pairwise(sizes)):
            raise ConfigurationError(
                f"n_clusters must be a non-empty, non-increasing sequence of positive integers (bottom level "
                f"first), got {self.n_clusters!r}."
            )
        if self.sample_sizes is not None and len(self.sample_sizes) != len(sizes):
            raise ConfigurationError(
                f"sample_sizes has {len(self.sample_sizes)} entries but there are {len(sizes)} levels."
            )
        return sizes

    def _sample_size(self, level: int, m: int, k: int) -> int:
        if self.sample_sizes is not None:
            return max(1, int(self.sample_sizes[level]))
        return max(1, m // (2 * k))

    def _level(
        self, points: np.ndarray, k: int, sample_size: int, rng: np.random.RandomState, advance: Advance
    ) -> tuple[np.ndarray, np.ndarray]:
        """k-means of one level, then its resampling-clustering steps."""
        model = self._kmeans(k, rng).fit(points)
        centers, assignment = model.cluster_centers_, model.labels_
        advance(1)
        for _ in range(int(self.n_resamples)):
            sq, _ = _nearest_centers(points, centers)
            kept = _closest_per_cluster(sq[:, 0], assignment, sample_size)
            if kept.size < k:
                break
            centers = self._kmeans(k, rng).fit(points[kept]).cluster_centers_
            assignment = _nearest_centers(points, centers)[1][:, 0].copy()
            advance(1)
        return centers, assignment

    def _kmeans(self, k: int, rng: np.random.RandomState) -> KMeans:
        """A k-means run of the tree, remembered so that ``n_iter_`` can report the longest."""
        run = KMeans(
            k, metric=self.metric, max_iter=self.max_iter, random_state=rng.randint(2**31 - 1), backend=self.backend
        )
        self._runs.append(run)
        return run

    def predict(self, X: object) -> np.ndarray:
        """Top-level cluster of each row of ``X``: nearest level-0 centre, then up the tree."""
        check_is_fitted(self, "levels_")
        rows = new_rows(self, X, self.metric).vectors
        labels = _nearest_centers(rows, self.levels_[0].centers)[1][:, 0]
        for level in self.levels_[1:]:
            labels = level.assignment[labels]
        return labels
