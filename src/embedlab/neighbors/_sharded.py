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

import numpy as np
import pyarrow as pa

from embedlab._checks import check_choice, check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.io.shards import Shard, ShardedSet
from embedlab.io.validation import METRICS, Metric, Rows, prepare
from embedlab.io.writers import atomic_directory, write_json, write_table
from embedlab.neighbors.params import ExactParams, SearchParams
from embedlab.neighbors.searchers import BaseSearcher, ExactSearcher, merge_top_k
from embedlab.scale import Backend, get_backend

__all__ = ["GRAPH_MANIFEST", "ShardedGraph", "ShardedSearcher", "knn_graph_shards"]

#: The manifest of a sharded kNN graph directory.
GRAPH_MANIFEST = "graph.json"


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
    """

    path: str
    k: int
    metric: str
    n_rows: int
    files: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"path": self.path, "k": self.k, "metric": self.metric, "n_rows": self.n_rows, "files": list(self.files)}


def _search_shard(shard: Shard, queries: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances and set-wide rows of the ``k`` nearest rows of ``shard`` to each query (padded)."""
    rows, _ = _prepared(shard, metric)
    distances = np.full((queries.shape[0], k), np.inf, dtype=np.float32)
    positions = np.full((queries.shape[0], k), -1, dtype=np.int64)
    depth = min(k, rows.n)
    if depth:
        found = ExactSearcher(rows, metric).search(queries, depth)
        distances[:, :depth], positions[:, :depth] = found.distances, shard.start + found.indices
    return distances, positions


class ShardedSearcher(BaseSearcher):
    """Exact search of a sharded set: every shard searched for all queries where ``backend`` runs it.

    Each search reads every shard once (the queries go out, ``k`` neighbours a query come back), so it suits
    batches of queries (the sampled queries of an intrinsic-dimension estimate, an evaluation set), not one
    query at a time.

    Parameters
    ----------
    sharded : ShardedSet
    metric : {"cosine", "l2", "ip"}, default="cosine"
    backend : {"local", "ray"} or Backend, default="local"

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

    def __init__(self, sharded: ShardedSet, metric: Metric = "cosine", *, backend: str | Backend = "local") -> None:
        check_choice(metric, "metric", METRICS)
        self.sharded, self.metric, self.dim = sharded, metric, sharded.dim
        self.n_rows = self.n_searchable = sharded.n_rows
        self.backend = get_backend(backend)

    @property
    def params(self) -> SearchParams:
        return ExactParams()

    def _search_block(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        parts = self.backend.map(
            _search_shard, self.sharded.shards, queries, k, self.metric, description="Searching shards"
        )
        return merge_top_k(parts, queries.shape[0], k, largest=False)


def _prepared(shard: Shard, metric: str) -> tuple[Rows, np.ndarray]:
    chunk = shard.read()
    return prepare(chunk.vectors, metric, name=shard.name), chunk.ids


def _graph_part(query: Shard, shards: tuple[Shard, ...], k: int, metric: str, folder: str) -> tuple[str, int]:
    """The ``k`` nearest rows of every row of ``query`` among all shards' rows, written to ``folder``."""
    queries, query_ids = _prepared(query, metric)
    n = queries.n
    distances = np.full((n, k), np.inf, dtype=np.float32)
    rows = np.full((n, k), -1, dtype=np.int64)
    ids = np.full((n, k), None, dtype=object)
    for base in shards:
        own = base.number == query.number
        searched, base_ids = (queries, query_ids) if own else _prepared(base, metric)
        depth = min(k, searched.n - int(own))
        if depth <= 0 or n == 0:
            continue
        exclude = np.arange(n) if own else None
        found = ExactSearcher(searched, metric).search(queries, depth, exclude=exclude)
        merged_d = np.concatenate([distances, found.distances], axis=1)
        merged_rows = np.concatenate([rows, base.start + found.indices], axis=1)
        merged_ids = np.concatenate([ids, base_ids[found.indices]], axis=1)
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
    name = f"part-{query.number:05d}.parquet"
    write_table(table, Path(folder) / name)  # a retried task writes the same file again
    return name, n


def knn_graph_shards(
    sharded: ShardedSet,
    output: str | os.PathLike,
    k: int = 10,
    *,
    metric: Metric = "cosine",
    backend: str | Backend = "local",
    progress: ProgressReporter = NULL_PROGRESS,
) -> ShardedGraph:
    """The exact ``k``-nearest-neighbour graph of every row of ``sharded``, written to the directory ``output``.

    Every shard's rows are searched against every shard (faiss's exact BLAS search), each row's own row left
    out, and the neighbours merged per query, nearest first; ties go to the earlier row. Each shard's part is
    written by the task that computed it; the directory appears whole or not at all.

    Parameters
    ----------
    sharded : ShardedSet
    output : path-like
        A new directory (or an earlier graph directory, which is replaced).
    k : int, default=10
    metric : {"cosine", "l2", "ip"}, default="cosine"
    backend : {"local", "ray"} or Backend, default="local"
        On Ray, ``output`` must be on a file system every node sees.
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
    target = Path(output)
    with atomic_directory(target, replaceable=GRAPH_MANIFEST) as staging:
        runner = get_backend(backend)
        shards = sharded.shards
        parts = runner.map(
            _graph_part, shards, shards, k, metric, str(staging), progress=progress, description="kNN graph"
        )
        for stray in staging.glob(".*.tmp"):  # left by a worker killed while writing (its task was retried)
            stray.unlink()
        graph = ShardedGraph(str(target), k, metric, sharded.n_rows, tuple(name for name, _ in parts))
        write_json({**graph.to_dict(), "source": sharded.path, "rows": [n for _, n in parts]}, staging / GRAPH_MANIFEST)
    return graph
