"""The convenience entry points of the search layer: :func:`knn` (arrays) and :func:`knn_graph` (an
EmbeddingSet, cached), which pick a searcher by cost, search, and measure the recall of approximate search.

Every module that needs neighbours calls one of these or a :class:`~embedlab.neighbors.Searcher` directly, so
metric handling, block-wise search and the ``(distances, indices)`` convention live in this package only.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Literal

import numpy as np

from embedlab._checks import check_choice, check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError
from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.readers import reading_memory
from embedlab.io.validation import METRICS, Metric, prepare, unit_rows
from embedlab.neighbors.evaluation import recall_at_k
from embedlab.neighbors.params import ExactParams, HNSWParams, IVFParams, IVFPQParams, SearchParams, Storage
from embedlab.neighbors.result import KnnResult
from embedlab.neighbors.searchers import BaseSearcher, ExactSearcher, FaissSearcher
from embedlab.scale import MemoryEstimate, job_estimate

__all__ = ["AUTO_EXACT_MAX_PAIRS", "Method", "Metric", "knn", "knn_graph", "search_params", "unit_rows"]

logger = logging.getLogger(__name__)

Method = Literal["auto", "exact", "hnsw", "ivf", "ivfpq"]

#: ``method="auto"`` searches exactly while queries x rows stays under this (1e10 pairs at d=384 took 54 s on
#: 2 cores in benchmarks/bench_knn.py, so this bound is about 14 s).
AUTO_EXACT_MAX_PAIRS = 2_500_000_000
_SEARCH_BUFFER_BYTES = 100 * 2**20
# A neighbour's id (a string, in an Arrow list) and distance in the graph table, and the Python objects behind it.
_GRAPH_TABLE_ROW_BYTES = 40
_DEFAULTS: dict[str, SearchParams] = {
    "exact": ExactParams(),
    "hnsw": HNSWParams(),
    "ivf": IVFParams(),
    "ivfpq": IVFPQParams(),
}


def search_params(
    method: Method | SearchParams, n_queries: int, n_rows: int, *, storage: Storage | None = None
) -> SearchParams:
    """The parameters a method name stands for: its defaults, and for ``"auto"`` exact or HNSW by cost;
    ``storage`` (how HNSW and IVF keep their vectors) replaces the default of a method that has one.

    Examples
    --------
    >>> search_params("auto", 1_000, 10_000).method, search_params("auto", 100_000, 100_000).method
    ('exact', 'hnsw')
    >>> search_params("hnsw", 10, 10, storage="flat").storage
    'flat'
    """
    if isinstance(method, SearchParams):
        return method
    check_choice(method, "method", ("auto", *_DEFAULTS))
    if method == "auto":
        method = "exact" if n_queries * n_rows <= AUTO_EXACT_MAX_PAIRS else "hnsw"
    params = _DEFAULTS[method]
    if storage is not None and isinstance(params, HNSWParams | IVFParams):
        params = replace(params, storage=storage)
    return params


def graph_memory(n_rows: int, dim: int, k: int = 10, *, method: Method = "auto") -> tuple[tuple[str, float], ...]:
    """What the kNN graph of ``n_rows`` rows holds beyond the rows, as parts of a memory estimate: an HNSW index
    (8-bit vectors and 2M links a row) when ``method`` is or resolves to HNSW, the graph's indices and distances,
    and the search's working buffers (faiss's blocks of distances, OpenMP and BLAS scratch)."""
    params = search_params(method, n_rows, n_rows)
    parts: list[tuple[str, float]] = [("kNN graph", 12.0 * n_rows * k), ("search buffers", _SEARCH_BUFFER_BYTES)]
    if isinstance(params, HNSWParams):
        parts.append(("HNSW index", n_rows * (dim + 8.0 * params.M + 16)))
    return tuple(parts)


def knn_memory(n_rows: int, dim: int, k: int = 10, *, method: Method = "auto") -> MemoryEstimate:
    """The estimated peak memory of :func:`knn_graph` of a set of ``n_rows`` x ``dim`` read with ``load`` and
    written as a graph table (``embedlab knn``)."""
    return job_estimate(
        f"the kNN graph of {n_rows:,} x {dim}",
        *reading_memory(n_rows, dim),
        *graph_memory(n_rows, dim, k, method=method),
        ("graph table", _GRAPH_TABLE_ROW_BYTES * n_rows * k),
    )


def knn(
    X: object,
    k: int = 10,
    *,
    queries: object | None = None,
    query_rows: np.ndarray | None = None,
    searchable: np.ndarray | None = None,
    metric: Metric = "cosine",
    method: Method | SearchParams = "auto",
    exclude_self: bool | None = None,
    recall_sample: int = 1000,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> KnnResult:
    """Find the ``k`` nearest rows of ``X`` for each query, with faiss: the convenience entry to the searchers.

    Parameters
    ----------
    X : array-like of shape (n, d) or Rows
        The searched set.
    k : int, default=10
        Neighbours per query.
    queries : array-like of shape (m, d), optional
        Query vectors; by default ``X`` itself, each row's own match removed.
    query_rows : array-like of int, optional
        Search only these rows of ``X`` (each without its own match), for estimators that average over a
        sample of points but need their neighbours among all of them. Excludes ``queries``.
    searchable : array-like of bool of shape (n,), optional
        Rows that may be returned as neighbours (all by default), for instance one row of each group of exact
        duplicates. Queries may still be any rows.
    metric : {"cosine", "l2", "ip"}, default="cosine"
        Cosine is inner product on unit-normalised copies of the vectors.
    method : {"auto", "exact", "hnsw", "ivf", "ivfpq"} or SearchParams, default="auto"
        A name takes that index's default parameters (:class:`HNSWParams`, :class:`IVFParams`, ...); give the
        parameters themselves to set them. ``"auto"`` searches exactly while queries x rows <=
        ``AUTO_EXACT_MAX_PAIRS`` and uses HNSW beyond.
    exclude_self : bool, optional
        Remove each query's own row from its results; defaults to True exactly when ``queries`` is None.
    recall_sample : int, default=1000
        For approximate methods, queries on which recall@k against exact search is measured and reported
        (0 to skip).
    random_state : int or None, default=0
        Seed for index training and the recall sample.
    progress : ProgressReporter, optional
        Receives index building and search progress.

    Returns
    -------
    KnnResult
        Distances ascending; see :class:`KnnResult` for the distance of each metric.

    Raises
    ------
    EmbeddingDataError
        On invalid vectors (NaN/Inf, zero vectors under cosine, dimension mismatch).
    ConfigurationError
        On an unknown metric or method, or ``k`` larger than the neighbours available.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [0.0, 2.0], [3.0, 6.0]])
    >>> result = knn(X, k=1, metric="l2")
    >>> result.indices[:, 0].tolist(), result.distances[:, 0].tolist()
    ([1, 0, 1], [1.0, 1.0, 5.0])
    >>> knn(X, k=1, method=HNSWParams(M=8, storage="flat"), metric="l2").params.ef_search
    32
    """
    check_choice(metric, "metric", METRICS)
    if queries is not None and query_rows is not None:
        raise ConfigurationError("pass either queries or query_rows, not both.")
    recall_sample = check_int(recall_sample, "recall_sample", 0)
    self_query = queries is None
    exclude = self_query if exclude_self is None else bool(exclude_self)
    base = prepare(X, metric, min_rows=2 if exclude else 1)
    n = base.n
    rows = np.arange(n, dtype=np.int64) if query_rows is None else np.asarray(query_rows, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n)):
        raise ConfigurationError(f"query_rows must be row positions of X, between 0 and {n - 1}.")
    if self_query:
        query_vectors = base if query_rows is None else base.take(rows)
    else:
        query_vectors = prepare(queries, metric, name="queries", dim=base.dim)
        if exclude and query_vectors.n != n:
            raise ConfigurationError("exclude_self=True needs queries to be the rows of X, in order.")
    exact = ExactSearcher(base, metric, searchable=searchable)
    params = search_params(method, query_vectors.n, exact.n_searchable)
    rng = np.random.default_rng(random_state)
    searcher: BaseSearcher = exact
    if not isinstance(params, ExactParams):
        searcher = FaissSearcher.build(base, params, metric, searchable=searchable, random_state=rng, progress=progress)
    excluded = rows if exclude else None
    result = searcher.search(query_vectors, k, exclude=excluded, progress=progress)
    del searcher  # frees the index before the recall is measured
    if result.method != "exact" and recall_sample > 0:
        picked = np.sort(rng.choice(len(result), size=min(recall_sample, len(result)), replace=False))
        truth = exact.search(query_vectors.take(picked), k, exclude=None if excluded is None else excluded[picked])
        recall = recall_at_k(result.distances[picked], truth.distances)
        logger.info("%s search: recall@%d = %.4f on %d sampled queries", result.method, k, recall, picked.size)
        result = replace(result, recall=recall, recall_sample=int(picked.size))
    return result


def knn_graph(
    emb: EmbeddingSet,
    k: int = 10,
    *,
    metric: Metric = "cosine",
    method: Method | SearchParams = "auto",
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> KnnResult:
    """The kNN graph of an EmbeddingSet (each row against the others), computed once and cached on the set.

    A later call with the same metric, method (or parameters) and seed and a ``k`` no larger than a cached
    graph's returns the first ``k`` columns of that graph without searching again.

    Parameters
    ----------
    emb : EmbeddingSet
    k : int, default=10
    metric, method, random_state, progress
        As for :func:`knn`.

    Returns
    -------
    KnnResult

    Examples
    --------
    >>> import numpy as np
    >>> emb = EmbeddingSet(np.random.default_rng(0).normal(size=(50, 8)))
    >>> knn_graph(emb, k=5) is not None and knn_graph(emb, k=3).k
    3
    """
    key = ("knn_graph", metric, method, random_state)
    cached: KnnResult | None = emb.cache.get(key)
    if cached is not None and cached.k >= k:
        return cached if cached.k == k else cached.head(k)
    result = knn(emb.vectors, k, metric=metric, method=method, random_state=random_state, progress=progress)
    emb.cache[key] = result
    return result
