"""Cluster-stratified batches: a batch order for contrastive training in which each batch comes from one k-means
cluster (hard in-batch negatives; TAS-Balanced, Hofstätter et al. 2021; Merrick 2024) or is a proportional
sample of all of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int
from embedlab._json import plain
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster import KMeans
from embedlab.io import EmbeddingSet
from embedlab.io.shards import ShardedSet
from embedlab.io.validation import prepare
from embedlab.scale import Backend

__all__ = ["BATCH_MODES", "Batches", "stratified_batches"]

BatchMode = Literal["cluster", "balanced"]
#: One cluster per batch, or every batch a proportional sample of the clusters.
BATCH_MODES: tuple[str, ...] = ("cluster", "balanced")
#: Batches a cluster holds on average when ``n_clusters`` is not given (mode "cluster").
_BATCHES_PER_CLUSTER = 10


@dataclass(frozen=True)
class Batches:
    """A batch order over a set's rows.

    Attributes
    ----------
    mode : str
    parameters : dict
    batches : list of ndarray of int64
        Row positions of each batch, in training order. Every row is in exactly one batch (unless the last,
        short batch was dropped).
    batch_cluster : ndarray of shape (n_batches,), int64
        The cluster every row of the batch belongs to, or -1 for a batch that mixes clusters.
    cluster : ndarray of shape (n,), int64
        Each row's k-means cluster.
    """

    mode: str
    parameters: dict[str, Any]
    batches: list[np.ndarray] = field(repr=False)
    batch_cluster: np.ndarray = field(repr=False)
    cluster: np.ndarray = field(repr=False)

    def to_table(self, ids: np.ndarray) -> pa.Table:
        """One row per batch, in order: ``batch``, ``cluster`` (-1 when mixed), ``size`` and ``ids`` (a list)."""
        ids = np.asarray(ids)
        return pa.table(
            {
                "batch": pa.array(np.arange(len(self.batches), dtype=np.int64)),
                "cluster": pa.array(self.batch_cluster),
                "size": pa.array(np.array([b.size for b in self.batches], dtype=np.int64)),
                "ids": pa.array([ids[b] for b in self.batches]),
            }
        )

    def to_dict(self) -> dict:
        """JSON-ready summary: batch counts, how many are one-cluster batches, clusters per batch."""
        per_batch = np.array([np.unique(self.cluster[b]).size for b in self.batches])
        return {
            "mode": self.mode,
            "parameters": plain(self.parameters),
            "n_batches": len(self.batches),
            "rows": int(sum(b.size for b in self.batches)),
            "single_cluster_batches": int((self.batch_cluster >= 0).sum()),
            "clusters_per_batch": {
                "mean": float(per_batch.mean()) if per_batch.size else 0.0,
                "max": int(per_batch.max(initial=0)),
            },
        }


def stratified_batches(
    data: EmbeddingSet | ShardedSet | object,
    batch_size: int,
    *,
    mode: BatchMode = "cluster",
    n_clusters: int | None = None,
    drop_last: bool = False,
    max_iter: int = 20,
    random_state: int | None = 0,
    backend: str | Backend = "local",
    progress: ProgressReporter = NULL_PROGRESS,
) -> Batches:
    """A batch order drawn from the spherical k-means clusters of ``data``.

    * ``"cluster"``: each cluster's rows are shuffled and cut into full batches, so a batch's in-batch negatives
      are its cluster's neighbours (harder than random ones); the rows left over by each cluster are pooled,
      in cluster order, and cut into the remaining batches (mixed, or from one cluster when they happen to
      be). The batches are then shuffled. Clusters default to about ten batches' worth of rows each.
    * ``"balanced"``: every batch is a proportional sample of the clusters: each cluster's rows, shuffled, are
      spread at even intervals over the epoch (row r of a cluster of m rows at position (r + u) / m, u a
      random offset per cluster), so a cluster of share p gives about p x batch_size rows to every batch.
      Clusters default to ``batch_size``.

    Parameters
    ----------
    data : EmbeddingSet, ShardedSet or array-like of shape (n, d)
        A sharded set is clustered shard by shard on ``backend``.
    batch_size : int
    mode : {"cluster", "balanced"}, default="cluster"
    n_clusters : int, optional
    drop_last : bool, default=False
        Leave out the last batch when it is short.
    max_iter : int, default=20
        Lloyd iterations of the k-means.
    random_state : int or None, default=0
        Seeds the k-means and every shuffle.
    backend : {"local", "ray"} or Backend, default="local"
    progress : ProgressReporter, optional

    Returns
    -------
    Batches

    References
    ----------
    Hofstätter, Lin, Yang, Lin and Hanbury (2021), "Efficiently teaching an effective dense retriever with
    balanced topic aware sampling", SIGIR (TAS-Balanced).
    Merrick (2024), "Embedding and clustering your data can improve contrastive pretraining", arXiv:2407.18887.
    """
    check_choice(mode, "mode", BATCH_MODES)
    if not isinstance(data, ShardedSet):
        data = prepare(data.vectors if isinstance(data, EmbeddingSet) else data, "cosine")
    n = data.n_rows if isinstance(data, ShardedSet) else data.n
    batch_size = check_int(batch_size, "batch_size", maximum=n, why=f"the set has {n:,} rows")
    if n_clusters is None:
        n_clusters = max(1, n // (_BATCHES_PER_CLUSTER * batch_size)) if mode == "cluster" else batch_size
    k = check_int(n_clusters, "n_clusters", maximum=n, why=f"the set has {n:,} rows")
    rng = check_random_state(random_state)
    labels = KMeans(k, max_iter=max_iter, random_state=rng, backend=backend).fit(data, progress=progress).labels_
    labels = np.asarray(labels, dtype=np.int64)
    shuffled = rng.permutation(n)
    by_cluster = shuffled[np.argsort(labels[shuffled], kind="stable")]  # clusters in order, rows shuffled
    counts = np.bincount(labels, minlength=k)
    cluster_of = labels[by_cluster]
    rank = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)  # each row's place in its cluster
    if mode == "cluster":
        full = rank < (counts // batch_size * batch_size)[cluster_of]
        order = np.r_[by_cluster[full], by_cluster[~full]]
    else:
        position = (rank + rng.uniform(size=k)[cluster_of]) / counts[cluster_of]
        order = by_cluster[np.argsort(position, kind="stable")]
    batches = [order[start : start + batch_size] for start in range(0, n, batch_size)]
    if drop_last and batches[-1].size < batch_size:
        batches.pop()
    if mode == "cluster":
        batches = [batches[i] for i in rng.permutation(len(batches))]
    first = np.array([labels[b[0]] for b in batches], dtype=np.int64)
    single = np.array([bool((labels[b] == labels[b[0]]).all()) for b in batches])
    parameters = {"batch_size": batch_size, "n_clusters": k, "drop_last": drop_last, "random_state": random_state}
    return Batches(mode, parameters, batches, np.where(single, first, -1), labels)
