"""The Searcher protocol, and the searches of the neighbour engine on faiss: exact, HNSW, IVF and IVF-PQ.

Every search in embedlab answers through ``Searcher.search(queries, k, *, exclude=None) -> KnnResult``, in
the spirit of faiss's ``DatasetAssign``: a caller does not care where the rows live or how they are indexed.
Re-ranking by exact distance (:func:`rerank`), the merging of blocks (:func:`merge_top_k`) and the exclusion
of given rows (a query's own row) are written here once and shared by every searcher, the codecs' included.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Protocol, runtime_checkable

import faiss
import numpy as np

from embedlab._checks import check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError
from embedlab.io.validation import Metric, check_k, prepare
from embedlab.neighbors.params import ExactParams, HNSWParams, IVFParams, IVFPQParams, SearchParams
from embedlab.neighbors.result import KnnResult

__all__ = [
    "BaseSearcher",
    "ExactSearcher",
    "FaissSearcher",
    "Searcher",
    "merge_top_k",
    "refine_l2",
    "rerank",
    "to_distances",
]

logger = logging.getLogger(__name__)

#: Gathered candidate vectors per block of exact re-ranking (16 MB of float32).
_RERANK_BLOCK_FLOATS = 2**22
#: With at most this many rows left out of ``searchable``, exact search fetches that many extra neighbours and
#: filters them out; with more, it searches the searchable rows block by block.
_MAX_FILTERED_ROWS = 256
#: Searchable rows copied per block when many rows are hidden from exact search (16 MB of float32).
_SUBSET_BLOCK_FLOATS = 2**22
#: Rows sampled to train the 8-bit scalar quantizer of an HNSW index (its per-dimension ranges).
_SQ_TRAIN_ROWS = 16_384
#: Rows added to a faiss index per call.
_ADD_ROWS = 65_536
#: faiss's squared L2, ||q||^2 + ||x||^2 - 2 q.x in float32, is recomputed from coordinate differences where it
#: is below this fraction of ||q||^2 + ||x||^2: elsewhere its relative error is under 1e-5.
_CANCELLATION = 1e-2

BlockSearch = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


@runtime_checkable
class Searcher(Protocol):
    """What every index, codec, shard and multi-vector encoder of embedlab offers: the k nearest rows.

    ``search`` validates the queries for the searcher's ``metric`` and ``dim``, never returns a query's
    ``exclude`` rows, and answers in the :class:`KnnResult` convention (distances ascending, row positions).
    """

    @property
    def metric(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def search(self, queries: object, k: int, *, exclude: np.ndarray | None = None) -> KnnResult: ...


def to_distances(scores: np.ndarray, indices: np.ndarray, metric: str) -> np.ndarray:
    """faiss scores (squared L2, or inner products) -> ascending distances in the KnnResult convention.

    ``inf`` where no neighbour was found (index -1).
    """
    if metric == "l2":
        distances = np.sqrt(np.maximum(scores, 0.0))
    elif metric == "cosine":
        distances = np.maximum(1.0 - scores, 0.0)
    else:
        distances = -scores
    distances = distances.astype(np.float32, copy=False)
    distances[indices < 0] = np.inf
    return distances


def rerank(
    vectors: np.ndarray, queries: np.ndarray, candidates: np.ndarray, metric: str, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances of the candidate rows of each query, re-sorted ascending and cut to ``k`` columns.

    Corrects the distances of a compressed index, and for L2 those of faiss itself: faiss computes
    ||q||^2 + ||b||^2 - 2 q.b, which cancels catastrophically for close pairs (near neighbours come out at
    distance 0), while estimators built on distance ratios (intrinsic dimension) need the small distances
    right. L2 is therefore computed from coordinate differences. The candidates of a block are read once each,
    in ascending order, which keeps reads from a memory-mapped ``vectors`` sequential.

    Parameters
    ----------
    vectors : numpy.ndarray of shape (n, d)
        The searched rows, prepared for ``metric`` (in memory or memory-mapped).
    queries : numpy.ndarray of shape (m, d)
        Prepared queries.
    candidates : numpy.ndarray of shape (m, c), int64
        Row positions; -1 for none (sorted last, at distance ``inf``).
    metric : {"cosine", "l2", "ip"}
    k : int
        Columns kept.

    Returns
    -------
    distances : numpy.ndarray of shape (m, min(k, c)), float32
    indices : numpy.ndarray of shape (m, min(k, c)), int64

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], dtype=np.float32)
    >>> distances, indices = rerank(X, X[:1], np.array([[2, 1, -1]]), "l2", 2)
    >>> distances.tolist(), indices.tolist()
    ([[1.0, 3.0]], [[1, 2]])
    """
    distances = np.empty(candidates.shape, dtype=np.float32)
    per_block = max(1, _RERANK_BLOCK_FLOATS // max(candidates.shape[1] * queries.shape[1], 1))
    for start in range(0, candidates.shape[0], per_block):
        block = candidates[start : start + per_block]
        found = block >= 0
        unique, inverse = np.unique(np.where(found, block, 0), return_inverse=True)
        gathered = np.asarray(vectors[unique], dtype=np.float32)[inverse.reshape(block.shape)]
        block_queries = queries[start : start + per_block]
        if metric == "l2":
            gathered -= block_queries[:, None, :]
            exact = np.sqrt(np.einsum("qcd,qcd->qc", gathered, gathered))
        else:
            dots = np.einsum("qcd,qd->qc", gathered, block_queries)
            exact = np.maximum(1.0 - dots, 0.0) if metric == "cosine" else -dots
        distances[start : start + per_block] = np.where(found, exact, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(candidates, order, axis=1)


def refine_l2(
    vectors: np.ndarray, squared_norms: np.ndarray, queries: np.ndarray, squared: np.ndarray, indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances from faiss's squared ones, recomputed exactly only where the expansion cancels.

    faiss computes ||q||^2 + ||x||^2 - 2 q.x in float32, whose absolute error is about 1e-7 (||q||^2 + ||x||^2):
    negligible for most pairs, ruinous for near duplicates (they come out at distance 0). Pairs whose squared
    distance is below ``_CANCELLATION`` of that sum are recomputed from coordinate differences and their rows
    re-sorted; the rest keep faiss's value. The same answer as :func:`rerank` to about 1e-5 at a fraction of
    its reads.

    Parameters
    ----------
    vectors : numpy.ndarray of shape (n, d)
    squared_norms : numpy.ndarray of shape (n,)
        ``||x||^2`` of every row.
    queries : numpy.ndarray of shape (m, d)
    squared : numpy.ndarray of shape (m, k)
        faiss's squared distances, ascending.
    indices : numpy.ndarray of shape (m, k)
        Row positions, -1 for none.

    Examples
    --------
    >>> X = np.array([[1000.0, 0.0], [1000.0, 0.001]], dtype=np.float32)
    >>> distances, _ = refine_l2(X, (X**2).sum(1), X[:1], np.array([[0.0, 0.0]], np.float32), np.array([[0, 1]]))
    >>> [round(float(value), 4) for value in distances[0]]
    [0.0, 0.001]
    """
    found = indices >= 0
    total = np.einsum("ij,ij->i", queries, queries)[:, None] + squared_norms[np.maximum(indices, 0)]
    risky = found & (squared < _CANCELLATION * total)
    distances = np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
    indices = indices.copy()
    if risky.any():
        rows, columns = np.nonzero(risky)
        differences = np.asarray(vectors[indices[rows, columns]], dtype=np.float32) - queries[rows]
        distances[rows, columns] = np.sqrt(np.einsum("ij,ij->i", differences, differences))
        touched = np.unique(rows)
        order = np.argsort(distances[touched], axis=1, kind="stable")
        distances[touched] = np.take_along_axis(distances[touched], order, axis=1)
        indices[touched] = np.take_along_axis(indices[touched], order, axis=1)
    distances[indices < 0] = np.inf
    return distances, indices


def merge_top_k(
    blocks: Iterable[tuple[np.ndarray, np.ndarray]], n_queries: int, k: int, *, largest: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of every query over blocks of (scores, row positions), merged in one faiss heap.

    ``largest`` keeps the highest scores (similarities), else the lowest (distances). Returns scores and
    positions of shape (n_queries, k), best first; -1 positions where fewer than k were seen.
    """
    heap = faiss.ResultHeap(n_queries, k, keep_max=largest)
    for scores, positions in blocks:
        heap.add_result(np.ascontiguousarray(scores, dtype=np.float32), np.ascontiguousarray(positions, np.int64))
    heap.finalize()
    return heap.D, heap.I


def _keep_first(
    distances: np.ndarray, indices: np.ndarray, dropped: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` entries of each row that are not ``dropped`` (dropped ones move behind all others)."""
    order = np.argsort(dropped, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(indices, order, axis=1)


def _check_exclude(exclude: np.ndarray | None, n_queries: int, n_rows: int) -> np.ndarray:
    """``exclude`` as an (n_queries, e) int64 array of row positions, -1 for none (e = 0 without exclusions)."""
    if exclude is None:
        return np.empty((n_queries, 0), dtype=np.int64)
    rows = np.asarray(exclude)
    if rows.ndim == 1:
        rows = rows[:, None]
    if rows.ndim != 2 or rows.shape[0] != n_queries or not np.issubdtype(rows.dtype, np.integer):
        raise ConfigurationError(
            f"exclude must hold integer row positions, one row (or one list of rows) per query: {n_queries} "
            f"queries, got shape {rows.shape} of {rows.dtype}."
        )
    if rows.size and (rows.min() < -1 or rows.max() >= n_rows):
        raise ConfigurationError(f"exclude holds positions outside the {n_rows} searched rows (-1 means none).")
    return rows.astype(np.int64, copy=False)


class BaseSearcher(ABC):
    """What every searcher shares: query validation, the check of ``k``, blocks of queries, exclusions.

    Subclasses implement :meth:`_search_block` (a block of prepared queries -> ascending distances and
    positions) and :attr:`params`; they set ``metric``, ``dim``, ``n_rows`` (rows, positions range over them)
    and ``n_searchable`` (rows a search may return).
    """

    metric: Metric
    dim: int
    n_rows: int
    n_searchable: int
    batch_size: int = 16_384
    #: Whether the distances are exact (False for compressed codes without re-ranking).
    exact_distances: bool = True

    def __len__(self) -> int:
        return self.n_rows

    @property
    @abstractmethod
    def params(self) -> SearchParams:
        """The search parameters as configured (unset fields resolved per search)."""

    def resolved_params(self, k: int) -> SearchParams:
        """The parameters a search for ``k`` neighbours runs with, every field filled in."""
        return self.params.resolve(self.n_searchable, k, self.dim)

    @abstractmethod
    def _search_block(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances (ascending, float32) and positions (int64, -1 for none) of the ``k`` nearest rows."""

    def search(
        self,
        queries: object,
        k: int,
        *,
        exclude: np.ndarray | None = None,
        progress: ProgressReporter = NULL_PROGRESS,
    ) -> KnnResult:
        """The ``k`` nearest rows of each query.

        Parameters
        ----------
        queries : array-like of shape (m, d) or Rows
            Validated (and normalised under cosine) here unless they are already Rows for this metric.
        k : int
        exclude : array-like of int of shape (m,) or (m, e), optional
            Rows never returned for each query (its own row in a kNN graph); -1 entries are ignored.
        progress : ProgressReporter, optional

        Returns
        -------
        KnnResult
            With the resolved parameters; ``recall`` is 1.0 for exact search and None otherwise (not measured).
        """
        Q = prepare(queries, self.metric, name="queries", dim=self.dim)
        banned = _check_exclude(exclude, Q.n, self.n_rows)
        n_banned = banned.shape[1]
        if n_banned <= 1:
            k = check_k(k, self.n_searchable, exclude_self=n_banned == 1)
        else:
            k = check_int(k, "k", maximum=self.n_searchable - n_banned, why="rows left after the exclusions")
        wanted = min(k + n_banned, self.n_searchable)
        distances = np.empty((Q.n, wanted), dtype=np.float32)
        indices = np.empty((Q.n, wanted), dtype=np.int64)
        with progress.task(f"Searching ({self.params.method})", Q.n) as advance:
            for start in range(0, Q.n, self.batch_size):
                stop = min(start + self.batch_size, Q.n)
                distances[start:stop], indices[start:stop] = self._search_block(Q.vectors[start:stop], wanted)
                advance(stop - start)
        if n_banned:
            hit = (indices[:, :, None] == banned[:, None, :]).any(axis=2) & (indices >= 0)
            distances, indices = _keep_first(distances, indices, hit, k)
        exact = isinstance(self.params, ExactParams)
        return KnnResult(
            distances,
            indices,
            self.metric,
            self.resolved_params(wanted),
            recall=1.0 if exact else None,
            exact_distances=self.exact_distances,
        )


def _hidden_rows(searchable: np.ndarray | None, n: int) -> np.ndarray:
    """Positions of the rows a search must not return, from a boolean ``searchable`` mask (None: none)."""
    if searchable is None:
        return np.empty(0, dtype=np.int64)
    mask = np.asarray(searchable)
    if mask.dtype != bool or mask.shape != (n,):
        raise ConfigurationError(f"searchable must be a boolean mask with one entry per row of X ({n}).")
    return np.flatnonzero(~mask)


def _to_rows(indices: np.ndarray, positions: np.ndarray | None) -> np.ndarray:
    """Map positions in a searched subset back to row numbers, keeping -1 (missing)."""
    if positions is None:
        return indices
    return np.where(indices >= 0, positions[np.maximum(indices, 0)], -1)


def _faiss_metric(metric: str) -> int:
    return faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT


class ExactSearcher(BaseSearcher):
    """Brute-force search with faiss's BLAS kernels, never returning the rows outside ``searchable``.

    The rows are not copied into an index. A few hidden rows are fetched and filtered out; with many, the
    searchable rows are searched block by block, each block copied in turn. L2 distances are recomputed from
    coordinate differences (see :func:`rerank`).

    Parameters
    ----------
    X : array-like of shape (n, d) or Rows
    metric : {"cosine", "l2", "ip"}, default="cosine"
    searchable : array-like of bool of shape (n,), optional
        Rows that may be returned (all by default).

    Examples
    --------
    >>> X = np.array([[0.0, 1.0], [0.0, 2.0], [3.0, 6.0]])
    >>> ExactSearcher(X, "l2").search(X, 1, exclude=np.arange(3)).indices.ravel().tolist()
    [1, 0, 1]
    """

    def __init__(self, X: object, metric: Metric = "cosine", *, searchable: np.ndarray | None = None) -> None:
        rows = prepare(X, metric)
        self.rows = rows
        self.metric, self.dim, self.n_rows = rows.metric, rows.dim, rows.n
        self.hidden = _hidden_rows(searchable, rows.n)
        self.n_searchable = rows.n - self.hidden.size
        if self.n_searchable < 1:
            raise ConfigurationError("searchable hides every row; at least one row must be searchable.")
        self._scores = self._scorer()

    @property
    def params(self) -> ExactParams:
        return ExactParams()

    def _scorer(self) -> BlockSearch:
        base, fmetric, hidden = self.rows.vectors, _faiss_metric(self.metric), self.hidden
        if hidden.size == 0:
            return lambda block, k: faiss.knn(block, base, k, metric=fmetric)
        if hidden.size <= _MAX_FILTERED_ROWS:
            searchable = np.ones(base.shape[0], dtype=bool)
            searchable[hidden] = False

            def search_filtered(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
                scores, indices = faiss.knn(block, base, k + hidden.size, metric=fmetric)
                return _keep_first(scores, indices, (indices >= 0) & ~searchable[np.maximum(indices, 0)], k)

            return search_filtered
        positions = np.delete(np.arange(base.shape[0]), hidden)
        step = max(1, _SUBSET_BLOCK_FLOATS // base.shape[1])

        def search_subset(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            def blocks() -> Iterable[tuple[np.ndarray, np.ndarray]]:
                for start in range(0, positions.size, step):  # the searchable rows, copied a block at a time
                    rows = positions[start : start + step]
                    scores, indices = faiss.knn(block, base[rows], min(k, rows.size), metric=fmetric)
                    yield scores, _to_rows(indices, rows)

            return merge_top_k(blocks(), block.shape[0], k, largest=fmetric == faiss.METRIC_INNER_PRODUCT)

        return search_subset

    def _search_block(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, indices = self._scores(queries, k)
        if self.metric == "l2":
            return rerank(self.rows.vectors, queries, indices, "l2", k)
        return to_distances(scores, indices, self.metric), indices


class FaissSearcher(BaseSearcher):
    """A faiss HNSW, IVF or IVF-PQ index of prepared rows, searched with exact re-ranking where it needs it.

    Built with :meth:`build`; ``index`` is the faiss index (what :mod:`faiss` writes and reads), ``vectors`` the
    rows the candidates are re-ranked from (for 8-bit or PQ storage; under L2 also the rows whose faiss
    distance cancels, see :func:`refine_l2`), ``positions`` the rows the index holds when some were left out
    (None: all).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32)
    >>> searcher = FaissSearcher.build(X, HNSWParams(M=16), "l2")
    >>> searcher.search(X[:2], 1).indices.ravel().tolist()
    [0, 1]
    """

    def __init__(
        self,
        index: faiss.Index,
        params: SearchParams,
        metric: Metric,
        *,
        vectors: np.ndarray | None,
        positions: np.ndarray | None = None,
        n_rows: int | None = None,
    ) -> None:
        self.index, self._params, self.metric = index, params, metric
        self.vectors, self.positions = vectors, positions
        self.dim = int(index.d)
        self.n_searchable = int(index.ntotal)
        self.n_rows = self.n_searchable if n_rows is None else n_rows
        if self._needs_rerank and vectors is None:
            raise ConfigurationError(
                f"a {params.method} index with {metric} needs the full vectors to re-rank its candidates."
            )

    @property
    def params(self) -> SearchParams:
        return self._params

    @property
    def _needs_rerank(self) -> bool:
        return self.metric == "l2" or self._params.rerank > 1

    def configure(self, params: SearchParams) -> FaissSearcher:
        """Use search-time parameters ``params`` (``ef_search``, ``nprobe``, ``rerank_factor``) from now on.

        Construction-time fields (``M``, ``ef_construction``, ``nlist``, ``m``, ``storage``) must stay those the
        index was built with.
        """
        built, wanted = (
            self._params.resolve(self.n_searchable, 1, self.dim),
            params.resolve(self.n_searchable, 1, self.dim),
        )
        construction = ("M", "ef_construction", "storage", "nlist", "m")
        if type(built) is not type(wanted) or any(
            getattr(built, name, None) != getattr(wanted, name, None) for name in construction
        ):
            raise ConfigurationError(
                f"the index was built as {built.to_dict()}; only search-time parameters can change, got "
                f"{params.to_dict()}."
            )
        self._params = params
        return self

    @classmethod
    def build(
        cls,
        X: object,
        params: SearchParams,
        metric: Metric = "cosine",
        *,
        searchable: np.ndarray | None = None,
        random_state: int | np.random.Generator | None = 0,
        progress: ProgressReporter = NULL_PROGRESS,
    ) -> FaissSearcher:
        """Train (when the index needs it) and fill a faiss index of the rows of ``X`` (the searchable ones).

        Parameters
        ----------
        X : array-like of shape (n, d) or Rows
        params : HNSWParams, IVFParams or IVFPQParams
        metric : {"cosine", "l2", "ip"}, default="cosine"
        searchable : array-like of bool of shape (n,), optional
        random_state : int, numpy Generator or None, default=0
            Seeds the training sample and faiss's k-means.
        progress : ProgressReporter, optional
        """
        if not isinstance(params, HNSWParams | IVFParams | IVFPQParams):
            raise ConfigurationError(f"FaissSearcher builds hnsw, ivf and ivfpq indexes, not {params.method!r}.")
        rows = prepare(X, metric)
        rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
        hidden = _hidden_rows(searchable, rows.n)
        positions = None if hidden.size == 0 else np.delete(np.arange(rows.n), hidden)
        n = rows.n if positions is None else positions.size
        built = params.resolve(n, 1, rows.dim)
        index = _new_index(built, rows.dim, _faiss_metric(metric), rng)
        base = rows.vectors
        if not index.is_trained:
            n_train = min(n, _training_rows(built))
            chosen = np.sort(rng.choice(n, n_train, replace=False))
            index.train(base[chosen if positions is None else positions[chosen]])
        with progress.task(f"Building {built.method} index", n) as advance:
            for start in range(0, n, _ADD_ROWS):
                block = slice(start, start + _ADD_ROWS) if positions is None else positions[start : start + _ADD_ROWS]
                index.add(base[block])
                advance(min(_ADD_ROWS, n - start))
        return cls(index, params, rows.metric, vectors=base, positions=positions, n_rows=rows.n)

    def recoded(self, storage: str, *, random_state: int | np.random.Generator | None = 0) -> FaissSearcher:
        """The same HNSW graph over another storage of its rows (``"sq8"`` codes or ``"flat"`` vectors).

        Re-encoding costs a pass over the rows instead of a new graph: a graph built from exact distances and
        searched on 8-bit codes (re-ranked exactly) is at least as navigable as one built from the codes.

        Raises
        ------
        ConfigurationError
            For an IVF index, or when the full vectors are not at hand.
        """
        params = self._params
        if not isinstance(params, HNSWParams) or self.vectors is None:
            raise ConfigurationError("only an HNSW index with its full vectors at hand can be re-encoded.")
        wanted = replace(params, storage=storage)  # checks the storage
        rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
        index = _new_index(wanted, self.dim, self.index.metric_type, rng)
        rows = self.vectors if self.positions is None else self.vectors[self.positions]
        if not index.storage.is_trained:
            sample = np.sort(rng.choice(rows.shape[0], min(rows.shape[0], _SQ_TRAIN_ROWS), replace=False))
            index.storage.train(np.ascontiguousarray(rows[sample]))
        for start in range(0, rows.shape[0], _ADD_ROWS):
            index.storage.add(np.ascontiguousarray(rows[start : start + _ADD_ROWS]))
        index.hnsw = self.index.hnsw  # a copy of the graph
        index.ntotal = index.storage.ntotal
        index.is_trained = True
        return FaissSearcher(
            index, wanted, self.metric, vectors=self.vectors, positions=self.positions, n_rows=self.n_rows
        )

    def _search_block(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        resolved = self.resolved_params(k)
        fetched = min(k * resolved.rerank, self.n_searchable)
        if isinstance(resolved, HNSWParams):
            self.index.hnsw.efSearch = max(resolved.ef_search, fetched)
        else:
            faiss.extract_index_ivf(self.index).nprobe = resolved.nprobe
        scores, indices = self.index.search(queries, fetched)
        indices = _to_rows(indices, self.positions)
        if self.metric == "l2" and resolved.rerank == 1:
            return refine_l2(self.vectors, self._squared_norms(), queries, scores[:, :k], indices[:, :k])
        if self._needs_rerank:
            return rerank(self.vectors, queries, indices, self.metric, k)
        return to_distances(scores, indices, self.metric)[:, :k], indices[:, :k]

    def _squared_norms(self) -> np.ndarray:
        """``||x||^2`` of every row of ``vectors``, computed once, block by block."""
        if getattr(self, "_norms", None) is None:
            norms = np.empty(self.vectors.shape[0], dtype=np.float32)
            for start in range(0, norms.size, _ADD_ROWS):
                block = np.asarray(self.vectors[start : start + _ADD_ROWS], dtype=np.float32)
                norms[start : start + block.shape[0]] = np.einsum("ij,ij->i", block, block)
            self._norms = norms
        return self._norms

    @property
    def index_bytes(self) -> int:
        """Bytes the faiss index holds in memory (codes, graph links, lists), without the re-ranking vectors."""
        if isinstance(self._params, HNSWParams):  # counted, where serializing would copy the whole index
            graph = self.index.hnsw
            return int(
                faiss.downcast_index(self.index.storage).codes.size()
                + 4 * (graph.neighbors.size() + graph.levels.size() + graph.cum_nneighbor_per_level.size())
                + 8 * (graph.offsets.size() + graph.assign_probas.size())
            )
        return int(faiss.serialize_index(self.index).nbytes)


def _training_rows(params: SearchParams) -> int:
    """Rows sampled to train an index: the 8-bit ranges of HNSW, 256 per IVF list (and 65,536 for PQ)."""
    if isinstance(params, HNSWParams):
        return _SQ_TRAIN_ROWS
    if isinstance(params, IVFPQParams):
        return max(params.nlist * 256, 2**16)
    return params.nlist * 256


def _new_index(params: SearchParams, d: int, fmetric: int, rng: np.random.Generator) -> faiss.Index:
    """An empty faiss index for resolved ``params``."""
    sq8 = getattr(params, "storage", "flat") == "sq8"
    if isinstance(params, HNSWParams):
        if sq8:
            index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, params.M, fmetric)
        else:
            index = faiss.IndexHNSWFlat(d, params.M, fmetric)
        index.hnsw.efConstruction = params.ef_construction
        return index
    quantizer = faiss.IndexFlat(d, fmetric)
    if isinstance(params, IVFPQParams):
        index = faiss.IndexIVFPQ(quantizer, d, params.nlist, params.m, params.nbits, fmetric)
    elif sq8:
        index = faiss.IndexIVFScalarQuantizer(quantizer, d, params.nlist, faiss.ScalarQuantizer.QT_8bit, fmetric)
    else:
        index = faiss.IndexIVFFlat(quantizer, d, params.nlist, fmetric)
    index.cp.seed = int(rng.integers(2**31 - 1))
    return index
