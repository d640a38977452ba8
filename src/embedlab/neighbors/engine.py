"""The one nearest-neighbour engine, on faiss: exact, HNSW and IVF search, self-match removal, recall.

Every module that needs neighbours calls :func:`knn` (arrays) or :func:`knn_graph` (an EmbeddingSet, cached),
so metric handling, block-wise search and the ``(distances, indices)`` convention live here only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Literal

import faiss
import numpy as np

from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError
from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.validation import check_k, check_vectors
from embedlab.neighbors.evaluation import recall_at_k
from embedlab.neighbors.result import KnnResult

__all__ = ["AUTO_EXACT_MAX_PAIRS", "Method", "Metric", "knn", "knn_graph"]

logger = logging.getLogger(__name__)

Metric = Literal["cosine", "l2", "ip"]
Method = Literal["auto", "exact", "hnsw", "ivf"]

#: ``method="auto"`` searches exactly while queries x rows stays under this (1e10 pairs at d=384 took 54 s on
#: 2 cores in benchmarks/bench_knn.py, so this bound is about 14 s).
AUTO_EXACT_MAX_PAIRS = 2_500_000_000
_METRICS = ("cosine", "l2", "ip")
_EXACT_L2_BLOCK_FLOATS = 2**24
_METHODS = ("auto", "exact", "hnsw", "ivf")


def _prepare(X: np.ndarray, metric: Metric) -> np.ndarray:
    """Unit-normalise rows for cosine (a copy, unless they already are); other metrics use them as they are."""
    if metric != "cosine":
        return X
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.abs(norms - 1.0).max() <= 1e-6:
        return X
    return np.ascontiguousarray(X / norms, dtype=np.float32)


def _faiss_metric(metric: Metric) -> int:
    return faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT


def _to_distances(scores: np.ndarray, indices: np.ndarray, metric: Metric) -> np.ndarray:
    """faiss scores -> ascending distances in the KnnResult convention; inf where no neighbour was found."""
    if metric == "l2":
        distances = np.sqrt(np.maximum(scores, 0.0))
    elif metric == "cosine":
        distances = np.maximum(1.0 - scores, 0.0)
    else:
        distances = -scores
    distances = distances.astype(np.float32, copy=False)
    distances[indices < 0] = np.inf
    return distances


def _build_index(
    base: np.ndarray,
    metric: Metric,
    method: str,
    params: dict,
    rng: np.random.Generator,
    progress: ProgressReporter,
) -> faiss.Index:
    n, d = base.shape
    fmetric = _faiss_metric(metric)
    if method == "hnsw":
        index = faiss.IndexHNSWFlat(d, params["M"], fmetric)
        index.hnsw.efConstruction = params["efConstruction"]
        index.hnsw.efSearch = params["efSearch"]
    else:
        quantizer = faiss.IndexFlat(d, fmetric)
        index = faiss.IndexIVFFlat(quantizer, d, params["nlist"], fmetric)
        index.cp.seed = int(rng.integers(2**31 - 1))
        n_train = min(n, params["nlist"] * 256)
        train = base if n_train == n else base[np.sort(rng.choice(n, n_train, replace=False))]
        index.train(train)
        index.nprobe = params["nprobe"]
    step = 65_536
    with progress.task(f"Building {method} index", n) as advance:
        for start in range(0, n, step):
            index.add(base[start : start + step])
            advance(min(step, n - start))
    return index


def _search(
    search: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    queries: np.ndarray,
    k: int,
    batch_size: int,
    progress: ProgressReporter,
    label: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``search`` over blocks of queries, filling one (scores, indices) pair of arrays."""
    n = queries.shape[0]
    scores = np.empty((n, k), dtype=np.float32)
    indices = np.empty((n, k), dtype=np.int64)
    with progress.task(label, n) as advance:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            scores[start:stop], indices[start:stop] = search(queries[start:stop])
            advance(stop - start)
    return scores, indices


def _exact(base: np.ndarray, metric: Metric, k: int) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Brute-force search of ``base`` with faiss's BLAS kernels, without copying it into an index."""
    return lambda block: faiss.knn(block, base, k, metric=_faiss_metric(metric))


