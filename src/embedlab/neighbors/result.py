"""KnnResult: the one (distances, indices) convention every module reads neighbours in."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

__all__ = ["KnnResult"]


@dataclass(frozen=True)
class KnnResult:
    """The k nearest neighbours of each query.

    Attributes
    ----------
    distances : numpy.ndarray of shape (n_queries, k), float32
        Ascending in each row. ``"cosine"``: 1 - cosine similarity; ``"l2"``: Euclidean distance (not
        squared); ``"ip"``: minus the inner product.
    indices : numpy.ndarray of shape (n_queries, k), int64
        Row positions in the searched set; -1 where an approximate index found fewer than k.
    metric : str
        ``"cosine"``, ``"l2"`` or ``"ip"``.
    method : str
        The search actually used: ``"exact"``, ``"hnsw"`` or ``"ivf"`` (never ``"auto"``).
    recall : float or None
        Recall@k of this result against exact search, measured on ``recall_sample`` queries; 1.0 for
        exact search.
    recall_sample : int
        Queries the recall was measured on (0 for exact search).
    params : dict
        Index parameters used (M, efSearch, nlist, nprobe, ...).
    """

    distances: np.ndarray
    indices: np.ndarray
    metric: str
    method: str
    recall: float | None = None
    recall_sample: int = 0
    params: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Neighbours per query."""
        return int(self.indices.shape[1])

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def head(self, k: int) -> KnnResult:
        """The first ``k`` neighbours of each query (recall stays that measured at the larger k)."""
        return KnnResult(
            self.distances[:, :k],
            self.indices[:, :k],
            self.metric,
            self.method,
            self.recall,
            self.recall_sample,
            self.params,
        )

    def to_table(self, ids: np.ndarray) -> pa.Table:
        """The result as an Arrow table: the query ``id``, ``neighbor_ids`` and ``distances`` (lists of k).

        Parameters
        ----------
        ids : numpy.ndarray of shape (n,)
            Ids of the searched set's rows (neighbour positions are mapped through them); the queries are
            assumed to be the same rows, as in a kNN graph.
        """
        missing = (self.indices < 0).reshape(-1)
        neighbor_ids = pa.array(ids[np.maximum(self.indices, 0)].reshape(-1), mask=missing)
        k = self.k
        return pa.table(
            {
                "id": pa.array(ids[: len(self)]),
                "neighbor_ids": pa.FixedSizeListArray.from_arrays(neighbor_ids, k),
                "distances": pa.FixedSizeListArray.from_arrays(pa.array(self.distances.reshape(-1)), k),
            }
        )
