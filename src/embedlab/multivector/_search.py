"""Multi-vector search: candidates from one vector per document (MUVERA encodings, or the single-vector
heuristic over token vectors), reranked by exact MaxSim."""

from __future__ import annotations

import numpy as np

from embedlab._checks import check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError
from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.multivector import MultiVectorSet
from embedlab.multivector._fde import MuveraEncoder
from embedlab.multivector._maxsim import maxsim_rerank
from embedlab.neighbors import ExactSearcher, Searcher
from embedlab.neighbors.result import KnnResult

__all__ = ["MultiVectorSearcher", "encode_rows", "token_candidates"]

#: Tokens encoded at a time (bounds the memory of encoding a large set).
ENCODE_TOKENS = 262_144


def encode_rows(encoder: MuveraEncoder, rows: MultiVectorSet, kind: str = "document") -> EmbeddingSet:
    """``encoder.encode`` of ``rows`` in blocks of at most ``ENCODE_TOKENS`` tokens (the same vectors)."""
    parts = [encoder.encode(rows.take(np.arange(a, b)), kind).vectors for a, b in rows.row_blocks(ENCODE_TOKENS)]
    return EmbeddingSet(np.concatenate(parts), rows.ids, rows.metadata, source=rows.source, model=rows.model)


class MultiVectorSearcher:
    """Late-interaction search in two stages: MUVERA candidates, exact MaxSim rerank.

    Dhulipala et al. (2024), "MUVERA: Multi-Vector Retrieval via Fixed Dimensional Encodings", Section 3: the
    documents' fixed dimensional encodings go into a single-vector inner-product index; a query's encoding
    retrieves ``candidates`` documents, which exact Chamfer similarity reranks. The index is any
    :class:`~embedlab.neighbors.Searcher` over the document encodings (exact inner product by default; a
    compressed collection or an HNSW index of embedlab work the same way).

    Parameters
    ----------
    documents : MultiVectorSet
        The token vectors reranking reads (pooled ones, when the documents were pooled).
    encoder : MuveraEncoder, optional
        Fitted here on ``documents`` when not fitted; ``MuveraEncoder()`` when omitted.
    candidates : int, default=100
        Documents each query reranks.
    searcher : Searcher, optional
        An index over ``encode_rows(encoder, documents)``, in document order; exact inner product when omitted.
    progress : ProgressReporter, optional

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> docs = MultiVectorSet.from_matrices([rng.normal(size=(4, 8)) for _ in range(50)])
    >>> found = MultiVectorSearcher(docs, MuveraEncoder(3, 8, 5), candidates=20).search(docs.take([7]), 1)
    >>> found.indices.tolist()
    [[7]]
    """

    def __init__(
        self,
        documents: MultiVectorSet,
        encoder: MuveraEncoder | None = None,
        *,
        candidates: int = 100,
        searcher: Searcher | None = None,
        progress: ProgressReporter = NULL_PROGRESS,
    ) -> None:
        self.documents = documents
        self.encoder = MuveraEncoder() if encoder is None else encoder
        if not hasattr(self.encoder, "repetitions_"):
            self.encoder.fit(documents)
        self.candidates = check_int(candidates, "candidates")
        self.progress = progress
        if searcher is None:
            searcher = ExactSearcher(encode_rows(self.encoder, documents).vectors, "ip")
        self.searcher = searcher

    def candidate_positions(self, queries: MultiVectorSet, n_candidates: int | None = None) -> np.ndarray:
        """The ``n_candidates`` documents (positions) of highest encoded inner product for each query."""
        n = min(
            self.candidates if n_candidates is None else check_int(n_candidates, "n_candidates"), len(self.documents)
        )
        encoded = encode_rows(self.encoder, queries, "query")
        return self.searcher.search(encoded.vectors, n).indices

    def search(self, queries: MultiVectorSet, k: int = 10, *, exclude: np.ndarray | None = None) -> KnnResult:
        """The ``k`` documents of highest MaxSim among each query's candidates.

        Raises
        ------
        ConfigurationError
            When ``exclude`` is given (a query is a different kind of row from a document here).
        """
        if exclude is not None:
            raise ConfigurationError("a multi-vector search excludes no rows: queries are not documents.")
        k = check_int(k, "k")
        return maxsim_rerank(queries, self.documents, self.candidate_positions(queries), k, progress=self.progress)


def token_candidates(
    documents: MultiVectorSet,
    queries: MultiVectorSet,
    per_token: int,
    *,
    searcher: Searcher | None = None,
) -> np.ndarray:
    """The single-vector heuristic of the MUVERA paper (and of ColBERTv2's first stage): each query token's
    ``per_token`` nearest document tokens (inner product), and the union of their documents.

    Parameters
    ----------
    documents, queries : MultiVectorSet
    per_token : int
        Document tokens retrieved for each query token.
    searcher : Searcher, optional
        An index over ``documents.vectors`` (every token); exact inner product when omitted.

    Returns
    -------
    numpy.ndarray of shape (n_queries, max candidates), int64
        Each query's candidate document positions, ascending, padded with -1.
    """
    per_token = min(check_int(per_token, "per_token"), documents.n_tokens)
    index = ExactSearcher(documents.vectors, "ip") if searcher is None else searcher
    found = index.search(queries.vectors, per_token).indices
    owner = documents.row_of_token
    rows = [
        np.unique(owner[found[a:b].ravel()]) for a, b in zip(queries.offsets[:-1], queries.offsets[1:], strict=True)
    ]
    out = np.full((len(rows), max((r.size for r in rows), default=0)), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out
