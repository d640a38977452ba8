"""KnnResult: the one (distances, indices) convention every search answers in, and every module reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from embedlab._json import json_safe
from embedlab.neighbors.params import ExactParams, SearchParams

__all__ = ["KnnResult"]


@dataclass(frozen=True)
class KnnResult:
    """The k nearest neighbours of each query.

    Attributes
    ----------
    distances : numpy.ndarray of shape (n_queries, k), float32
        Ascending in each row; ``inf`` where fewer than k were found. ``"cosine"``: 1 - cosine similarity;
        ``"l2"``: Euclidean distance (not squared); ``"ip"``: minus the inner product.
    indices : numpy.ndarray of shape (n_queries, k), int64
        Row positions in the searched set; -1 where fewer than k were found.
    metric : str
        ``"cosine"``, ``"l2"`` or ``"ip"``.
    params : SearchParams
        The search that produced the result, every field resolved (``method`` names it).
    recall : float or None
        Recall@k against exact search measured on ``recall_sample`` queries; 1.0 for exact search, None
        when not measured.
    recall_sample : int
        Queries the recall was measured on (0 for exact search).
    ids : numpy.ndarray of shape (n_queries, k), optional
        The neighbours' ids, when the searched set has ids (an index or a collection); missing ones are None.
    exact_distances : bool, default=True
        False when the distances are an index's estimates (compressed codes without re-ranking).
    """

    distances: np.ndarray
    indices: np.ndarray
    metric: str
    params: SearchParams = field(default_factory=ExactParams)
    recall: float | None = 1.0
    recall_sample: int = 0
    ids: np.ndarray | None = field(default=None, repr=False)
    exact_distances: bool = True

    @property
    def method(self) -> str:
        """The search actually used: ``"exact"``, ``"hnsw"``, ``"ivf"``, ``"ivfpq"``, ``"codec"`` (never ``"auto"``)."""
        return self.params.method

    @property
    def k(self) -> int:
        """Neighbours per query."""
        return int(self.indices.shape[1])

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def scores(self) -> np.ndarray:
        """The similarity view, descending: cosine similarity, inner product, or minus the L2 distance.

        Examples
        --------
        >>> KnnResult(np.array([[0.25]], np.float32), np.array([[3]]), "cosine").scores.tolist()
        [[0.75]]
        """
        if self.metric == "cosine":
            return (1.0 - self.distances).astype(np.float32)
        return (-self.distances).astype(np.float32)

    def head(self, k: int) -> KnnResult:
        """The first ``k`` neighbours of each query (recall stays that measured at the larger k)."""
        return KnnResult(
            self.distances[:, :k],
            self.indices[:, :k],
            self.metric,
            self.params,
            self.recall,
            self.recall_sample,
            None if self.ids is None else self.ids[:, :k],
            self.exact_distances,
        )

    def with_ids(self, row_ids: np.ndarray) -> KnnResult:
        """The same result with ``ids``: the neighbours' positions looked up in ``row_ids`` (None where missing)."""
        found = self.indices >= 0
        looked_up = np.asarray(row_ids)[np.maximum(self.indices, 0)]
        if not found.all():
            looked_up = np.where(found, looked_up.astype(object), None)
        return KnnResult(
            self.distances,
            self.indices,
            self.metric,
            self.params,
            self.recall,
            self.recall_sample,
            looked_up,
            self.exact_distances,
        )

    def summary(self) -> dict[str, Any]:
        """How the search ran, JSON-ready: queries, ``k``, metric, method and parameters, and the measured recall
        of an approximate search (``embedlab knn --json``)."""
        return json_safe(
            {
                "n": len(self),
                "k": self.k,
                "metric": self.metric,
                "method": self.method,
                "recall": self.recall,
                "recall_sample": self.recall_sample,
                "params": self.params.to_dict(),
                "exact_distances": self.exact_distances,
            }
        )

    def to_dict(self, query_ids: np.ndarray | None = None) -> dict[str, Any]:
        """A JSON-ready document: :meth:`summary`, then per query its neighbours' ids, scores and distances.

        ``ids`` are the neighbours' ids when the result has them, else their row positions.
        """
        queries = np.arange(len(self)) if query_ids is None else np.asarray(query_ids)
        neighbours = self.indices if self.ids is None else self.ids
        return json_safe(
            {
                **self.summary(),
                "results": [
                    {"query": query, "ids": list(found), "scores": list(scores), "distances": list(distances)}
                    for query, found, scores, distances in zip(
                        queries.tolist(),
                        neighbours.tolist(),
                        self.scores.tolist(),
                        self.distances.tolist(),
                        strict=True,
                    )
                ],
            }
        )

    def to_table(self, query_ids: np.ndarray | None = None) -> pa.Table:
        """One row per (query, rank): ``query``, ``rank`` (0-based), ``id`` (or row position), ``score``, ``distance``.

        Neighbours that were not found (fewer than k) are left out.
        """
        n_queries, k = self.indices.shape
        queries = np.arange(n_queries) if query_ids is None else np.asarray(query_ids)
        found = (self.indices >= 0).ravel()
        neighbours = (self.indices if self.ids is None else self.ids).ravel()
        return pa.table(
            {
                "query": pa.array(np.repeat(queries, k)[found]),
                "rank": pa.array(np.tile(np.arange(k, dtype=np.int32), n_queries)[found]),
                "id": pa.array(neighbours[found].tolist() if neighbours.dtype == object else neighbours[found]),
                "score": pa.array(self.scores.ravel()[found]),
                "distance": pa.array(self.distances.ravel()[found]),
            }
        )

    def to_graph_table(self, row_ids: np.ndarray) -> pa.Table:
        """A kNN graph as an Arrow table: each row's ``id``, its ``neighbor_ids`` and ``distances`` (lists of k).

        Parameters
        ----------
        row_ids : numpy.ndarray of shape (n,)
            Ids of the searched set's rows; the queries are the same rows, in order, as in a kNN graph.
        """
        missing = (self.indices < 0).reshape(-1)
        neighbor_ids = pa.array(row_ids[np.maximum(self.indices, 0)].reshape(-1), mask=missing)
        k = self.k
        return pa.table(
            {
                "id": pa.array(row_ids[: len(self)]),
                "neighbor_ids": pa.FixedSizeListArray.from_arrays(neighbor_ids, k),
                "distances": pa.FixedSizeListArray.from_arrays(pa.array(self.distances.reshape(-1)), k),
            }
        )
