"""k-means and hierarchical k-means on a set cut into shards, on any backend of :mod:`embedlab.scale`.

One pass validates every row and sums the per-feature moments for the tolerance; one gathers the seeding
sample (the rows :class:`~embedlab.cluster.KMeans` would sample, drawn by the same random stream); each Lloyd
iteration is one pass whose per-shard partials are the cluster sums (float64), counts, inertia and the farthest
rows (for empty clusters), merged in shard order; a last pass labels every row. The result is that of
``KMeans`` on the same rows and seed, up to the order of float64 additions.

k-means can run on a subset of the rows (the resampling steps of hierarchical k-means): the subset travels as a
bit mask over the set, one bit a row, and each shard keeps its own rows of it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster._hierarchical import HierarchicalKMeans, _closest_per_cluster
from embedlab.cluster._kmeans import (
    _BLOCK_ROWS,
    _METRICS,
    KMeans,
    LloydStep,
    _cluster_sums,
    _nearest_centers,
    assign_with_margin,
    kmeans_plusplus_indices,
    lloyd_iterations,
)
from embedlab.exceptions import ConfigurationError
from embedlab.io.shards import Shard, ShardedSet, gather_rows, open_shards, write_columns
from embedlab.io.validation import prepare
from embedlab.scale import Backend, get_backend

__all__ = [
    "SHARDED_METHODS",
    "ShardedClusters",
    "cluster_shards",
    "fit_centers",
    "fit_shards",
    "hierarchical_level_shards",
    "nearest_centers",
    "row_mask",
]

#: The methods :func:`cluster_shards` runs on shards.
SHARDED_METHODS = ("kmeans", "hierarchical")

logger = logging.getLogger(__name__)

#: Rows per block of the float64 moments (25 MB at d = 384).
_MOMENT_ROWS = 8192


@dataclass(frozen=True)
class _Moments:
    """A shard's row count, per-feature mean and sum of squared deviations (float64)."""

    n: int
    mean: np.ndarray
    m2: np.ndarray


@dataclass(frozen=True)
class _LloydPartial:
    """One shard's part of a Lloyd iteration."""

    sums: np.ndarray
    counts: np.ndarray
    inertia: float
    far_sq: np.ndarray
    far_positions: np.ndarray


@dataclass(frozen=True)
class _Labels:
    labels: np.ndarray
    confidence: np.ndarray
    inertia: float


@dataclass(frozen=True)
class _Nearest:
    """A shard's nearest centre of each row and the squared distance to it."""

    labels: np.ndarray
    sq: np.ndarray


def row_mask(positions: np.ndarray, n_rows: int) -> np.ndarray:
    """The sorted set-wide ``positions`` as a bit mask over ``n_rows`` rows (little-endian bits, n / 8 bytes)."""
    kept = np.zeros(n_rows, dtype=bool)
    kept[positions] = True
    return np.packbits(kept, bitorder="little")


