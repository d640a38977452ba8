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
from sklearn.utils.extmath import row_norms

from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError
from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.validation import check_k, check_vectors
from embedlab.neighbors.evaluation import recall_at_k
from embedlab.neighbors.result import KnnResult

__all__ = ["AUTO_EXACT_MAX_PAIRS", "Method", "Metric", "knn", "knn_graph", "unit_rows"]

logger = logging.getLogger(__name__)

Metric = Literal["cosine", "l2", "ip"]
Method = Literal["auto", "exact", "hnsw", "ivf"]

#: ``method="auto"`` searches exactly while queries x rows stays under this (1e10 pairs at d=384 took 54 s on
#: 2 cores in benchmarks/bench_knn.py, so this bound is about 14 s).
AUTO_EXACT_MAX_PAIRS = 2_500_000_000
_METRICS = ("cosine", "l2", "ip")
_METHODS = ("auto", "exact", "hnsw", "ivf")
_STORAGES = ("sq8", "flat")
#: Gathered neighbour vectors per block of exact re-ranking (16 MB of float32).
_RERANK_BLOCK_FLOATS = 2**22
#: With at most this many rows left out of ``searchable``, exact search fetches that many extra neighbours and
#: filters them out; with more, it searches the searchable rows block by block.
_MAX_FILTERED_ROWS = 256
#: Searchable rows copied per block when many rows are hidden from exact search (16 MB of float32).
_SUBSET_BLOCK_FLOATS = 2**22
#: Rows sampled to train the 8-bit scalar quantizer of an HNSW index (its per-dimension ranges).
_SQ_TRAIN_ROWS = 16_384

Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm, as float32: ``X`` itself when they already are, else a copy.

    Cosine geometry everywhere in embedlab (search, spherical k-means) works on these rows. Assumes no zero
    rows (validated input).

    Examples
    --------
    >>> unit_rows(np.array([[3.0, 4.0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    norms = row_norms(X)[:, None]  # no n x d temporary, unlike np.linalg.norm
    if np.abs(norms - 1.0).max() <= 1e-6:
        return X
    return np.ascontiguousarray(X / norms, dtype=np.float32)


def _prepare(X: np.ndarray, metric: Metric) -> np.ndarray:
    """Unit-normalise rows for cosine; other metrics use them as they are."""
    return unit_rows(X) if metric == "cosine" else X


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
    positions: np.ndarray | None,
    metric: Metric,
    method: str,
    params: dict,
    rng: np.random.Generator,
    progress: ProgressReporter,
) -> faiss.Index:
    """An HNSW or IVF index of the rows ``positions`` of ``base`` (all rows when None), added block by block."""
    d = base.shape[1]
    n = base.shape[0] if positions is None else positions.size
    fmetric = _faiss_metric(metric)
    sq8 = params["storage"] == "sq8"
    if method == "hnsw":
        if sq8:
            index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, params["M"], fmetric)
        else:
            index = faiss.IndexHNSWFlat(d, params["M"], fmetric)
        index.hnsw.efConstruction = params["efConstruction"]
        index.hnsw.efSearch = params["efSearch"]
        n_train = min(n, _SQ_TRAIN_ROWS)
    else:
        quantizer = faiss.IndexFlat(d, fmetric)
        if sq8:
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, params["nlist"], faiss.ScalarQuantizer.QT_8bit, fmetric)
        else:
            index = faiss.IndexIVFFlat(quantizer, d, params["nlist"], fmetric)
        index.cp.seed = int(rng.integers(2**31 - 1))
        index.nprobe = params["nprobe"]
        n_train = min(n, params["nlist"] * 256)
    if not index.is_trained:
        chosen = np.sort(rng.choice(n, n_train, replace=False))
        index.train(base[chosen if positions is None else positions[chosen]])
    step = 65_536
    with progress.task(f"Building {method} index", n) as advance:
        for start in range(0, n, step):
            rows = slice(start, start + step) if positions is None else positions[start : start + step]
            index.add(base[rows])
            advance(min(step, n - start))
    return index


def _search(
    search: Search,
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
            scores[start:stop], indices[start:stop] = search(queries[start:stop], k)
            advance(stop - start)
    return scores, indices


def _to_rows(indices: np.ndarray, positions: np.ndarray | None) -> np.ndarray:
    """Map positions in a searched subset back to row numbers, keeping -1 (missing)."""
    if positions is None:
        return indices
    return np.where(indices >= 0, positions[np.maximum(indices, 0)], -1)


def _exact(base: np.ndarray, metric: Metric, hidden: np.ndarray) -> Search:
    """Brute-force search of ``base`` with faiss's BLAS kernels, never returning the ``hidden`` rows.

    The rows are not copied into an index. A few hidden rows are fetched and filtered out; with many, the
    searchable rows are searched block by block, each block copied in turn.
    """
    fmetric = _faiss_metric(metric)
    if hidden.size == 0:
        return lambda block, k: faiss.knn(block, base, k, metric=fmetric)
    if hidden.size <= _MAX_FILTERED_ROWS:
        searchable = np.ones(base.shape[0], dtype=bool)
        searchable[hidden] = False

        def search_filtered(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            scores, indices = faiss.knn(block, base, k + hidden.size, metric=fmetric)
            # Missing results (-1) sort last either way; hidden rows move behind every searchable one.
            order = np.argsort(~((indices < 0) | searchable[np.maximum(indices, 0)]), axis=1, kind="stable")[:, :k]
            return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)

        return search_filtered
    positions = np.delete(np.arange(base.shape[0]), hidden)
    step = max(1, _SUBSET_BLOCK_FLOATS // base.shape[1])

    def search_subset(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # The searchable rows are copied a block at a time, and the blocks' results merged.
        heap = faiss.ResultHeap(block.shape[0], k, keep_max=fmetric == faiss.METRIC_INNER_PRODUCT)
        for start in range(0, positions.size, step):
            rows = positions[start : start + step]
            scores, indices = faiss.knn(block, base[rows], min(k, rows.size), metric=fmetric)
            heap.add_result(scores, _to_rows(indices, rows))
        heap.finalize()
        return heap.D, heap.I

    return search_subset


def _index_search(index: faiss.Index, positions: np.ndarray | None) -> Search:
    """Search an index built on the rows ``positions`` (all when None), answering in row numbers."""

    def search(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, indices = index.search(block, k)
        return scores, _to_rows(indices, positions)

    return search


def _rerank(
    base: np.ndarray, queries: np.ndarray, indices: np.ndarray, metric: Metric, k: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances of the candidate pairs; each row re-sorted by them and cut to ``k`` columns.

    Corrects the distances of a compressed index, and for L2 those of faiss itself: faiss computes
    ||q||^2 + ||b||^2 - 2 q.b, which cancels catastrophically for close pairs (near neighbours come out at
    distance 0), while estimators built on distance ratios (intrinsic dimension) need the small distances
    right. L2 is therefore computed from coordinate differences.
    """
    distances = np.empty(indices.shape, dtype=np.float32)
    step = max(1, min(batch_size, _RERANK_BLOCK_FLOATS // (indices.shape[1] * base.shape[1])))
    for start in range(0, len(indices), step):
        block = indices[start : start + step]
        found = block >= 0
        neighbours = base[np.where(found, block, 0)]
        block_queries = queries[start : start + len(block)]
        if metric == "l2":
            neighbours -= block_queries[:, None, :]
            exact = np.sqrt(np.einsum("ijk,ijk->ij", neighbours, neighbours))
        else:
            dots = np.einsum("ijk,ik->ij", neighbours, block_queries)
            exact = np.maximum(1.0 - dots, 0.0) if metric == "cosine" else -dots
        distances[start : start + len(block)] = np.where(found, exact, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
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
    k_fetch: int,
    *,
    storage: str,
    hnsw_m: int,
    ef_construction: int,
    ef_search: int | None,
    nlist: int | None,
    nprobe: int | None,
) -> dict:
    """Index parameters of an approximate method; ``k`` neighbours wanted, ``k_fetch`` candidates fetched."""
    if method == "hnsw":
        return {
            "M": hnsw_m,
            "efConstruction": ef_construction,
            "efSearch": max(ef_search or 4 * k, k_fetch, 32),
            "storage": storage,
            "candidates": k_fetch,
        }
    if method == "ivf":
        lists = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        if lists > n:
            raise ConfigurationError(f"nlist={lists} exceeds the {n} rows to index; use nlist <= {n}.")
        return {
            "nlist": lists,
            "nprobe": min(lists, nprobe or max(8, lists // 16)),
            "storage": storage,
            "candidates": k_fetch,
        }
    return {}


def knn(
    X: object,
    k: int = 10,
    *,
    queries: object | None = None,
    query_rows: np.ndarray | None = None,
    searchable: np.ndarray | None = None,
    metric: Metric = "cosine",
    method: Method = "auto",
    exclude_self: bool | None = None,
    recall_sample: int = 1000,
    random_state: int | None = 0,
    storage: Literal["sq8", "flat"] = "sq8",
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
    searchable : array-like of bool of shape (n,), optional
        Rows that may be returned as neighbours (all by default), for instance one row of each group of exact
        duplicates. Queries may still be any rows.
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
        Seed for the recall sample and index training.
    storage : {"sq8", "flat"}, default="sq8"
        How an HNSW or IVF index stores the vectors. ``"sq8"`` keeps one byte per dimension (a quarter of the
        memory, and faster on CPU); twice the needed candidates are fetched from it and re-ranked by their
        exact distances, which keeps recall at that of ``"flat"`` (full float32 copies).
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
    if storage not in _STORAGES:
        raise ConfigurationError(f"storage must be one of {', '.join(_STORAGES)}, got {storage!r}.")
    if queries is not None and query_rows is not None:
        raise ConfigurationError("pass either queries or query_rows, not both.")
    self_query = queries is None
    exclude = self_query if exclude_self is None else bool(exclude_self)
    base, _, _ = check_vectors(X, name="X", allow_zero=metric != "cosine", min_rows=2 if exclude else 1)
    n, d = base.shape
    hidden = _hidden_rows(searchable, n)
    k = check_k(k, n - hidden.size, exclude_self=exclude)
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
        chosen = "exact" if m * (n - hidden.size) <= AUTO_EXACT_MAX_PAIRS else "hnsw"
    k_search = k + 1 if exclude else k
    compressed = chosen != "exact" and storage == "sq8"
    k_fetch = min(2 * k_search, n) if compressed else k_search
    params = _resolve_params(
        chosen,
        n - hidden.size,
        k_search,
        k_fetch,
        storage=storage,
        hnsw_m=hnsw_m,
        ef_construction=ef_construction,
        ef_search=ef_search,
        nlist=nlist,
        nprobe=nprobe,
    )
    exact = _exact(base, metric, hidden)
    if chosen == "exact":
        search = exact
    else:
        positions = None if hidden.size == 0 else np.delete(np.arange(n), hidden)
        search = _index_search(_build_index(base, positions, metric, chosen, params, rng, progress), positions)
    scores, indices = _search(search, query_vectors, k_fetch, batch_size, progress, f"Searching ({chosen})")
    del search  # frees the index before the results are re-ranked
    if exclude:
        scores, indices = _drop_self(scores, indices, rows)
    if metric == "l2" or compressed:
        distances, indices = _rerank(base, query_vectors, indices, metric, k, batch_size)
    else:
        distances = _to_distances(scores, indices, metric)
    recall, sample_size = 1.0, 0
    if chosen != "exact" and recall_sample > 0:
        recall, sample_size = _measure_recall(
            exact, query_vectors, rows, distances, indices, k, exclude, metric, recall_sample, rng
        )
        logger.info("%s search: recall@%d = %.4f on %d sampled queries", chosen, k, recall, sample_size)
    elif chosen != "exact":
        recall = None
    return KnnResult(distances, indices, metric, chosen, recall, sample_size, params)


def _hidden_rows(searchable: np.ndarray | None, n: int) -> np.ndarray:
    """Positions of the rows a search must not return, from a boolean ``searchable`` mask (None: none)."""
    if searchable is None:
        return np.empty(0, dtype=np.int64)
    mask = np.asarray(searchable)
    if mask.dtype != bool or mask.shape != (n,):
        raise ConfigurationError(f"searchable must be a boolean mask with one entry per row of X ({n}).")
    return np.flatnonzero(~mask)


def _measure_recall(
    exact: Search,
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
    true_scores, true_indices = exact(queries[picked], k + 1 if exclude else k)
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
