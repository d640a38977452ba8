"""SemDeDup (Abbas et al. 2023): semantic deduplication inside k-means clusters.

The set is partitioned by spherical k-means; inside each cluster the rows are ranked (by the keep policy), and
each row's largest cosine similarity to the rows ranked before it is computed once. On a sharded set the
k-means runs over the shards and a shuffle groups the rows by cluster through scratch files, so no task holds
more than a bucket of clusters; the result is the in-memory one. A row is removed at a
threshold ``eps`` when that similarity exceeds ``1 - eps``, so the first-ranked row of every group of
duplicates stays. Since the per-row similarity does not depend on ``eps``, the removal curve over any number
of thresholds, or the threshold that removes a target fraction, costs nothing more.

embedlab follows the authors' released code, not the wording of the paper where the two differ: a row is
compared with every row ranked before it, whether that row is itself removed or not. The paper speaks of
groups of duplicates of which one is kept; the code's rule removes a row that is a duplicate of a removed
row too, which makes removal a function of one threshold on one stored similarity (so a single pass serves
every ``eps``), and it is the rule the paper's published numbers came from.
"""

from __future__ import annotations

import tempfile
from itertools import pairwise
from pathlib import Path
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from embedlab._checks import check_choice, check_int
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster import KMeans
from embedlab.exceptions import ConfigurationError
from embedlab.io.shards import Shard, ShardedSet
from embedlab.io.validation import fit_rows
from embedlab.scale import Backend, get_backend

__all__ = ["KEEP_POLICIES", "SemDeDup", "check_eps", "check_fraction"]

KeepPolicy = Literal["hard", "easy", "random"]
#: Which row of a group of duplicates is kept: the farthest from its centroid (the paper's default), the
#: closest, or a random one.
KEEP_POLICIES: tuple[str, ...] = ("hard", "easy", "random")
#: Similarities computed at once: a block of rows against the rows ranked before them (float32 entries).
_BLOCK_ENTRIES = 2**24
#: Bytes of rows one task of the sharded SemDeDup holds: the clusters of one bucket.
BUCKET_BYTES = 512 * 2**20


def _ignore(_: int) -> None:
    """An ``Advance`` that reports nowhere."""


def check_eps(eps: float) -> float:
    """``eps`` as a float in (0, 2): a cosine-distance threshold (1 - eps is the similarity above which a row goes)."""
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 2:
        raise ConfigurationError(
            f"eps must be a number in (0, 2) (a cosine distance; rows more similar than 1 - eps go), got {eps!r}."
        )
    return float(eps)


def check_fraction(fraction: float, name: str = "remove_fraction") -> float:
    """``fraction`` as a float in [0, 1)."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
        raise ConfigurationError(f"{name} must be a number in [0, 1), got {fraction!r}.")
    return float(fraction)


def _rank_key(distance: np.ndarray, keep: str, random_key: np.ndarray | None) -> np.ndarray:
    """What orders a cluster's rows, lowest first (the first of a group of duplicates stays): the distance to
    the centroid, negated for ``hard``, or a random number per row for ``random``."""
    if keep == "random":
        return random_key
    return -distance if keep == "hard" else distance


def _similarity_in_clusters(
    rows: np.ndarray, labels: np.ndarray, key: np.ndarray, positions: np.ndarray, advance: Advance = _ignore
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every row's largest similarity to a row ranked before it in its cluster, and that row's position.

    The rows are ranked by cluster, then ``key``, then position (ties by row number, so the result does not
    depend on the sort or on how the rows were gathered). Returns the positions in that order with the
    similarity (-inf for a cluster's first row) and the earlier row's position (-1); ``advance`` is called
    with each cluster's row count.
    """
    order = np.lexsort((positions, key, labels))
    labels, positions = labels[order], positions[order]
    similarity = np.full(order.size, -np.inf, dtype=np.float32)
    earlier = np.full(order.size, -1, dtype=np.int64)
    bounds = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1], True]) if order.size else np.zeros(1, int)
    for start, stop in pairwise(bounds):
        found, before = max_similarity_to_earlier(rows[order[start:stop]])
        similarity[start:stop] = found
        earlier[start:stop] = np.where(before >= 0, positions[start + np.maximum(before, 0)], -1)
        advance(stop - start)
    return positions, similarity, earlier


