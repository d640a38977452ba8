"""Choose a subset of a set: balanced sampling from a hierarchical k-means tree (Vo et al. 2024), sensitivity
sampling (Axiotis et al. 2024), representatives by k-medoids (SelectNAdapt), or uniform sampling.

Every sample carries a weight per chosen row, the number of rows of the set it stands for, so that weighted
sums over the sample estimate sums over the set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int
from embedlab._json import plain
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster import HierarchicalKMeans, KMeans, KMedoids, nearest_centers
from embedlab.exceptions import ConfigurationError
from embedlab.io import EmbeddingSet
from embedlab.io.embedding_set import ID_COLUMN
from embedlab.io.shards import ShardedSet
from embedlab.io.validation import prepare
from embedlab.scale import Backend

__all__ = [
    "SAMPLE_METHODS",
    "WITHIN_CLUSTER",
    "Sample",
    "balanced_caps",
    "default_levels",
    "sample",
    "sensitivity_probabilities",
]

SampleMethod = Literal["balanced", "sensitivity", "representatives", "random"]
SAMPLE_METHODS: tuple[str, ...] = ("balanced", "sensitivity", "representatives", "random")
#: Which rows of a bottom-level cluster balanced sampling takes: random ones, or those closest to its centre.
WITHIN_CLUSTER: tuple[str, ...] = ("random", "closest")
#: Why a row is not in the sample (the ``reason`` column).
NOT_SAMPLED = "not sampled"
#: Candidate-to-row distances computed at once by k-medoids (float32 entries).


@dataclass(frozen=True)
class Sample:
    """A subset of a set's rows, each with the number of rows it stands for.

    Attributes
    ----------
    method : str
    parameters : dict
    rows : ndarray of shape (size,), int64
        Positions of the chosen rows, ascending.
    weight : ndarray of shape (size,), float64
        What each chosen row stands for: its cluster's size over the rows taken from it (balanced,
        representatives), the inverse of its inclusion probability (sensitivity), or n / size (random). The
        weights sum to n (exactly, except under sensitivity sampling, where the sum estimates n without bias).
    cluster : ndarray of shape (n,), int64
        The cluster of every row the sample was balanced or weighted over (the top level of the tree under
        balanced sampling); -1 for every row under random sampling.
    """

    method: str
    parameters: dict[str, Any]
    rows: np.ndarray = field(repr=False)
    weight: np.ndarray = field(repr=False)
    cluster: np.ndarray = field(repr=False)

    @property
    def n(self) -> int:
        return int(self.cluster.size)

    @property
    def size(self) -> int:
        return int(self.rows.size)

    @property
    def keep(self) -> np.ndarray:
        """Boolean mask of shape (n,): the chosen rows."""
        mask = np.zeros(self.n, dtype=bool)
        mask[self.rows] = True
        return mask

    def per_cluster(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the set and rows of the sample in each cluster (empty arrays under random sampling)."""
        if self.cluster.size == 0 or self.cluster.max() < 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        k = int(self.cluster.max()) + 1
        return np.bincount(self.cluster, minlength=k), np.bincount(self.cluster[self.rows], minlength=k)

    def to_table(self, ids: np.ndarray) -> pa.Table:
        """One row per row of the set: ``id``, ``keep``, ``reason`` ("not sampled" or ""), ``group`` (the
        cluster) and ``weight`` (0 for a row not chosen)."""
        return pa.table({ID_COLUMN: pa.array(np.asarray(ids)), **self.columns()})

    def columns(self) -> dict[str, np.ndarray]:
        """The per-row columns without ids (what a sharded run writes beside each shard's ids)."""
        keep = self.keep
        weight = np.zeros(self.n)
        weight[self.rows] = self.weight
        return {"keep": keep, "reason": np.where(keep, "", NOT_SAMPLED), "group": self.cluster, "weight": weight}

    def to_dict(self) -> dict:
        """JSON-ready summary: sizes, weight range, and rows of the set and of the sample per cluster."""
        sizes, taken = self.per_cluster()
        return {
            "method": self.method,
            "parameters": plain(self.parameters),
            "n": self.n,
            "size": self.size,
            "weight_sum": float(self.weight.sum()),
            "weight_range": [float(self.weight.min()), float(self.weight.max())] if self.size else [],
            "clusters": [
                {"cluster": c, "rows": int(sizes[c]), "sampled": int(taken[c])} for c in np.argsort(-sizes).tolist()
            ],
        }