def _kept(mask: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The bits of rows ``start`` to ``stop - 1`` of ``mask``, as booleans."""
    first = start // 8
    bits = np.unpackbits(mask[first : (stop + 7) // 8], bitorder="little").astype(bool)
    return bits[start - 8 * first : stop - 8 * first]


def _rows(shard: Shard, metric: str, mask: np.ndarray | None = None):
    """The shard's validated rows (those of ``mask`` when given), block by block, with their set-wide positions."""
    for chunk in shard.iter_chunks(_BLOCK_ROWS):
        name = f"{shard.part.file} (rows {chunk.start}-{chunk.stop - 1})"
        positions = np.arange(chunk.start, chunk.stop)
        vectors = chunk.vectors
        if mask is not None:
            kept = _kept(mask, chunk.start, chunk.stop)
            if not kept.any():
                continue
            positions, vectors = positions[kept], vectors[kept]
        yield positions, prepare(vectors, metric, name=name).vectors


def _combine(n: int, mean: np.ndarray, m2: np.ndarray, other: tuple[int, np.ndarray, np.ndarray]):
    """Chan, Golub and LeVeque's pairwise update of a count, mean and sum of squared deviations."""
    b, b_mean, b_m2 = other
    if b == 0:
        return n, mean, m2
    total = n + b
    delta = b_mean - mean
    return total, mean + delta * (b / total), m2 + b_m2 + delta**2 * (n * b / total)


def _moments_shard(shard: Shard, metric: str, mask: np.ndarray | None) -> _Moments:
    """Count, mean and M2 of the shard's validated rows, block by block in float64."""
    n, mean, m2 = 0, np.zeros(shard.dim), np.zeros(shard.dim)
    for _, X in _rows(shard, metric, mask):
        for offset in range(0, X.shape[0], _MOMENT_ROWS):
            block = X[offset : offset + _MOMENT_ROWS].astype(np.float64)
            block_mean = block.mean(axis=0)
            n, mean, m2 = _combine(n, mean, m2, (block.shape[0], block_mean, ((block - block_mean) ** 2).sum(axis=0)))
    return _Moments(n, mean, m2)


def _lloyd_shard(shard: Shard, centers: np.ndarray, metric: str, keep: int, mask: np.ndarray | None) -> _LloydPartial:
    """Cluster sums, counts and inertia of a shard against ``centers``, and its ``keep`` farthest rows."""
    k = centers.shape[0]
    sums, counts, inertia = np.zeros((k, shard.dim)), np.zeros(k, np.int64), 0.0
    far_sq, far_positions = np.empty(0, np.float32), np.empty(0, np.int64)
    for positions, X in _rows(shard, metric, mask):
        sq, idx = _nearest_centers(X, centers)
        block_sums, block_counts = _cluster_sums(X, idx[:, 0], k)
        sums += block_sums
        counts += block_counts
        inertia += float(sq[:, 0].sum(dtype=np.float64))
        far_sq = np.concatenate([far_sq, sq[:, 0]])
        far_positions = np.concatenate([far_positions, positions])
        far_sq, far_positions = _farthest(far_sq, far_positions, keep)
    return _LloydPartial(sums, counts, inertia, far_sq, far_positions)


def _farthest(sq: np.ndarray, positions: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``keep`` largest distances, ties to the later row: the order of ``KMeans``'s reversed stable sort."""
    order = np.lexsort((positions, sq))[::-1][:keep]
    return sq[order], positions[order]


def _label_shard(shard: Shard, centers: np.ndarray, metric: str) -> _Labels:
    labels, confidence, inertia = [], [], 0.0
    for _, X in _rows(shard, metric):
        block_labels, block_confidence, block_inertia = assign_with_margin(X, centers)
        labels.append(block_labels)
        confidence.append(block_confidence)
        inertia += block_inertia
    empty = [np.empty(0, np.int64)], [np.empty(0, np.float32)]
    return _Labels(np.concatenate(labels or empty[0]), np.concatenate(confidence or empty[1]), inertia)


def _nearest_shard(shard: Shard, centers: np.ndarray, metric: str) -> _Nearest:
    labels, sq = [np.empty(0, np.int64)], [np.empty(0, np.float32)]
    for _, X in _rows(shard, metric):
        block_sq, idx = _nearest_centers(X, centers)
        labels.append(idx[:, 0])
        sq.append(block_sq[:, 0])
    return _Nearest(np.concatenate(labels), np.concatenate(sq))


def _gather(sharded: ShardedSet, backend: Backend, metric: str, positions: np.ndarray) -> np.ndarray:
    """The validated rows at set-wide ``positions``, in that order."""
    rows = gather_rows(sharded, positions, backend=backend)
    return prepare(rows, metric, name=f"{sharded.path} (sampled rows)").vectors


def fit_shards(model, sharded: ShardedSet, progress: ProgressReporter = NULL_PROGRESS) -> None:
    """Fit the :class:`~embedlab.cluster.KMeans` ``model`` on the shards of ``sharded`` on ``model.backend``.

    Sets the same attributes as ``KMeans.fit``; ``labels_`` and ``confidence_`` (12 bytes a row) are merged in
    shard order.

    Raises
    ------
    ConfigurationError
        On bad parameters, ``n_clusters`` above the number of rows, or ``max_points_per_centroid`` (which
        subsamples an array in memory; on shards every row trains).
    EmbeddingDataError
        On invalid rows or an unreadable shard, naming the file and rows.
    """
    backend = get_backend(model.backend)
    fit_centers(model, sharded, backend, progress)
    model.n_features_in_ = int(model.cluster_centers_.shape[1])
    labelled = backend.map(
        _label_shard, sharded.shards, model.cluster_centers_, model.metric, description="Labelling rows"
    )
    model.labels_ = np.concatenate([part.labels for part in labelled])
    model.confidence_ = np.concatenate([part.confidence for part in labelled])
    model.inertia_ = float(sum(part.inertia for part in labelled))
    logger.info(
        "k-means on %d shards: k=%d, inertia %.6g after %d iterations",
        len(sharded),
        model.n_clusters,
        model.inertia_,
        model.n_iter_,
    )


def fit_centers(
    model,
    sharded: ShardedSet,
    backend: Backend,
    progress: ProgressReporter = NULL_PROGRESS,
    subset: np.ndarray | None = None,
) -> None:
    """The seeding and Lloyd iterations of :func:`fit_shards`, on the rows at the sorted set-wide positions
    ``subset`` when given (as ``KMeans.fit`` on those rows would run), without the labelling pass.

    Sets ``cluster_centers_``, ``n_iter_``, ``inertia_history_``, ``n_training_points_`` and ``init_size_``.
    """
    k = check_int(model.n_clusters, "n_clusters")
    check_choice(model.metric, "metric", _METRICS)
    if model.max_points_per_centroid is not None:
        raise ConfigurationError(
            "max_points_per_centroid subsamples an array in memory; on shards every row trains: leave it None."
        )
    rng = check_random_state(model.random_state)
    metric, shards = model.metric, sharded.shards
    n = sharded.n_rows if subset is None else subset.size
    mask = None if subset is None else row_mask(subset, sharded.n_rows)
    if k > n:
        raise ConfigurationError(f"n_clusters={k} but the set has only {n} rows; use n_clusters <= {n}.")

    def gather(positions: np.ndarray) -> np.ndarray:
        return _gather(sharded, backend, metric, positions if subset is None else subset[positions])

    model.n_training_points_ = n
    model.init_size_ = int(min(n, model.init_size or max(10_000, 32 * k)))
    n_init = 1 if isinstance(model.init, np.ndarray) else int(model.n_init)
    count, mean, m2 = 0, np.zeros(sharded.dim), np.zeros(sharded.dim)
    for part in backend.map(_moments_shard, shards, metric, mask, description="Checking rows"):  # names a bad shard
        count, mean, m2 = _combine(count, mean, m2, (part.n, part.mean, part.m2))
    tol = model.tol * float(np.mean(m2 / count))
    step = _sharded_step(sharded, backend, metric, mask)
    best = None
    with progress.task(f"k-means, k={k}, {len(shards)} shards", n_init * model.max_iter) as advance:
        for _ in range(n_init):
            if isinstance(model.init, np.ndarray):
                centers = model._initial_centers(np.empty((0, sharded.dim), np.float32), k, rng)
            elif model.init == "random":
                centers = gather(rng.choice(n, k, replace=False)).astype(np.float64)
            elif model.init == "k-means++":
                positions = np.arange(n) if model.init_size_ >= n else np.sort(rng.choice(n, model.init_size_, False))
                sample = gather(positions)
                centers = sample[kmeans_plusplus_indices(sample, k, rng)].astype(np.float64)
            else:
                raise ConfigurationError(
                    f"init must be 'k-means++', 'random' or an array of centres, got {model.init!r}."
                )
            centers, inertias = lloyd_iterations(
                step, centers, spherical=metric == "cosine", max_iter=model.max_iter, tol=tol, advance=advance
            )
            inertia = 0.0
            if n_init > 1:
                inertia = sum(p.inertia for p in backend.map(_lloyd_shard, shards, centers, metric, 0, mask))
            if best is None or inertia < best[0]:
                best = (inertia, centers, inertias)
    _, centers, model.inertia_history_ = best
    model.n_iter_ = len(model.inertia_history_)
    model.cluster_centers_ = centers.astype(np.float32)


def _sharded_step(sharded: ShardedSet, backend: Backend, metric: str, mask: np.ndarray | None) -> LloydStep:
    """One Lloyd step as one pass over the shards (their rows of ``mask``): their sums, counts and inertia
    added in shard order; the farthest rows gathered by their set-wide positions."""

    def step(centers: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, Callable[[int], np.ndarray]]:
        keep = centers.shape[0]  # as many farthest rows as there could be empty clusters
        partials = backend.map(_lloyd_shard, sharded.shards, centers, metric, keep, mask, description="Lloyd iteration")
        sums = np.sum([p.sums for p in partials], axis=0)
        counts = np.sum([p.counts for p in partials], axis=0)

        def farthest(m: int) -> np.ndarray:
            sq = np.concatenate([p.far_sq for p in partials])
            positions = np.concatenate([p.far_positions for p in partials])
            return _gather(sharded, backend, metric, _farthest(sq, positions, m)[1])

        return float(sum(p.inertia for p in partials)), sums, counts, farthest

    return step


def hierarchical_level_shards(
    model, sharded: ShardedSet, k: int, sample_size: int, rng: np.random.RandomState, advance: Advance
) -> tuple[np.ndarray, np.ndarray]:
    """Level 0 of the :class:`~embedlab.cluster.HierarchicalKMeans` ``model`` on shards, as its ``_level`` runs
    it in memory: k-means of every row, then each resampling step's k-means on the ``sample_size`` rows of each
    cluster nearest its centre (a subset of the shards' rows) and a pass reassigning every row.

    Returns the centres and the cluster of every row.
    """
    backend = get_backend(model.backend)
    first = model._kmeans(k, rng)
    fit_centers(first, sharded, backend)
    centers = first.cluster_centers_
    advance(1)
    nearest = _assign(sharded, backend, model.metric, centers)
    for _ in range(int(model.n_resamples)):
        kept = _closest_per_cluster(nearest.sq, nearest.labels, sample_size)
        if kept.size < k:
            break
        resampled = model._kmeans(k, rng)
        fit_centers(resampled, sharded, backend, subset=kept)
        centers = resampled.cluster_centers_
        nearest = _assign(sharded, backend, model.metric, centers)
        advance(1)
    return centers, nearest.labels


def _assign(sharded: ShardedSet, backend: Backend, metric: str, centers: np.ndarray) -> _Nearest:
    parts = backend.map(_nearest_shard, sharded.shards, centers, metric, description="Assigning rows")
    return _Nearest(np.concatenate([p.labels for p in parts]), np.concatenate([p.sq for p in parts]))


def nearest_centers(
    X: object, centers: np.ndarray, *, metric: str = "cosine", backend: str | Backend = "local"
) -> tuple[np.ndarray, np.ndarray]:
    """The nearest of ``centers`` to each row of ``X`` and the squared Euclidean distance to it.

    Parameters
    ----------
    X : array-like of shape (n, d) or ShardedSet
        Rows (unit-normalised under cosine, as the clusterers see them); a sharded set is assigned shard by
        shard on ``backend``, in one pass.
    centers : ndarray of shape (k, d)
    metric : {"cosine", "l2"}, default="cosine"
    backend : {"local", "ray"} or Backend, default="local"

    Returns
    -------
    labels : ndarray of shape (n,), int64
    sq_distances : ndarray of shape (n,), float32
    """
    check_choice(metric, "metric", _METRICS)
    if isinstance(X, ShardedSet):
        found = _assign(X, get_backend(backend), metric, centers)
        return found.labels, found.sq
    sq, idx = _nearest_centers(prepare(X, metric).vectors, centers)
    return idx[:, 0].copy(), sq[:, 0].copy()


@dataclass(frozen=True)
class ShardedClusters:
    """What :func:`cluster_shards` found, without the rows.

    Attributes
    ----------
    method : str
        ``"kmeans"`` or ``"hierarchical"``.
    n : int
    k : int
    levels : list of int
        Clusters per level, bottom first (``[k]`` for k-means).
    sizes : list of int
        Rows per (top-level) cluster.
    inertia : float or None
        k-means: the sum of squared Euclidean distances of the rows to their centres (unit rows for cosine).
    n_iter : int or None
        k-means: Lloyd iterations run.
    n_shards : int
    backend : str
    centers : ndarray of shape (k, d), float32
    model : KMeans or HierarchicalKMeans
        The fitted estimator (``labels_`` of every row in memory, 8 bytes a row and level).
    output : str or None
        The directory the labels were written to, one Parquet file per shard.
    """

    method: str
    n: int
    k: int
    levels: list[int]
    sizes: list[int]
    inertia: float | None
    n_iter: int | None
    n_shards: int
    backend: str
    centers: np.ndarray = field(repr=False)
    model: object = field(repr=False)
    output: str | None

    def to_dict(self) -> dict:
        """JSON-ready dictionary (without the centres and the model)."""
        return {
            "method": self.method,
            "sharded": True,
            "n": self.n,
            "k": self.k,
            "levels": self.levels,
            "sizes": self.sizes,
            "inertia": self.inertia,
            "n_iter": self.n_iter,
            "n_shards": self.n_shards,
            "backend": self.backend,
            "output": self.output,
        }


def cluster_shards(
    data: str | os.PathLike | ShardedSet,
    n_clusters: int,
    *,
    method: str = "kmeans",
    metric: str = "cosine",
    levels: tuple[int, ...] | None = None,
    output: str | os.PathLike | None = None,
    column: str | None = None,
    id_column: str | None = None,
    shard_rows: int | None = None,
    backend: str | Backend = "local",
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> ShardedClusters:
    """Cluster a set on disk shard by shard (k-means, or hierarchical k-means) and write every row's cluster
    beside its shard.

    The rows never sit in memory together: each pass reads the shards one at a time on the local backend, or
    in parallel as Ray tasks. The result is that of :class:`KMeans` or :class:`HierarchicalKMeans` on the same
    rows and seed, up to the order of float64 additions.

    Parameters
    ----------
    data : path-like or ShardedSet
        A set :func:`~embedlab.io.shards.open_shards` opens, or its shards.
    n_clusters : int
        Clusters (the top level's, for hierarchical k-means).
    method : {"kmeans", "hierarchical"}, default="kmeans"
    metric : {"cosine", "l2"}, default="cosine"
    levels : tuple of int, optional
        Hierarchical k-means: clusters per level, bottom first, ending in ``n_clusters``; by default
        ``(10 n_clusters, n_clusters)`` (one level when the set has fewer than 20 rows a cluster).
    output : path-like, optional
        A directory to write ``id``, ``cluster`` and (k-means) ``confidence`` or (hierarchical) ``level_0``,
        ``level_1``, ... to, one Parquet file per shard (:func:`~embedlab.io.shards.write_columns`).
    column, id_column, shard_rows
        As for :func:`~embedlab.io.shards.open_shards` when ``data`` is a path.
    backend : {"local", "ray"} or Backend, default="local"
    random_state : int or None, default=0
    progress : ProgressReporter, optional

    Returns
    -------
    ShardedClusters

    Raises
    ------
    ConfigurationError
        On an unknown method, bad parameters, or more clusters than rows.
    EmbeddingDataError
        On invalid rows or an unreadable shard, naming the file and rows.
    FileExistsError
        When ``output`` exists and is not an earlier output of this kind.

    References
    ----------
    Lloyd (1982); Vo et al. (2024), "Automatic data curation for self-supervised learning: a clustering-based
    approach", TMLR (hierarchical k-means).
    """
    check_choice(method, "method", SHARDED_METHODS)
    k = check_int(n_clusters, "n_clusters")
    sharded = (
        data
        if isinstance(data, ShardedSet)
        else open_shards(data, column=column, id_column=id_column, shard_rows=shard_rows)
    )
    runner = get_backend(backend)
    n = sharded.n_rows
    if method == "kmeans":
        if levels is not None:
            raise ConfigurationError("levels are for method='hierarchical'.")
        model = KMeans(k, metric=metric, random_state=random_state, backend=runner).fit(sharded, progress=progress)
        tree = [k]
        columns = {"cluster": model.labels_, "confidence": model.confidence_}
        inertia, n_iter = model.inertia_, model.n_iter_
    else:
        tree = list(levels) if levels is not None else ([10 * k, k] if 10 * k <= n // 2 else [k])
        if tree[-1] != k:
            raise ConfigurationError(f"levels {tree} must end in n_clusters={k}.")
        model = HierarchicalKMeans(tree, metric=metric, random_state=random_state, backend=runner)
        model.fit(sharded, progress=progress)
        columns = {"cluster": model.labels_}
        columns.update({f"level_{i}": model.labels_per_level_[:, i] for i in range(len(tree))})
        inertia, n_iter = None, None
    if output is not None:
        write_columns(sharded, columns, output, document={"method": method, "levels": tree}, backend=runner)
    labels = columns["cluster"]
    logger.info("clustered %d rows on %d shards into %d clusters (%s)", n, len(sharded), k, method)
    return ShardedClusters(
        method=method,
        n=n,
        k=k,
        levels=tree,
        sizes=np.bincount(labels, minlength=k).tolist(),
        inertia=inertia,
        n_iter=n_iter,
        n_shards=len(sharded),
        backend=runner.name,
        centers=model.cluster_centers_,
        model=model,
        output=None if output is None else str(output),
    )
