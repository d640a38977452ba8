"""Search over a set cut into shards, on any backend of :mod:`embedlab.scale`: a :class:`ShardedSearcher` for
queries held in memory, and the exact kNN graph of every row.

A ``ShardedSearcher`` sends the queries to every shard's task, which searches its rows exactly and returns each
query's best ``k`` with set-wide row numbers; the lists are merged in one heap. For the graph, each shard's rows
are the queries of one task, which reads the shards one at a time as the searched rows and keeps each query's
best ``k`` (its own row left out), then writes its part of the graph beside the others; only file names and
counts come back to the driver. Memory per task: two shards and ``k`` neighbours a query row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa

from embedlab._checks import check_choice, check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.io.shards import Shard, ShardedSet, part_name, write_parts
from embedlab.io.validation import METRICS, Metric, Rows, prepare
from embedlab.io.writers import write_table
from embedlab.neighbors.params import ExactParams, SearchParams
from embedlab.neighbors.searchers import BaseSearcher, ExactSearcher, merge_top_k
from embedlab.scale import Backend, get_backend

__all__ = ["GRAPH_MANIFEST", "ExactShards", "ShardSearchers", "ShardedGraph", "ShardedSearcher", "knn_graph_shards"]

#: The manifest of a sharded kNN graph directory.
GRAPH_MANIFEST = "_graph.json"  # a leading underscore: Arrow and Spark readers of the folder skip it


@dataclass(frozen=True)
class ShardedGraph:
    """A kNN graph written as one Parquet file per shard (``id``, ``neighbor_ids``, ``neighbor_rows``,
    ``distances``; lists of ``k``, nearest first, distances as :class:`~embedlab.neighbors.KnnResult` has them).

    Attributes
    ----------
    path : str
    k : int
    metric : str
    n_rows : int
    files : tuple of str
        In shard order, relative to ``path``.
    params : SearchParams
        How each shard was searched (exact, or the parameters of its index).
    """

    path: str
    k: int
    metric: str
    n_rows: int
    files: tuple[str, ...]
    params: SearchParams

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "k": self.k,
            "metric": self.metric,
            "n_rows": self.n_rows,
            "files": list(self.files),
            "method": self.params.method,
            "params": self.params.to_dict(),
        }


class ShardSearchers(Protocol):
    """How each shard is searched: what :class:`ShardedSearcher` and :func:`knn_graph_shards` open in the task
    that owns a shard. It travels to the tasks, so it is small and picklable (a module-level class)."""

    params: SearchParams

    def needs_rows(self) -> bool:
        """Whether :meth:`searcher` needs the shard's prepared rows."""

    def searcher(self, shard: Shard, rows: Rows | None, metric: Metric) -> BaseSearcher:
        """The searcher of ``shard``'s rows, its indices the shard's own row numbers."""


class ExactShards:
    """Each shard searched exactly: faiss's BLAS scan of its rows."""

    params: SearchParams = ExactParams()

    def needs_rows(self) -> bool:
        return True

    def searcher(self, shard: Shard, rows: Rows | None, metric: Metric) -> BaseSearcher:
        return ExactSearcher(rows, metric)


def _open(shard: Shard, searchers: ShardSearchers, metric: Metric, rows: Rows | None = None) -> BaseSearcher:
    """The shard's searcher, its rows read only when the searcher needs them (or given)."""
    if rows is None and searchers.needs_rows():
        rows, _ = _prepared(shard, metric)
    return searchers.searcher(shard, rows, metric)