def balanced_caps(sizes: np.ndarray, target: int, random_state: int | np.random.RandomState | None = 0) -> np.ndarray:
    """How many rows to take from each cluster so that the counts sum to ``target`` and are as equal as the
    cluster sizes allow (Vo et al. 2024).

    Every cluster gives ``min(size, cap)`` rows, with the largest integer ``cap`` whose total does not exceed
    ``target`` found by bisection; the few rows still missing come one each from clusters larger than ``cap``,
    chosen at random. So a cluster smaller than the cap is taken whole and the others differ by at most one.

    Parameters
    ----------
    sizes : ndarray of shape (k,), int
    target : int
        In ``[0, sizes.sum()]``.
    random_state : int, RandomState or None, default=0

    Returns
    -------
    ndarray of shape (k,), int64

    Examples
    --------
    >>> balanced_caps(np.array([100, 5, 40, 2]), 50).tolist()
    [21, 5, 22, 2]
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    target = check_int(target, "target", 0, maximum=int(sizes.sum()), why="the rows available")
    low, high = 0, int(sizes.max(initial=0))
    while low < high:
        middle = (low + high + 1) // 2
        if np.minimum(sizes, middle).sum() <= target:
            low = middle
        else:
            high = middle - 1
    taken = np.minimum(sizes, low)
    missing = target - int(taken.sum())  # fewer than the clusters above the cap, or cap + 1 would fit
    if missing:
        larger = np.flatnonzero(sizes > low)
        taken[check_random_state(random_state).choice(larger, missing, replace=False)] += 1
    return taken


def default_levels(n: int) -> tuple[int, ...]:
    """The tree's clusters per level for ``n`` rows: about sqrt(n) at the bottom, each level a tenth of the one
    below while it keeps ten or more clusters (117,659 rows: (343, 34); 10,000,000: (3162, 316, 31))."""
    levels = [max(1, math.isqrt(n))]
    while levels[-1] // 10 >= 10:
        levels.append(levels[-1] // 10)
    return tuple(levels)


def _first_per_cluster(key: np.ndarray, labels: np.ndarray, quota: np.ndarray) -> np.ndarray:
    """Positions of the ``quota[c]`` rows of lowest ``key`` in each cluster c, ascending."""
    order = np.lexsort((np.arange(key.size), key, labels))
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, np.arange(quota.size))
    rank = np.arange(order.size) - starts[sorted_labels]
    return np.sort(order[rank < quota[sorted_labels]])


def _tree_quota(tree: HierarchicalKMeans, size: int, rng: np.random.RandomState) -> np.ndarray:
    """Rows to take from each bottom-level cluster: balanced over the top level, then within each cluster over
    its children, down the tree."""
    paths = tree.labels_per_level_
    counts = [
        np.bincount(paths[:, level], minlength=len(tree.levels_[level].centers)) for level in range(paths.shape[1])
    ]
    quota = balanced_caps(counts[-1], size, rng)
    for level in range(paths.shape[1] - 1, 0, -1):
        parent = tree.levels_[level].assignment  # the cluster, at this level, of each cluster of the level below
        child_quota = np.zeros(parent.size, dtype=np.int64)
        for p in np.flatnonzero(quota):
            children = np.flatnonzero(parent == p)
            child_quota[children] = balanced_caps(counts[level - 1][children], int(quota[p]), rng)
        quota = child_quota
    return quota


def sensitivity_probabilities(sq_distances: np.ndarray, labels: np.ndarray, size: int) -> np.ndarray:
    """Inclusion probabilities of a sample of ``size`` rows proportional to each row's sensitivity, capped at 1.

    The sensitivity of row x in cluster C(x) is ``cost(x) / cost + 1 / |C(x)|`` (Axiotis et al. 2024), with
    cost(x) its squared distance to its centre and cost the k-means cost of the set: an upper bound, up to a
    constant, on the share of any clustering's cost that x can carry. The probabilities are ``min(1, c s(x))``
    with c chosen so that they sum to ``size``.

    Returns
    -------
    ndarray of shape (n,), float64, summing to ``size``.
    """
    sq = np.asarray(sq_distances, dtype=np.float64)
    sizes = np.bincount(labels)
    total = sq.sum()
    sensitivity = (sq / total if total > 0 else 0.0) + 1.0 / sizes[labels]
    order = np.argsort(-sensitivity, kind="stable")
    tail = np.cumsum(sensitivity[order][::-1])[::-1]  # tail[j]: the sensitivity of all rows from rank j on
    probability = np.ones(sq.size)
    for capped in range(size):  # ``capped`` rows of largest sensitivity are certain; scale the others
        scale = (size - capped) / tail[capped]
        if scale * sensitivity[order[capped]] <= 1.0:
            probability[order[capped:]] = np.minimum(1.0, scale * sensitivity[order[capped:]])
            break
    else:
        probability[order[size:]] = 0.0
    return probability


def _systematic(probability: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Systematic sampling in a random order (Madow 1949): exactly ``sum(probability)`` distinct rows, row i
    chosen with probability ``probability[i]``."""
    order = rng.permutation(probability.size)
    edges = np.cumsum(probability[order])
    size = round(float(edges[-1]))
    edges[-1] = size  # rounding must not leave the last point past the end
    points = rng.uniform() + np.arange(size)
    return np.sort(order[np.searchsorted(edges, points, side="right")])