def _exact_l2(
    base: np.ndarray, queries: np.ndarray, indices: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Recompute L2 distances of the found pairs from coordinate differences, and re-sort each row.

    faiss computes ||q||^2 + ||b||^2 - 2 q.b, which cancels catastrophically for close pairs (near neighbours
    come out at distance 0); estimators built on distance ratios (intrinsic dimension) need the small
    distances right.
    """
    distances = np.empty(indices.shape, dtype=np.float32)
    # The differences of a block are rows x k x d floats: keep them near 64 MB whatever k is.
    step = max(1, min(batch_size, _EXACT_L2_BLOCK_FLOATS // (indices.shape[1] * base.shape[1])))
    for start in range(0, len(indices), step):
        block = indices[start : start + step]
        found = block >= 0
        diffs = queries[start : start + len(block), None, :] - base[np.where(found, block, 0)]
        exact = np.sqrt(np.einsum("ijk,ijk->ij", diffs, diffs))
        distances[start : start + len(block)] = np.where(found, exact, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(indices, order, axis=1)


def _drop_self(scores: np.ndarray, indices: np.ndarray, self_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove query i's own row ``self_rows[i]`` from its k+1 results (the last result where it is absent)."""
    n, k1 = indices.shape
    is_self = indices == self_rows[:, None]
    is_self[~is_self.any(axis=1), k1 - 1] = True
    # A duplicate of the query may be returned before the query itself: only the first self-hit goes.
    keep = np.ones_like(is_self)
    keep[np.arange(n), np.argmax(is_self, axis=1)] = False
    return scores[keep].reshape(n, k1 - 1), indices[keep].reshape(n, k1 - 1)


def _resolve_params(
    method: str,
    n: int,
    k: int,
    *,
    hnsw_m: int,
    ef_construction: int,
    ef_search: int | None,
    nlist: int | None,
    nprobe: int | None,
) -> dict:
    if method == "hnsw":
        return {"M": hnsw_m, "efConstruction": ef_construction, "efSearch": max(ef_search or 4 * k, k, 32)}
    if method == "ivf":
        lists = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        if lists > n:
            raise ConfigurationError(f"nlist={lists} exceeds the {n} rows to index; use nlist <= {n}.")
        return {"nlist": lists, "nprobe": min(lists, nprobe or max(8, lists // 16))}
    return {}


def knn(
    X: object,
    k: int = 10,
    *,
    queries: object | None = None,
    query_rows: np.ndarray | None = None,
    metric: Metric = "cosine",
    method: Method = "auto",
    exclude_self: bool | None = None,
    recall_sample: int = 1000,
    random_state: int | None = 0,
    hnsw_m: int = 32,
    ef_construction: int = 80,
    ef_search: int | None = None,
    nlist: int | None = None,
    nprobe: int | None = None,
    batch_size: int = 16_384,
    progress: ProgressReporter = NULL_PROGRESS,
) -> KnnResult:
    """Find the ``k`` nearest rows of ``X`` for each query, with faiss.

    Parameters
    ----------
    X : array-like of shape (n, d)
        The searched set.
    k : int, default=10
        Neighbours per query.
    queries : array-like of shape (m, d), optional
        Query vectors; by default ``X`` itself, each row's own match removed.
    query_rows : array-like of int, optional
        Search only these rows of ``X`` (each without its own match), for estimators that average over a
        sample of points but need their neighbours among all of them. Excludes ``queries``.
    metric : {"cosine", "l2", "ip"}, default="cosine"
        Cosine is inner product on unit-normalised copies of the vectors.
    method : {"auto", "exact", "hnsw", "ivf"}, default="auto"
        ``"auto"`` searches exactly while queries x rows <= ``AUTO_EXACT_MAX_PAIRS`` and uses HNSW beyond.
    exclude_self : bool, optional
        Remove each query's own row from its results; defaults to True exactly when ``queries`` is None.
    recall_sample : int, default=1000
        For approximate methods, queries on which recall@k against exact search is measured and reported
        (0 to skip).
    random_state : int or None, default=0
        Seed for the recall sample and IVF training.
    hnsw_m, ef_construction, ef_search : int
        HNSW graph degree, build and search beam widths (``ef_search`` defaults to ``max(4k, 32)``).
    nlist, nprobe : int, optional
        IVF lists (default ``4 sqrt(n)``) and lists probed per query (default ``max(8, nlist/16)``).
    batch_size : int, default=16384
        Queries searched per block.
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
    """
    if metric not in _METRICS:
        raise ConfigurationError(f"metric must be one of {', '.join(_METRICS)}, got {metric!r}.")
    if method not in _METHODS:
        raise ConfigurationError(f"method must be one of {', '.join(_METHODS)}, got {method!r}.")
    if queries is not None and query_rows is not None:
        raise ConfigurationError("pass either queries or query_rows, not both.")
    self_query = queries is None
    exclude = self_query if exclude_self is None else bool(exclude_self)
    base, _, _ = check_vectors(X, name="X", allow_zero=metric != "cosine", min_rows=2 if exclude else 1)
    n, d = base.shape
    k = check_k(k, n, exclude_self=exclude)
    rows = np.arange(n, dtype=np.int64) if query_rows is None else np.asarray(query_rows, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n)):
        raise ConfigurationError(f"query_rows must be row positions of X, between 0 and {n - 1}.")
    if not self_query:
        query_vectors, _, _ = check_vectors(queries, name="queries", allow_zero=metric != "cosine")
        if query_vectors.shape[1] != d:
            raise ConfigurationError(f"queries have dimension {query_vectors.shape[1]} but X has dimension {d}.")
        if exclude and query_vectors.shape[0] != n:
            raise ConfigurationError("exclude_self=True needs queries to be the rows of X, in order.")
    rng = np.random.default_rng(random_state)
    base = _prepare(base, metric)
    if self_query:
        query_vectors = base if query_rows is None else base[rows]
    else:
        query_vectors = _prepare(query_vectors, metric)
    m = query_vectors.shape[0]
    chosen = method
    if method == "auto":
        chosen = "exact" if m * n <= AUTO_EXACT_MAX_PAIRS else "hnsw"
    k_search = k + 1 if exclude else k
    params = _resolve_params(
        chosen,
        n,
        k_search,
        hnsw_m=hnsw_m,
        ef_construction=ef_construction,
        ef_search=ef_search,
        nlist=nlist,
        nprobe=nprobe,
    )
    if chosen == "exact":
        search = _exact(base, metric, k_search)
    else:
        index = _build_index(base, metric, chosen, params, rng, progress)
        search = lambda block: index.search(block, k_search)  # noqa: E731
    scores, indices = _search(search, query_vectors, k_search, batch_size, progress, f"Searching ({chosen})")
    if exclude:
        scores, indices = _drop_self(scores, indices, rows)
    distances = _to_distances(scores, indices, metric)
    if metric == "l2":
        distances, indices = _exact_l2(base, query_vectors, indices, batch_size)
    recall, sample_size = 1.0, 0
    if chosen != "exact" and recall_sample > 0:
        recall, sample_size = _measure_recall(
            base, query_vectors, rows, distances, indices, k, exclude, metric, recall_sample, rng
        )
        logger.info("%s search: recall@%d = %.4f on %d sampled queries", chosen, k, recall, sample_size)
    elif chosen != "exact":
        recall = None
    return KnnResult(distances, indices, metric, chosen, recall, sample_size, params)


def _measure_recall(
    base: np.ndarray,
    queries: np.ndarray,
    rows: np.ndarray,
    distances: np.ndarray,
    indices: np.ndarray,
    k: int,
    exclude: bool,
    metric: Metric,
    sample: int,
    rng: np.random.Generator,
) -> tuple[float, int]:
    """Recall@k of an approximate result on a random sample of its queries, against exact search."""
    m = queries.shape[0]
    picked = np.sort(rng.choice(m, size=min(sample, m), replace=False))
    true_scores, true_indices = _exact(base, metric, k + 1 if exclude else k)(queries[picked])
    if exclude:
        true_scores, true_indices = _drop_self(true_scores, true_indices, rows[picked])
    true_distances = _to_distances(true_scores, true_indices, metric)
    return recall_at_k(distances[picked], true_distances), picked.size


def knn_graph(
    emb: EmbeddingSet,
    k: int = 10,
    *,
    metric: Metric = "cosine",
    method: Method = "auto",
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
    **search_params: object,
) -> KnnResult:
    """The kNN graph of an EmbeddingSet (each row against the others), computed once and cached on the set.

    A later call with the same metric, method and parameters and a ``k`` no larger than a cached graph's
    returns the first ``k`` columns of that graph without searching again.

    Parameters
    ----------
    emb : EmbeddingSet
    k : int, default=10
    metric, method, random_state, progress
        As for :func:`knn`.
    **search_params
        Further :func:`knn` parameters (``hnsw_m``, ``ef_search``, ``nlist``, ``nprobe``, ...).

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
    key = ("knn_graph", metric, method, random_state, tuple(sorted(search_params.items())))
    cached: KnnResult | None = emb.cache.get(key)
    if cached is not None and cached.k >= k:
        return cached if cached.k == k else cached.head(k)
    result = knn(
        emb.vectors,
        k,
        metric=metric,
        method=method,
        random_state=random_state,
        progress=progress,
        **search_params,
    )
    emb.cache[key] = result
    return result
