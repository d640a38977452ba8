"""An index per shard of a set on disk: tuned once on one shard, built by the task that owns each shard, and
searched (or used for a kNN graph) through :class:`~embedlab.neighbors.ShardedSearcher` on any backend.

Each shard's index holds only that shard's rows, so building and searching never hold more than a shard; the
lists of the shards are merged per query. A row's neighbours among all rows are the best of its neighbours in
each shard, so the merged recall is at least about the recall each shard's index reaches at ``k``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embedlab._checks import check_choice, check_int
from embedlab._json import document_errors, read_document
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.shards import Shard, ShardedSet, open_shards, write_parts
from embedlab.io.validation import METRICS, Metric, Rows, prepare
from embedlab.neighbors import (
    BaseSearcher,
    FaissSearcher,
    HNSWParams,
    IVFParams,
    IVFPQParams,
    SearchParams,
    ShardedGraph,
    Storage,
    knn_graph_shards,
    search_params,
)
from embedlab.scale import Backend, worker_cache
from embedlab.search._index import _params_from_dict, build_index

__all__ = ["SHARD_INDEXES_MANIFEST", "ShardIndexes", "build_shard_graph", "build_shard_indexes"]

#: The manifest of a directory of per-shard indexes.
SHARD_INDEXES_MANIFEST = "_indexes.json"


def _index_name(shard: Shard) -> str:
    return f"part-{shard.number:05d}.faiss"


@dataclass(frozen=True)
class ShardIndexes:
    """A faiss index per shard, all built with the same parameters: the ``searchers`` of
    :class:`~embedlab.neighbors.ShardedSearcher` and :func:`~embedlab.neighbors.knn_graph_shards`.

    It travels to the tasks (a path and the parameters); each task reads its shard's index file, through the
    worker's cache on Ray actors, so the index stays loaded between searches.

    Attributes
    ----------
    path : str
        The directory of ``part-NNNNN.faiss`` files and ``_indexes.json``.
    params : SearchParams
        The search parameters every shard is searched with.
    metric : str
    card : dict or None
        The operating-point card of the shard the parameters were tuned on (None when they were given).
    """

    path: str
    params: SearchParams
    metric: str
    card: dict | None = None

    def needs_rows(self) -> bool:
        """Whether searching needs the shard's rows: candidates re-ranked exactly, or L2 distances refined."""
        return self.metric == "l2" or self.params.rerank > 1

    def searcher(self, shard: Shard, rows: Rows | None, metric: Metric) -> BaseSearcher:
        """The searcher of the shard's index (its rows for re-ranking when :meth:`needs_rows`)."""
        file = Path(self.path) / _index_name(shard)
        index = _read_index(file)
        if index.ntotal != shard.n_rows or index.d != shard.dim:
            raise EmbeddingDataError(
                f"{file} indexes {index.ntotal} rows of dimension {index.d}, but {shard.name} has {shard.n_rows} of "
                f"dimension {shard.dim}: the data changed since the indexes were built; build them again."
            )
        return FaissSearcher(index, self.params, metric, vectors=None if rows is None else rows.vectors)

    @classmethod
    def open(cls, path: str | os.PathLike) -> ShardIndexes:
        """Read the manifest of a directory written by :func:`build_shard_indexes`.

        Raises
        ------
        EmbeddingDataError
            When ``path`` holds no such manifest or it is corrupt.
        """
        manifest = Path(path) / SHARD_INDEXES_MANIFEST
        if not manifest.is_file():
            raise EmbeddingDataError(
                f"{path} holds no per-shard indexes (no {SHARD_INDEXES_MANIFEST}); build them with "
                "embedlab.search.build_shard_indexes."
            )
        document = read_document(manifest, what="manifest of per-shard indexes")
        with document_errors(manifest, "manifest of per-shard indexes"):
            return cls(str(path), _params_from_dict(document["params"]), str(document["metric"]), document.get("card"))


def _read_index(file: Path) -> faiss.Index:
    """The faiss index in ``file``, kept in the worker's cache when it has one (keyed by size and time)."""

    def load() -> tuple[faiss.Index, int]:
        try:
            return faiss.read_index(str(file)), file.stat().st_size
        except RuntimeError as error:
            raise EmbeddingDataError(f"{file}: cannot be read as a faiss index ({error}).") from error

    cache = worker_cache()
    if cache is None:
        return load()[0]
    try:
        stat = file.stat()
    except OSError:
        raise EmbeddingDataError(f"{file} is missing; build the indexes again.") from None
    return cache.get(("faiss", str(file), stat.st_size, stat.st_mtime_ns), load)


def _build_part(shard: Shard, params: SearchParams, metric: str, seed: int, folder: str) -> tuple[str, int]:
    """Build the shard's index and write it to ``folder`` (a retried task writes the same file again)."""
    chunk = shard.read()
    rows = prepare(chunk.vectors, metric, name=shard.name)
    built = FaissSearcher.build(rows, params, metric, random_state=np.random.default_rng([seed, shard.number]))
    faiss.write_index(built.index, str(Path(folder) / _index_name(shard)))
    return _index_name(shard), rows.n


