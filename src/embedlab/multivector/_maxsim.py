"""Exact Chamfer (MaxSim) similarity between multi-vector rows, in BLAS-sized blocks: the ground truth and the
reranker of every multi-vector search."""

from __future__ import annotations

import numpy as np

from embedlab._checks import check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.multivector import MultiVectorSet
from embedlab.neighbors.result import KnnResult

__all__ = ["maxsim_rerank", "maxsim_scores", "maxsim_search"]

#: Bytes of the token-by-token similarity block one matrix product fills.
BLOCK_BYTES = 128 * 2**20


def _check_pair(queries: MultiVectorSet, documents: MultiVectorSet) -> None:
    if queries.dim != documents.dim:
        raise EmbeddingDataError(
            f"the queries' token vectors have dimension {queries.dim} and the documents' {documents.dim}; both must "
            "come from one model."
        )


def _chamfer_block(query_tokens: np.ndarray, query_starts: np.ndarray, doc_tokens: np.ndarray, doc_starts: np.ndarray):
    """sum over each query's tokens of the max over each document's tokens, for one block of each."""
    similarity = query_tokens @ doc_tokens.T
    best = np.maximum.reduceat(similarity, doc_starts, axis=1)
    return np.add.reduceat(best, query_starts, axis=0)


def maxsim_scores(queries: MultiVectorSet, documents: MultiVectorSet, *, block_bytes: int = BLOCK_BYTES) -> np.ndarray:
    """The Chamfer similarity of every query with every document.

    ``CHAMFER(Q, P) = sum_{q in Q} max_{p in P} <q, p>``, the late-interaction score of ColBERT (Khattab &
    Zaharia 2020) that MUVERA (Dhulipala et al. 2024, "Multi-Vector Retrieval via Fixed Dimensional
    Encodings") approximates. Computed exactly, block by block: one matrix product of a block of query tokens
    with a block of document tokens, then a maximum over each document's columns and a sum over each query's
    rows.

    Parameters
    ----------
    queries, documents : MultiVectorSet
    block_bytes : int, default=128 MiB
        Size of the similarity block a matrix product fills.

    Returns
    -------
    numpy.ndarray of shape (n_queries, n_documents), float32

    Examples
    --------
    >>> import numpy as np
    >>> q = MultiVectorSet.from_matrices([[[1.0, 0.0], [0.0, 1.0]]])
    >>> d = MultiVectorSet.from_matrices([[[1.0, 0.0]], [[0.5, 0.25], [0.0, 1.0]]])
    >>> maxsim_scores(q, d).tolist()
    [[1.0, 1.5]]
    """
    _check_pair(queries, documents)
    block_bytes = check_int(block_bytes, "block_bytes")
    out = np.empty((len(queries), len(documents)), dtype=np.float32)
    query_budget = max(1, int(np.sqrt(block_bytes / 4)))
    for q0, q1 in queries.row_blocks(query_budget):
        a, b = queries.offsets[q0], queries.offsets[q1]
        q_tokens, q_starts = queries.vectors[a:b], queries.offsets[q0:q1] - a
        doc_budget = max(1, block_bytes // (4 * (b - a)))
        for d0, d1 in documents.row_blocks(doc_budget):
            c, d = documents.offsets[d0], documents.offsets[d1]
            out[q0:q1, d0:d1] = _chamfer_block(q_tokens, q_starts, documents.vectors[c:d], documents.offsets[d0:d1] - c)
    return out


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest scores of each row, descending (ties: the lower position first)."""
    k = min(k, scores.shape[1])
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)
    positions = np.take_along_axis(part, order, axis=1)
    return positions.astype(np.int64), np.take_along_axis(picked, order, axis=1)


def _result(positions: np.ndarray, scores: np.ndarray, documents: MultiVectorSet) -> KnnResult:
    ids = np.where(positions >= 0, documents.ids[np.maximum(positions, 0)], None) if positions.size else None
    distances = np.where(positions >= 0, -scores, np.inf).astype(np.float32)
    return KnnResult(distances, positions, "ip", ids=ids)


def maxsim_search(
    queries: MultiVectorSet,
    documents: MultiVectorSet,
    k: int = 10,
    *,
    block_bytes: int = BLOCK_BYTES,
    progress: ProgressReporter = NULL_PROGRESS,
) -> KnnResult:
    """The ``k`` documents of highest exact Chamfer similarity for each query (brute force over all documents).

    Returns
    -------
    KnnResult
        With metric ``"ip"``: ``distances`` are minus the Chamfer scores (``result.scores`` gives them),
        ``indices`` document positions, ``ids`` their ids.

    Raises
    ------
    ConfigurationError
        When ``k`` is not positive.
    """
    k = check_int(k, "k")
    budget = max(1, block_bytes // (4 * max(documents.n_tokens, 1)))
    positions, scores = [], []
    with progress.task("Exact MaxSim", len(queries)) as advance:
        for q0, q1 in queries.row_blocks(budget):
            block = maxsim_scores(queries.take(np.arange(q0, q1)), documents, block_bytes=block_bytes)
            p, s = _top_k(block, k)
            positions.append(p)
            scores.append(s)
            advance(q1 - q0)
    return _result(np.concatenate(positions), np.concatenate(scores), documents)


def maxsim_rerank(
    queries: MultiVectorSet,
    documents: MultiVectorSet,
    candidates: np.ndarray,
    k: int = 10,
    *,
    progress: ProgressReporter = NULL_PROGRESS,
) -> KnnResult:
    """Rerank each query's candidate documents by exact Chamfer similarity and keep the best ``k``.

    Parameters
    ----------
    candidates : numpy.ndarray of shape (n_queries, n_candidates), int
        Document positions; ``-1`` pads rows with fewer candidates. A repeated candidate counts once.

    Returns
    -------
    KnnResult
        As :func:`maxsim_search`; positions of ``-1`` (and ``inf`` distances) where a query had fewer than
        ``k`` candidates.
    """
    _check_pair(queries, documents)
    k = check_int(k, "k")
    candidates = np.asarray(candidates, dtype=np.int64)
    if candidates.ndim != 2 or candidates.shape[0] != len(queries):
        raise ConfigurationError(f"candidates must have shape (n_queries={len(queries)}, n_candidates).")
    if candidates.size and candidates.max() >= len(documents):
        raise ConfigurationError(f"candidates must be document positions below {len(documents)} (or -1).")
    positions = np.full((len(queries), k), -1, dtype=np.int64)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    with progress.task("MaxSim rerank", len(queries)) as advance:
        for row in range(len(queries)):
            chosen = np.unique(candidates[row][candidates[row] >= 0])
            if chosen.size:
                starts, stops = documents.offsets[chosen], documents.offsets[chosen + 1]
                lengths = stops - starts
                tokens = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(lengths.sum())
                local = np.r_[0, np.cumsum(lengths)[:-1]]
                got = _chamfer_block(queries[row], np.zeros(1, np.int64), documents.vectors[tokens], local)[0]
                p, s = _top_k(got[None, :], k)
                positions[row, : p.shape[1]] = chosen[p[0]]
                scores[row, : p.shape[1]] = s[0]
            advance(1)
    return _result(positions, scores, documents)
