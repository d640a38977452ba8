"""k-means on a set cut into shards, on any backend of :mod:`embedlab.scale`.

One pass validates every row and sums the per-feature moments for the tolerance; one gathers the seeding
sample (the rows :class:`~embedlab.cluster.KMeans` would sample, drawn by the same random stream); each Lloyd
iteration is one pass whose per-shard partials are the cluster sums (float64), counts, inertia and the farthest
rows (for empty clusters), merged in shard order; a last pass labels every row. The result is that of
``KMeans`` on the same rows and seed, up to the order of float64 additions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster._kmeans import (
    _BLOCK_ROWS,
    _METRICS,
    LloydStep,
    _cluster_sums,
    _nearest_centers,
    assign_with_margin,
    kmeans_plusplus_indices,
    lloyd_iterations,
)
from embedlab.exceptions import ConfigurationError
from embedlab.io.shards import Shard, ShardedSet, gather_rows
from embedlab.io.validation import prepare
from embedlab.scale import Backend, get_backend

__all__ = ["fit_shards"]

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


def _rows(shard: Shard, metric: str):
    """The shard's validated rows, block by block, with the set-wide position of each block's first row."""
    for chunk in shard.iter_chunks(_BLOCK_ROWS):
        name = f"{shard.part.file} (rows {chunk.start}-{chunk.stop - 1})"
        yield chunk.start, prepare(chunk.vectors, metric, name=name).vectors


def _combine(n: int, mean: np.ndarray, m2: np.ndarray, other: tuple[int, np.ndarray, np.ndarray]):
    """Chan, Golub and LeVeque's pairwise update of a count, mean and sum of squared deviations."""
    b, b_mean, b_m2 = other
    if b == 0:
        return n, mean, m2
    total = n + b
    delta = b_mean - mean
    return total, mean + delta * (b / total), m2 + b_m2 + delta**2 * (n * b / total)


def _moments_shard(shard: Shard, metric: str) -> _Moments:
    """Count, mean and M2 of the shard's validated rows, block by block in float64."""
    n, mean, m2 = 0, np.zeros(shard.dim), np.zeros(shard.dim)
    for _, X in _rows(shard, metric):
        for offset in range(0, X.shape[0], _MOMENT_ROWS):
            block = X[offset : offset + _MOMENT_ROWS].astype(np.float64)
            block_mean = block.mean(axis=0)
            n, mean, m2 = _combine(n, mean, m2, (block.shape[0], block_mean, ((block - block_mean) ** 2).sum(axis=0)))
    return _Moments(n, mean, m2)


def _lloyd_shard(shard: Shard, centers: np.ndarray, metric: str, keep: int) -> _LloydPartial:
    """Cluster sums, counts and inertia of a shard against ``centers``, and its ``keep`` farthest rows."""
    k = centers.shape[0]
    sums, counts, inertia = np.zeros((k, shard.dim)), np.zeros(k, np.int64), 0.0
    far_sq, far_positions = np.empty(0, np.float32), np.empty(0, np.int64)
    for start, X in _rows(shard, metric):
        sq, idx = _nearest_centers(X, centers)
        block_sums, block_counts = _cluster_sums(X, idx[:, 0], k)
        sums += block_sums
        counts += block_counts
        inertia += float(sq[:, 0].sum(dtype=np.float64))
        far_sq = np.concatenate([far_sq, sq[:, 0]])
        far_positions = np.concatenate([far_positions, start + np.arange(X.shape[0])])
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
    k = check_int(model.n_clusters, "n_clusters")
    check_choice(model.metric, "metric", _METRICS)
    if model.max_points_per_centroid is not None:
        raise ConfigurationError(
            "max_points_per_centroid subsamples an array in memory; on shards every row trains: leave it None."
        )
    rng = check_random_state(model.random_state)
    backend = get_backend(model.backend)
    n, metric, shards = sharded.n_rows, model.metric, sharded.shards
    if k > n:
        raise ConfigurationError(f"n_clusters={k} but the set has only {n} rows; use n_clusters <= {n}.")
    model.n_training_points_ = n
    model.init_size_ = int(min(n, model.init_size or max(10_000, 32 * k)))
    n_init = 1 if isinstance(model.init, np.ndarray) else int(model.n_init)
    spherical = metric == "cosine"
    count, mean, m2 = 0, np.zeros(sharded.dim), np.zeros(sharded.dim)
    for part in backend.map(_moments_shard, shards, metric, description="Checking rows"):  # names a bad shard
        count, mean, m2 = _combine(count, mean, m2, (part.n, part.mean, part.m2))
    tol = model.tol * float(np.mean(m2 / count))
    best = None
    with progress.task(f"k-means, k={k}, {len(shards)} shards", n_init * model.max_iter) as advance:
        for _ in range(n_init):
            if isinstance(model.init, np.ndarray):
                centers = model._initial_centers(np.empty((0, sharded.dim), np.float32), k, rng)
            elif model.init == "random":
                centers = _gather(sharded, backend, metric, rng.choice(n, k, replace=False)).astype(np.float64)
            elif model.init == "k-means++":
                positions = np.arange(n) if model.init_size_ >= n else np.sort(rng.choice(n, model.init_size_, False))
                sample = _gather(sharded, backend, metric, positions)
                centers = sample[kmeans_plusplus_indices(sample, k, rng)].astype(np.float64)
            else:
                raise ConfigurationError(
                    f"init must be 'k-means++', 'random' or an array of centres, got {model.init!r}."
                )
            centers, inertias = lloyd_iterations(
                _sharded_step(sharded, backend, metric),
                centers,
                spherical=spherical,
                max_iter=model.max_iter,
                tol=tol,
                advance=advance,
            )
            inertia = 0.0
            if n_init > 1:
                inertia = sum(p.inertia for p in backend.map(_lloyd_shard, shards, centers, metric, 0))
            if best is None or inertia < best[0]:
                best = (inertia, centers, inertias)
    _, centers, model.inertia_history_ = best
    model.n_iter_ = len(model.inertia_history_)
    model.cluster_centers_ = centers.astype(np.float32)
    labelled = backend.map(_label_shard, shards, model.cluster_centers_, metric, description="Labelling rows")
    model.labels_ = np.concatenate([part.labels for part in labelled])
    model.confidence_ = np.concatenate([part.confidence for part in labelled])
    model.inertia_ = float(sum(part.inertia for part in labelled))
    logger.info(
        "k-means on %d shards: k=%d, inertia %.6g after %d iterations", len(shards), k, model.inertia_, model.n_iter_
    )


def _sharded_step(sharded: ShardedSet, backend: Backend, metric: str) -> LloydStep:
    """One Lloyd step as one pass over the shards: their sums, counts and inertia added in shard order."""

    def step(centers: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, Callable[[int], np.ndarray]]:
        keep = centers.shape[0]  # as many farthest rows as there could be empty clusters
        partials = backend.map(_lloyd_shard, sharded.shards, centers, metric, keep, description="Lloyd iteration")
        sums = np.sum([p.sums for p in partials], axis=0)
        counts = np.sum([p.counts for p in partials], axis=0)

        def farthest(m: int) -> np.ndarray:
            sq = np.concatenate([p.far_sq for p in partials])
            positions = np.concatenate([p.far_positions for p in partials])
            return _gather(sharded, backend, metric, _farthest(sq, positions, m)[1])

        return float(sum(p.inertia for p in partials)), sums, counts, farthest

    return step