def _unit(centers: np.ndarray) -> np.ndarray:
    return centers / np.linalg.norm(centers, axis=1, keepdims=True)


def _buckets(cluster_bytes: np.ndarray, bucket_bytes: int) -> np.ndarray:
    """The bucket of each cluster: consecutive clusters joined while their rows fit in ``bucket_bytes`` (a
    larger cluster is a bucket of its own)."""
    bucket = np.zeros(cluster_bytes.size, dtype=np.int64)
    current, filled = 0, 0
    for c, size in enumerate(cluster_bytes.tolist()):
        if filled and filled + size > bucket_bytes:
            current, filled = current + 1, 0
        bucket[c] = current
        filled += size
    return bucket


def _scratch(folder: str, number: int) -> tuple[Path, Path]:
    return Path(folder) / f"rows-{number:05d}.npy", Path(folder) / f"meta-{number:05d}.npz"


def _group_shard(
    item: tuple[Shard, np.ndarray, np.ndarray | None], centers: np.ndarray, bucket: np.ndarray, keep: str, folder: str
) -> np.ndarray:
    """Write the shard's unit rows ordered by bucket, with their positions, clusters and rank keys, to the
    scratch folder; return where each bucket starts in them (``n_buckets + 1`` offsets)."""
    shard, labels, random_key = item
    parts = [(chunk.start, rows) for chunk, rows in shard.iter_prepared("cosine")]
    rows = np.concatenate([r for _, r in parts]) if parts else np.empty((0, shard.dim), np.float32)
    distance = 1.0 - np.einsum("ij,ij->i", rows, centers[labels])
    key = _rank_key(distance, keep, random_key)
    order = np.argsort(bucket[labels], kind="stable")
    rows_path, meta_path = _scratch(folder, shard.number)
    np.save(rows_path, rows[order])  # a retried task writes the same bytes again
    positions = shard.start + np.arange(shard.n_rows)
    np.savez(meta_path, positions=positions[order], labels=labels[order], key=key[order])
    return np.searchsorted(bucket[labels][order], np.arange(bucket.max() + 2))


def _bucket_similarity(
    item: tuple[int, list[int], list[int]], numbers: list[int], folder: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SemDeDup inside the clusters of one bucket, from its rows in every shard's scratch file."""
    _, starts, stops = item
    rows, positions, labels, key = [], [], [], []
    for number, start, stop in zip(numbers, starts, stops, strict=True):
        if start == stop:
            continue
        rows_path, meta_path = _scratch(folder, number)
        rows.append(np.load(rows_path, mmap_mode="r", allow_pickle=False)[start:stop])
        with np.load(meta_path, allow_pickle=False) as meta:
            positions.append(meta["positions"][start:stop])
            labels.append(meta["labels"][start:stop])
            key.append(meta["key"][start:stop])
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64)
    return _similarity_in_clusters(
        np.concatenate(rows), np.concatenate(labels), np.concatenate(key), np.concatenate(positions)
    )


