"""Searching codes through the search layer: :class:`CodecSearcher` is a codec's implementation of the
neighbours' ``Searcher`` protocol, from the codes alone or in two stages.

Two stages: a shortlist of ``rescore x k`` candidates from the codes, then exact inner products with the
full-precision rows (memory-mapped from disk in a collection) decide the final ``k``. This is the funnel of
Matryoshka retrieval (Kusupati et al. 2022, "Matryoshka Representation Learning", NeurIPS) and the bi-granular
layout of BiDR (Xiao et al. 2021, "Progressively Optimized Bi-Granular Document Representation for Scalable
Embedding Based Retrieval", WWW 2022): small codes in memory, full vectors on disk, read only for the
shortlisted rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from embedlab._checks import check_int
from embedlab.compress._codec import Codec
from embedlab.exceptions import ConfigurationError
from embedlab.neighbors import BaseSearcher, SearchParams, rerank

__all__ = ["CodecParams", "CodecSearcher"]


@dataclass(frozen=True)
class CodecParams(SearchParams):
    """A codec's search: its codes ``spec`` scanned in full, and ``rescore`` (M: ``M x k`` candidates re-ranked
    by exact inner product) or None for the codes' own scores."""

    method: ClassVar[str] = "codec"
    spec: str = ""
    rescore: int | None = None

    @property
    def rerank(self) -> int:
        return 1 if self.rescore is None else self.rescore


class CodecSearcher(BaseSearcher):
    """The codes of a fitted codec, searched by approximate inner product, optionally re-ranked exactly.

    Parameters
    ----------
    codec : Codec
        Fitted.
    codes : numpy.ndarray of shape (n, codec.bytes_per_vector), uint8
    vectors : numpy.ndarray of shape (n, d), optional
        The full-precision rows, prepared for the codec's metric (in memory or memory-mapped); needed to rescore.
    rescore : int, optional
        Re-rank ``rescore x k`` candidates by exact inner product (None: the codes' scores decide).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(500, 32)).astype(np.float32)
    >>> codec = Codec("pca:16+int8", metric="ip").fit(X)
    >>> result = CodecSearcher(codec, codec.encode(X), vectors=X, rescore=5).search(X[:3], 1)
    >>> result.indices.ravel().tolist(), result.method, result.exact_distances
    ([0, 1, 2], 'codec', True)
    """

    def __init__(
        self, codec: Codec, codes: np.ndarray, *, vectors: np.ndarray | None = None, rescore: int | None = None
    ) -> None:
        self.codec, self.codes = codec, codec.checked_codes(codes)
        self.metric, self.dim = codec.metric, codec.dim_
        self.n_rows = self.n_searchable = int(self.codes.shape[0])
        if vectors is not None and vectors.shape != (self.n_rows, self.dim):
            raise ConfigurationError(
                f"vectors of shape {vectors.shape} do not match the {self.n_rows} codes of dimension {self.dim}."
            )
        self.vectors = vectors
        self._set_rescore(rescore)

    @property
    def params(self) -> CodecParams:
        return CodecParams(spec=self.codec.spec.codes_spec, rescore=self.rescore)

    def configure(self, params: CodecParams) -> CodecSearcher:
        """Re-rank ``params.rescore x k`` candidates from now on (None: the codes' scores alone)."""
        if params.spec != self.codec.spec.codes_spec:
            raise ConfigurationError(f"these codes are {self.codec.spec.codes_spec}, not {params.spec}.")
        return self._set_rescore(params.rescore)

    def _set_rescore(self, rescore: int | None) -> CodecSearcher:
        self.rescore = None if rescore is None else check_int(rescore, "rescore")
        if self.rescore is not None and self.vectors is None:
            raise ConfigurationError(
                "rescoring needs the full-precision vectors; build the collection with keep_vectors=True "
                "(embedlab compress apply keeps them when the spec ends in +rescore:M)."
            )
        self.exact_distances = self.rescore is not None
        return self

    def _search_block(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.rescore is None:
            scores, indices = self.codec.top_k(self.codes, queries, k)
            # Estimated similarities as distances, unclipped: the codes' order must survive.
            return (1.0 - scores if self.metric == "cosine" else -scores).astype(np.float32), indices
        _, candidates = self.codec.top_k(self.codes, queries, min(self.n_rows, self.rescore * k))
        return rerank(self.vectors, queries, candidates, self.metric, k)