def build_shard_indexes(
    data: str | os.PathLike | ShardedSet,
    output: str | os.PathLike,
    *,
    k: int = 10,
    target_recall: float | None = 0.95,
    params: SearchParams | None = None,
    metric: Metric = "cosine",
    n_queries: int = 1000,
    shard_rows: int | None = None,
    backend: str | Backend = "local",
    random_state: int = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> ShardIndexes:
    """Build a faiss index of every shard of a set on disk into the directory ``output``.

    The parameters are tuned once, by :func:`~embedlab.search.build_index` on the first shard's rows (HNSW or
    IVF: the kinds a shard's own rows can train) to ``target_recall`` at ``k``, unless ``params`` are given;
    then each shard's task builds its index with them and writes ``part-NNNNN.faiss``. The shards are alike
    (rows of one set, cut by position), so what the first shard needs the others need; each holds fewer rows
    than the whole, which only raises recall at a fixed beam.

    Parameters
    ----------
    data : path-like or ShardedSet
    output : path-like
        A new directory (or an earlier one of this kind, which is replaced).
    k, target_recall, n_queries
        As for :func:`~embedlab.search.build_index`, for the tuning.
    params : HNSWParams, IVFParams or IVFPQParams, optional
        Build with these instead of tuning.
    metric : {"cosine", "l2", "ip"}, default="cosine"
    shard_rows : int, optional
        As for :func:`~embedlab.io.shards.open_shards`, when ``data`` is a path.
    backend : {"local", "ray"} or Backend, default="local"
    random_state : int, default=0
        Seeds the tuning and, with the shard's number, each shard's index.
    progress : ProgressReporter, optional

    Returns
    -------
    ShardIndexes

    Raises
    ------
    ConfigurationError
        On bad parameters, or a target the tuning shard cannot reach.
    EmbeddingDataError
        On invalid rows or an unreadable shard, naming the file and rows.
    """
    check_choice(metric, "metric", METRICS)
    random_state = check_int(random_state, "random_state", 0)
    sharded = data if isinstance(data, ShardedSet) else open_shards(data, shard_rows=shard_rows)
    card: dict[str, Any] | None = None
    if params is None:
        first = sharded.shards[0]
        tuned = build_index(
            prepare(first.read().vectors, metric, name=first.name),
            k=k,
            target_recall=target_recall,
            metric=metric,
            n_queries=n_queries,
            random_state=random_state,
            progress=progress,
        )
        params, card = tuned.params, tuned.card.to_dict()
    elif not isinstance(params, HNSWParams | IVFParams | IVFPQParams):
        raise ConfigurationError(f"a shard's index is hnsw, ivf or ivfpq, not {params.method!r}.")
    document = {"params": params.to_dict(), "metric": metric, "source": sharded.path, "card": card}
    write_parts(
        output,
        _build_part,
        list(sharded.shards),
        params,
        metric,
        random_state,
        manifest=SHARD_INDEXES_MANIFEST,
        document=document,
        backend=backend,
        progress=progress,
        description="Building shard indexes",
    )
    return ShardIndexes(str(output), params, metric, card)


def build_shard_graph(
    sharded: ShardedSet,
    output: str | os.PathLike,
    k: int = 10,
    *,
    method: str | SearchParams = "auto",
    storage: Storage | None = None,
    metric: Metric = "cosine",
    backend: str | Backend = "local",
    random_state: int = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> ShardedGraph:
    """The kNN graph of a set on disk by any search method, written as :func:`~embedlab.neighbors.knn_graph_shards`
    writes it: exactly, or through an index per shard built for the occasion (in a scratch folder beside
    ``output``, removed afterwards).

    Parameters
    ----------
    sharded : ShardedSet
    output : path-like
        A new directory (or an earlier graph directory, which is replaced).
    k : int, default=10
    method : {"auto", "exact", "hnsw", "ivf", "ivfpq"} or SearchParams, default="auto"
        ``"auto"`` is exact unless the set is large (:func:`~embedlab.neighbors.search_params`).
    storage : {"sq8", "flat"}, optional
        How HNSW and IVF indexes keep their vectors (their default when omitted).
    metric : {"cosine", "l2", "ip"}, default="cosine"
    backend : {"local", "ray"} or Backend, default="local"
    random_state : int, default=0
        Seeds the indexes' training.
    progress : ProgressReporter, optional

    Returns
    -------
    ShardedGraph
        Its ``params`` say how the shards were searched.
    """
    params = search_params(method, sharded.n_rows, sharded.n_rows, storage=storage)
    if params.method == "exact":
        return knn_graph_shards(sharded, output, k, metric=metric, backend=backend, progress=progress)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.indexes.", dir=output.parent.resolve()) as scratch:
        searchers = build_shard_indexes(
            sharded,
            Path(scratch) / "indexes",
            params=params,
            metric=metric,
            backend=backend,
            random_state=random_state,
            progress=progress,
        )
        return knn_graph_shards(
            sharded, output, k, metric=metric, backend=backend, searchers=searchers, progress=progress
        )