def max_similarity_to_earlier(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's largest inner product with the rows before it, and the position of that row.

    Parameters
    ----------
    rows : ndarray of shape (m, d), float32
        Unit rows in rank order (assumed validated).

    Returns
    -------
    similarity : ndarray of shape (m,), float32
        -inf for the first row.
    earlier : ndarray of shape (m,), int64
        Position of the most similar earlier row (the first of equals); -1 for the first row.
    """
    m = rows.shape[0]
    similarity = np.full(m, -np.inf, dtype=np.float32)
    earlier = np.full(m, -1, dtype=np.int64)
    step = max(1, _BLOCK_ENTRIES // max(m, 1))
    for start in range(1, m, step):
        stop = min(start + step, m)
        block = rows[start:stop] @ rows[:stop].T  # row i of the block is row start + i
        block[np.arange(stop - start)[:, None] + start <= np.arange(stop)[None, :]] = -np.inf
        earlier[start:stop] = block.argmax(axis=1)
        similarity[start:stop] = block[np.arange(stop - start), earlier[start:stop]]
    return similarity, earlier


class SemDeDup(BaseEstimator):
    """Semantic deduplication inside k-means clusters (SemDeDup).

    Parameters
    ----------
    n_clusters : int, default=100
        k of the spherical k-means partition; the paper uses about one cluster per 10,000 rows or fewer.
        Duplicates split across two clusters are not found, so fewer, larger clusters find more at more cost
        (a cluster of m rows costs m^2 d / 2 multiply-adds).
    keep : {"hard", "easy", "random"}, default="hard"
        Which row of a group of duplicates stays: the farthest from its cluster's centroid (the paper's
        default), the closest, or a random one.
    max_iter : int, default=20
        Lloyd iterations of the k-means.
    random_state : int, RandomState or None, default=0
        Seeds the k-means and the ``random`` policy.
    backend : {"local", "ray"} or Backend, default="local"
        Where the shards of a :class:`~embedlab.io.shards.ShardedSet` given to ``fit`` are processed; an array
        is deduplicated in memory.
    bucket_bytes : int, default=512 MiB
        On shards: the rows one task holds, the clusters of one bucket (a larger cluster is a bucket alone,
        so a task holds at least its largest cluster).
    work_dir : str, optional
        On shards: where the shuffle's scratch files go (as large as the set's float32 rows, removed at the
        end); default the system's temporary directory. On Ray, a directory every node sees.

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
        Each row's cluster.
    cluster_centers_ : ndarray of shape (n_clusters, d), float32
    max_similarity_ : ndarray of shape (n,), float32
        Each row's largest cosine similarity to a row ranked before it in its cluster; -inf for the first.
    duplicate_of_ : ndarray of shape (n,), int64
        That earlier row (-1 for the first of a cluster): the evidence for a removal.

    References
    ----------
    Abbas, Tirumala, Simig, Ganguli and Morcos (2023), "SemDeDup: Data-efficient learning at web-scale through
    semantic deduplication", arXiv:2303.09540.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 16)).astype(np.float32)
    >>> X[200:] = X[:100] + 0.001 * rng.normal(size=(100, 16)).astype(np.float32)
    >>> model = SemDeDup(n_clusters=4, random_state=0).fit(X)
    >>> int((~model.keep_mask(eps=0.01)).sum())
    100
    """

    def __init__(
        self,
        n_clusters: int = 100,
        *,
        keep: KeepPolicy = "hard",
        max_iter: int = 20,
        random_state: int | np.random.RandomState | None = 0,
        backend: str | Backend = "local",
        bucket_bytes: int = BUCKET_BYTES,
        work_dir: str | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.keep = keep
        self.max_iter = max_iter
        self.random_state = random_state
        self.backend = backend
        self.bucket_bytes = bucket_bytes
        self.work_dir = work_dir

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> SemDeDup:
        """Partition ``X`` by spherical k-means and compute each row's similarity to the rows ranked before it."""
        check_choice(self.keep, "keep", KEEP_POLICIES)
        k = check_int(self.n_clusters, "n_clusters")
        rng = check_random_state(self.random_state)
        if isinstance(X, ShardedSet):
            self._fit_shards(X, k, rng, progress)
            return self
        rows = fit_rows(self, X, "cosine")
        if rows.n < k:
            raise ConfigurationError(f"n_clusters={k} but X has only {rows.n} rows.")
        kmeans = KMeans(k, metric="cosine", max_iter=self.max_iter, random_state=rng).fit(rows)
        self.labels_ = np.asarray(kmeans.labels_, dtype=np.int64)
        self.cluster_centers_ = kmeans.cluster_centers_
        centers = _unit(self.cluster_centers_)
        distance = 1.0 - np.einsum("ij,ij->i", rows.vectors, centers[self.labels_])
        random_key = rng.uniform(size=rows.n) if self.keep == "random" else None
        key = _rank_key(distance, self.keep, random_key)
        self.max_similarity_ = np.full(rows.n, -np.inf, dtype=np.float32)
        self.duplicate_of_ = np.full(rows.n, -1, dtype=np.int64)
        with progress.task(f"SemDeDup in {k} clusters", rows.n) as advance:
            positions, similarity, earlier = _similarity_in_clusters(
                rows.vectors, self.labels_, key, np.arange(rows.n), advance
            )
        self.max_similarity_[positions] = similarity
        self.duplicate_of_[positions] = earlier
        return self

    def _fit_shards(self, sharded: ShardedSet, k: int, rng: np.random.RandomState, progress: ProgressReporter) -> None:
        """The same on a sharded set: k-means over the shards, then a shuffle that groups the rows by cluster
        through files in a scratch directory (each shard's task writes its rows ordered by bucket of
        clusters), and one task per bucket that reads its clusters' rows from every shard's file."""
        if sharded.n_rows < k:
            raise ConfigurationError(f"n_clusters={k} but {sharded.path} has only {sharded.n_rows} rows.")
        self.n_features_in_ = sharded.dim
        backend = get_backend(self.backend)
        kmeans = KMeans(k, metric="cosine", max_iter=self.max_iter, random_state=rng, backend=backend)
        kmeans.fit(sharded, progress=progress)
        self.labels_ = np.asarray(kmeans.labels_, dtype=np.int64)
        self.cluster_centers_ = kmeans.cluster_centers_
        random_key = rng.uniform(size=sharded.n_rows) if self.keep == "random" else None
        bucket = _buckets(np.bincount(self.labels_, minlength=k) * 4 * sharded.dim, int(self.bucket_bytes))
        items = [
            (
                shard,
                self.labels_[shard.start : shard.start + shard.n_rows],
                None if random_key is None else random_key[shard.start : shard.start + shard.n_rows],
            )
            for shard in sharded.shards
        ]
        self.max_similarity_ = np.full(sharded.n_rows, -np.inf, dtype=np.float32)
        self.duplicate_of_ = np.full(sharded.n_rows, -1, dtype=np.int64)
        with tempfile.TemporaryDirectory(prefix="embedlab-semdedup-", dir=self.work_dir) as scratch:
            offsets = backend.map(
                _group_shard,
                items,
                _unit(self.cluster_centers_),
                bucket,
                self.keep,
                scratch,
                progress=progress,
                description="Grouping rows by cluster",
            )
            numbers = [shard.number for shard in sharded.shards]
            buckets = [
                (b, [int(o[b]) for o in offsets], [int(o[b + 1]) for o in offsets]) for b in range(bucket.max() + 1)
            ]
            for positions, similarity, earlier in backend.map(
                _bucket_similarity, buckets, numbers, scratch, progress=progress, description="SemDeDup per cluster"
            ):
                self.max_similarity_[positions] = similarity
                self.duplicate_of_[positions] = earlier

    def keep_mask(self, eps: float | None = None, *, remove_fraction: float | None = None) -> np.ndarray:
        """The rows kept at threshold ``eps``, or at the threshold that removes ``remove_fraction`` of them.

        A row goes when its similarity to a row ranked before it exceeds ``1 - eps``. With ``remove_fraction``
        the rows of highest similarity go, ties to the later-ranked row in row order, so exactly
        ``floor(remove_fraction * n)`` rows go.
        """
        check_is_fitted(self, "max_similarity_")
        if (eps is None) == (remove_fraction is None):
            raise ConfigurationError("give eps or remove_fraction, not both and not neither.")
        if eps is not None:
            return ~(self.max_similarity_ > 1.0 - check_eps(eps))
        n_remove = int(check_fraction(remove_fraction) * self.max_similarity_.size)
        keep = np.ones(self.max_similarity_.size, dtype=bool)
        order = np.lexsort((-np.arange(keep.size), -self.max_similarity_))
        keep[order[:n_remove]] = False
        return keep

    def eps_for_fraction(self, remove_fraction: float) -> float:
        """The largest ``eps`` that removes at most ``remove_fraction`` of the rows, to float rounding: what a
        target fraction means as a threshold (in (0, 2); :meth:`keep_mask` with the fraction is exact)."""
        check_is_fitted(self, "max_similarity_")
        n_remove = int(check_fraction(remove_fraction) * self.max_similarity_.size)
        ranked = np.sort(self.max_similarity_)[::-1]  # n_remove < n: the fraction is below 1
        eps = 1.0 - float(ranked[n_remove])
        return float(np.clip(eps, np.finfo(np.float32).eps, np.nextafter(2.0, 0.0)))

    def removal_curve(self, eps_values: object) -> np.ndarray:
        """The fraction of rows removed at each ``eps`` of ``eps_values``, from the one stored pass."""
        check_is_fitted(self, "max_similarity_")
        eps = np.asarray([check_eps(float(e)) for e in np.ravel(eps_values)])
        ranked = np.sort(self.max_similarity_)
        removed = ranked.size - np.searchsorted(ranked, 1.0 - eps, side="right")
        return removed / max(ranked.size, 1)