def sample(
    data: EmbeddingSet | ShardedSet | object,
    size: int,
    *,
    method: SampleMethod = "balanced",
    n_clusters: int | tuple[int, ...] | None = None,
    within: Literal["random", "closest"] = "random",
    n_resamples: int = 3,
    max_iter: int = 20,
    random_state: int | None = 0,
    backend: str | Backend = "local",
    progress: ProgressReporter = NULL_PROGRESS,
) -> Sample:
    """Choose ``size`` distinct rows of ``data``.

    * ``"balanced"`` (Vo et al. 2024): a :class:`~embedlab.cluster.HierarchicalKMeans` tree (``n_clusters``
      per level, bottom first; :func:`default_levels` by default), then :func:`balanced_caps` over the
      top-level clusters, within each over its children, and so on down; inside a bottom-level cluster the
      rows are taken at random or closest to its centre (``within``). Dense regions give no more rows than
      sparse ones once they are capped.
    * ``"sensitivity"`` (Axiotis et al. 2024): spherical k-means (``n_clusters``, default ``size // 10``),
      then rows drawn with probability proportional to their sensitivity
      (:func:`sensitivity_probabilities`). The paper draws i.i.d. with replacement; embedlab draws ``size``
      distinct rows by systematic sampling with exactly those inclusion probabilities, so the weights 1 / p
      (Horvitz and Thompson 1952) make weighted sums over the sample unbiased estimates of sums over the set.
    * ``"representatives"`` (SelectNAdapt, Dawoud et al. 2023): the ``size`` medoids of a k-medoids
      clustering under cosine distance (:class:`embedlab.cluster.KMedoids`, FasterPAM), each weighted by its
      cluster's size.
    * ``"random"``: uniform, without replacement.

    Parameters
    ----------
    data : EmbeddingSet, ShardedSet or array-like of shape (n, d)
        A sharded set is processed shard by shard on ``backend`` (balanced, sensitivity and random sampling;
        representatives need the rows in memory).
    size : int
        Rows to choose, at most n (at most the distinct rows for representatives).
    method : {"balanced", "sensitivity", "representatives", "random"}, default="balanced"
    n_clusters : int or tuple of int, optional
        balanced: the tree's clusters per level; sensitivity: k of the k-means.
    within : {"random", "closest"}, default="random"
        balanced: which rows of a bottom-level cluster are taken.
    n_resamples : int, default=3
        balanced: resampling steps per level of the tree (Vo et al. use 10; fewer cost less and balance a
        little less).
    max_iter : int, default=20
        Lloyd iterations of each k-means; passes of k-medoids' swaps.
    random_state : int or None, default=0
        Seeds every clustering and draw.
    backend : {"local", "ray"} or Backend, default="local"
    progress : ProgressReporter, optional

    Returns
    -------
    Sample

    Raises
    ------
    ConfigurationError
        On a size larger than the set, or a bad method or option.

    References
    ----------
    Vo et al. (2024), "Automatic data curation for self-supervised learning: a clustering-based approach",
    TMLR (arXiv:2405.15613).
    Axiotis, Cohen-Addad, Henzinger, Jerome, Mirrokni, Saulpic, Woodruff and Wunder (2024), "Data-efficient
    learning via clustering-based sensitivity sampling: foundation models and beyond", ICML.
    Dawoud, Carneiro and Belagiannis (2023), "SelectNAdapt: Support set selection for few-shot domain
    adaptation", ICCV workshops.
    Schubert and Rousseeuw (2021), "Fast and eager k-medoids clustering", Information Systems 101.
    Madow (1949), "On the theory of systematic sampling, II", Annals of Mathematical Statistics 20(3).
    """
    check_choice(method, "method", SAMPLE_METHODS)
    check_choice(within, "within", WITHIN_CLUSTER)
    sharded = data if isinstance(data, ShardedSet) else None
    if sharded is None:
        data = prepare(data.vectors if isinstance(data, EmbeddingSet) else data, "cosine")
    n = sharded.n_rows if sharded is not None else data.n
    size = check_int(size, "size", maximum=n, why=f"the set has {n:,} rows")
    rng = check_random_state(random_state)
    parameters: dict[str, Any] = {"size": size, "random_state": random_state}
    if method == "random":
        rows = np.sort(rng.choice(n, size, replace=False))
        return Sample(method, parameters, rows, np.full(size, n / size), np.full(n, -1, dtype=np.int64))
    if method == "balanced":
        levels = default_levels(n) if n_clusters is None else tuple(np.atleast_1d(n_clusters).tolist())
        tree = HierarchicalKMeans(
            levels, n_resamples=n_resamples, max_iter=max_iter, random_state=rng, backend=backend
        ).fit(data, progress=progress)
        bottom = tree.levels_[0].assignment
        quota = _tree_quota(tree, size, rng)
        if within == "random":
            key = rng.uniform(size=n)
        else:
            key = nearest_centers(data, tree.levels_[0].centers, backend=backend)[1]
        rows = _first_per_cluster(key, bottom, quota)
        weight = np.bincount(bottom, minlength=quota.size)[bottom[rows]] / quota[bottom[rows]]
        parameters.update(n_clusters=levels, within=within, n_resamples=n_resamples)
        return Sample(method, parameters, rows, weight, tree.labels_)
    if method == "sensitivity":
        k = max(1, size // 10) if n_clusters is None else check_int(n_clusters, "n_clusters", maximum=size)
        model = KMeans(k, max_iter=max_iter, random_state=rng, backend=backend).fit(data, progress=progress)
        labels, sq = nearest_centers(data, model.cluster_centers_, backend=backend)
        probability = sensitivity_probabilities(sq, labels, size)
        rows = _systematic(probability, rng)
        parameters.update(n_clusters=k)
        return Sample(method, parameters, rows, 1.0 / probability[rows], labels)
    if sharded is not None:
        raise ConfigurationError("representatives need the rows in memory (on the command line, leave out --backend).")
    if n_clusters is not None:
        raise ConfigurationError("representatives are one per cluster: n_clusters is the size, leave it out.")
    model = KMedoids(size, max_iter=max_iter, random_state=rng).fit(data.vectors, progress=progress)
    labels, chosen = model.labels_, model.medoid_indices_
    weight = np.bincount(labels, minlength=size)[np.argsort(chosen)]
    parameters.update(max_iter=max_iter)
    return Sample(method, parameters, np.sort(chosen), weight.astype(np.float64), labels)
