"""Two-stage search: a shortlist of ``rescore x k`` candidates from the codes, then exact inner products with
the full-precision rows (memory-mapped from disk in a collection) decide the final ``k``.

This is the funnel of Matryoshka retrieval (Kusupati et al. 2022) and the bi-granular layout of BiDR (Liu
et al. 2021, "Matching-oriented embedding quantization for ad-hoc retrieval", EMNLP): small codes in memory,
full vectors on disk, read only for the shortlisted rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from embedlab.compress._codec import Codec
from embedlab.exceptions import ConfigurationError

__all__ = ["SearchResult", "exact_scores", "rescore", "two_stage_search"]

#: Candidate rows gathered per rescoring block (64 MB of float32 at d = 384).
_GATHER_ROWS = 2**15


@dataclass(frozen=True)
class SearchResult:
    """Top-k answers: ``scores`` (n_queries, k) float32, descending, and ``indices`` (n_queries, k) int64 rows.

    ``exact`` says whether the scores are exact inner products (rescored) or the codes' estimates; ``ids``
    (n_queries, k) are the rows' ids when the search ran on a collection.
    """

    scores: np.ndarray
    indices: np.ndarray
    exact: bool
    ids: np.ndarray | None = None

    def to_table(self, query_ids: np.ndarray | None = None) -> pa.Table:
        """One row per (query, rank): ``query``, ``rank`` (0-based), ``id`` (or row), ``score``."""
        n_queries, k = self.indices.shape
        queries = np.arange(n_queries) if query_ids is None else np.asarray(query_ids)
        return pa.table(
            {
                "query": pa.array(np.repeat(queries, k)),
                "rank": pa.array(np.tile(np.arange(k, dtype=np.int32), n_queries)),
                "id": pa.array((self.indices if self.ids is None else self.ids).ravel()),
                "score": pa.array(self.scores.ravel().astype(np.float32)),
            }
        )


def exact_scores(queries: np.ndarray, vectors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Exact inner products of each query with its candidate rows, shape of ``candidates``, float32.

    Rows are read once per block in ascending order, which keeps reads from a memory map sequential.
    """
    scores = np.empty(candidates.shape, dtype=np.float32)
    per_block = max(1, _GATHER_ROWS // max(candidates.shape[1], 1))
    for start in range(0, candidates.shape[0], per_block):
        block = candidates[start : start + per_block]
        unique, inverse = np.unique(block, return_inverse=True)
        rows = np.asarray(vectors[unique], dtype=np.float32)
        gathered = rows[inverse.reshape(block.shape)]
        scores[start : start + per_block] = np.einsum("qd,qcd->qc", queries[start : start + per_block], gathered)
    return scores


def rescore(queries: np.ndarray, vectors: np.ndarray, candidates: np.ndarray, k: int) -> SearchResult:
    """The ``k`` candidates of highest exact inner product for each query, from a shortlist of candidates."""
    scores = exact_scores(queries, vectors, candidates)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return SearchResult(
        np.take_along_axis(scores, order, axis=1), np.take_along_axis(candidates, order, axis=1), exact=True
    )


def two_stage_search(
    codec: Codec,
    codes: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    rescore_factor: int | None = None,
    vectors: np.ndarray | None = None,
) -> SearchResult:
    """Search codes for each prepared query; with ``rescore_factor`` M, rescore M x k candidates exactly.

    ``queries`` and ``vectors`` are prepared rows (validated, unit-normalised under cosine); ``vectors`` holds
    the full-precision rows in the order of ``codes`` and is required for rescoring.
    """
    if rescore_factor is None:
        scores, indices = codec.search(codes, queries, k, prepared=True)
        return SearchResult(scores, indices, exact=False)
    if vectors is None:
        raise ConfigurationError(
            "rescoring needs the full-precision vectors; build the collection with keep_vectors=True "
            "(embedlab compress apply keeps them when the spec ends in +rescore:M)."
        )
    shortlist = min(codes.shape[0], rescore_factor * k)
    _, candidates = codec.search(codes, queries, shortlist, prepared=True)
    return rescore(queries, vectors, candidates, k)