def _search_shard(
    shard: Shard, queries: np.ndarray, k: int, metric: Metric, searchers: ShardSearchers
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and set-wide rows of the ``k`` nearest rows of ``shard`` to each query (padded)."""
    distances = np.full((queries.shape[0], k), np.inf, dtype=np.float32)
    positions = np.full((queries.shape[0], k), -1, dtype=np.int64)
    depth = min(k, shard.n_rows)
    if depth:
        found = _open(shard, searchers, metric).search(queries, depth)
        valid = found.indices >= 0  # an index may find fewer than asked
        distances[:, :depth] = np.where(valid, found.distances, np.inf)
        positions[:, :depth] = np.where(valid, shard.start + found.indices, -1)
    return distances, positions


class ShardedSearcher(BaseSearcher):
    """Search of a sharded set: every shard searched for all queries where ``backend`` runs it, exactly or
    through an index per shard, and each query's lists merged in one heap.

    Each search opens every shard once (the queries go out, ``k`` neighbours a query come back), so it suits
    batches of queries (the sampled queries of an intrinsic-dimension estimate, an evaluation set), not one
    query at a time; on Ray actors (:class:`~embedlab.scale.RayBackend` ``actors=``) the shards' rows or
    indexes stay loaded between searches.

    Parameters
    ----------
    sharded : ShardedSet
    metric : {"cosine", "l2", "ip"}, default="cosine"
    backend : {"local", "ray"} or Backend, default="local"
    searchers : ShardSearchers, optional
        How each shard is searched; exactly by default (:class:`ExactShards`), or through the indexes of
        :func:`embedlab.search.build_shard_indexes`.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from embedlab.io.shards import open_shards
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(20, dtype=np.float32).reshape(10, 2))
    >>> searcher = ShardedSearcher(open_shards(path, shard_rows=4), "l2")
    >>> searcher.search(np.array([[8.4, 9.4]]), 2).indices.tolist()
    [[4, 5]]
    """

    batch_size = 2**31 - 1  # one block: each block reads every shard

    def __init__(
        self,
        sharded: ShardedSet,
        metric: Metric = "cosine",
        *,
        backend: str | Backend = "local",
        searchers: ShardSearchers | None = None,
    ) -> None:
        check_choice(metric, "metric", METRICS)
        self.sharded, self.metric, self.dim = sharded, metric, sharded.dim
        self.n_rows = self.n_searchable = sharded.n_rows
        self.backend = get_backend(backend)
        self.searchers = ExactShards() if searchers is None else searchers
        self.exact_distances = isinstance(self.searchers, ExactShards)

    @property
    def params(self) -> SearchParams:
        return self.searchers.params

    def _search_block(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        parts = self.backend.map(
            _search_shard, self.sharded.shards, queries, k, self.metric, self.searchers, description="Searching shards"
        )
        return merge_top_k(parts, queries.shape[0], k, largest=False)


def _prepared(shard: Shard, metric: str) -> tuple[Rows, np.ndarray]:
    chunk = shard.read()
    return prepare(chunk.vectors, metric, name=shard.name), chunk.ids


def _ids(shard: Shard) -> np.ndarray:
    return shard.read().ids


def _graph_part(
    query: Shard, shards: tuple[Shard, ...], k: int, metric: Metric, searchers: ShardSearchers, folder: str
) -> tuple[str, int]:
    """The ``k`` nearest rows of every row of ``query`` among all shards' rows, written to ``folder``."""
    queries, query_ids = _prepared(query, metric)
    n = queries.n
    distances = np.full((n, k), np.inf, dtype=np.float32)
    rows = np.full((n, k), -1, dtype=np.int64)
    ids = np.full((n, k), None, dtype=object)
    for base in shards:
        own = base.number == query.number
        depth = min(k, base.n_rows - int(own))
        if depth <= 0 or n == 0:
            continue
        searcher = _open(base, searchers, metric, queries if own and searchers.needs_rows() else None)
        base_ids = query_ids if own else _ids(base)
        exclude = np.arange(n) if own else None
        found = searcher.search(queries, depth, exclude=exclude)
        valid = found.indices >= 0  # an index may find fewer than asked
        merged_d = np.concatenate([distances, np.where(valid, found.distances, np.inf)], axis=1)
        merged_rows = np.concatenate([rows, np.where(valid, base.start + found.indices, -1)], axis=1)
        merged_ids = np.concatenate([ids, np.where(valid, base_ids[np.maximum(found.indices, 0)], None)], axis=1)
        order = np.lexsort((merged_rows, merged_d), axis=1)[:, :k]  # nearest first, ties to the earlier row
        distances = np.take_along_axis(merged_d, order, axis=1)
        rows = np.take_along_axis(merged_rows, order, axis=1)
        ids = np.take_along_axis(merged_ids, order, axis=1)
    missing = (rows < 0).reshape(-1)
    table = pa.table(
        {
            "id": pa.array(query_ids),
            "neighbor_ids": pa.FixedSizeListArray.from_arrays(pa.array(ids.reshape(-1), mask=missing), k),
            "neighbor_rows": pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1), mask=missing), k),
            "distances": pa.FixedSizeListArray.from_arrays(pa.array(distances.reshape(-1)), k),
        }
    )
    write_table(table, Path(folder) / part_name(query))  # a retried task writes the same file again
    return part_name(query), n


def knn_graph_shards(
    sharded: ShardedSet,
    output: str | os.PathLike,
    k: int = 10,
    *,
    metric: Metric = "cosine",
    backend: str | Backend = "local",
    searchers: ShardSearchers | None = None,
    progress: ProgressReporter = NULL_PROGRESS,
) -> ShardedGraph:
    """The ``k``-nearest-neighbour graph of every row of ``sharded``, written to the directory ``output``.

    Every shard's rows are searched against every shard (exactly, by faiss's BLAS search, or through each
    shard's index), each row's own row left out, and the neighbours merged per query, nearest first; ties go to
    the earlier row. Each shard's part is written by the task that computed it; the directory appears whole or
    not at all. Exact search costs ``n^2 d`` multiply-adds: beyond a million rows or so, build an index per
    shard (:func:`embedlab.search.build_shard_indexes`) and pass it as ``searchers``.

    Parameters
    ----------
    sharded : ShardedSet
    output : path-like
        A new directory (or an earlier graph directory, which is replaced).
    k : int, default=10
    metric : {"cosine", "l2", "ip"}, default="cosine"
    backend : {"local", "ray"} or Backend, default="local"
        On Ray, ``output`` must be on a file system every node sees.
    searchers : ShardSearchers, optional
        How each shard is searched (exactly by default).
    progress : ProgressReporter, optional
        Receives the shards done.

    Returns
    -------
    ShardedGraph

    Raises
    ------
    ConfigurationError
        On bad parameters (``k`` at least the number of rows).
    EmbeddingDataError
        On invalid rows or an unreadable shard, naming the file and rows.
    """
    check_choice(metric, "metric", METRICS)
    k = check_int(k, "k", maximum=sharded.n_rows - 1, why="the rows of the set, less one")
    shards = sharded.shards
    searchers = ExactShards() if searchers is None else searchers
    parts = write_parts(
        output,
        _graph_part,
        list(shards),
        shards,
        k,
        metric,
        searchers,
        manifest=GRAPH_MANIFEST,
        document={
            "path": str(output),
            "k": k,
            "metric": metric,
            "n_rows": sharded.n_rows,
            "source": sharded.path,
            "search": searchers.params.to_dict(),
        },
        backend=backend,
        progress=progress,
        description="kNN graph",
    )
    return ShardedGraph(str(output), k, metric, sharded.n_rows, tuple(name for name, _ in parts), searchers.params)
