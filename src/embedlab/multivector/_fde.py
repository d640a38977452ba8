"""MUVERA fixed dimensional encodings: one vector per multi-vector row whose inner products approximate Chamfer
similarity, so that any single-vector index finds the candidates that exact MaxSim then reranks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from embedlab._checks import check_int
from embedlab.exceptions import ConfigurationError
from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.multivector import MultiVectorSet

__all__ = ["MAX_FDE_DIM", "MuveraEncoder", "fde_dim"]

#: Largest encoding built unless the caller allows more (256 KiB of float32 per row).
MAX_FDE_DIM = 65_536
_KINDS = ("document", "query")


def fde_dim(k_sim: int, repetitions: int, d_proj: int, final_dim: int | None = None) -> int:
    """Dimension of an encoding: ``repetitions * 2**k_sim * d_proj``, or ``final_dim`` after the final projection."""
    return final_dim if final_dim is not None else repetitions * (2**k_sim) * d_proj


def _gray_patterns(k_sim: int) -> np.ndarray:
    """``patterns[b]``: the sign bits (k_sim of them, first hyperplane first) that land in partition ``b``.

    A token's partition is built bit by bit as in the reference implementation, ``b = (b << 1) + (bit ^ (b &
    1))``, a Gray code: partitions whose numbers differ in one bit of the code hold neighbouring sign patterns.
    """
    bits = ((np.arange(2**k_sim)[:, None] >> np.arange(k_sim - 1, -1, -1)) & 1).astype(bool)
    return bits[np.argsort(_partitions(bits))]


def _partitions(bits: np.ndarray) -> np.ndarray:
    index = np.zeros(bits.shape[0], dtype=np.int64)
    for j in range(bits.shape[1]):
        index = (index << 1) + (bits[:, j] ^ (index & 1))
    return index


@dataclass(frozen=True)
class _Repetition:
    hyperplanes: np.ndarray  # (dim, k_sim) Gaussian: SimHash
    projection: np.ndarray | None  # (dim, d_proj) AMS sketch: one +-1 per row; None: identity


class MuveraEncoder:
    """MUVERA's fixed dimensional encoding (FDE) of multi-vector rows.

    Dhulipala, Hadian, Jayaram, Lee & Mirrokni (2024), "MUVERA: Multi-Vector Retrieval via Fixed Dimensional
    Encodings", following the reference implementation (google/graph-mining,
    ``sketching/point_cloud/fixed_dimensional_encoding.cc``). Each of ``repetitions`` independent repetitions
    partitions the token space by the signs of ``k_sim`` Gaussian hyperplanes (SimHash; partitions numbered
    by a Gray code), projects each token to ``d_proj`` dimensions by an AMS sketch (a random +-1 per input
    coordinate; none when ``d_proj`` is None), and writes, per partition, the **sum** of a query's projected
    tokens or the **mean** of a document's. An empty document partition takes the projected token whose sign
    pattern is nearest in Hamming distance (``fill_empty``). The repetitions are concatenated, and an optional
    final count-sketch projection reduces them to ``final_dim``. Then ``<FDE(Q), FDE(P)>`` approximates
    ``CHAMFER(Q, P)`` (Theorem 2.1: within ``eps`` of the normalised Chamfer score for unit vectors, with
    ``k_sim = O(log(m / delta) / eps)``, ``d_proj = O(log(m / (eps delta)) / eps**2)``), so a single-vector
    inner-product index over document FDEs finds candidates for exact MaxSim reranking.

    The encoding is data-oblivious: :meth:`fit` only fixes the dimension and draws the random matrices from
    ``random_state``, and every row's encoding is independent of the others (batches can be encoded anywhere).

    Parameters
    ----------
    k_sim : int, default=5
        SimHash hyperplanes per repetition (``2**k_sim`` partitions).
    d_proj : int or None, default=16
        Dimension of the AMS projection of each token; None keeps the token dimension.
    repetitions : int, default=20
    fill_empty : bool, default=True
        Fill empty document partitions from the nearest token (queries are never filled, as in the paper).
    final_dim : int, optional
        Reduce the encoding to this dimension by a count sketch.
    max_dim : int, default=65,536
        Largest encoding built before the final projection; a larger one is refused with its size.
    random_state : int, default=0

    Attributes
    ----------
    dim_ : int
        The token dimension.
    n_features_out_ : int
        The encoding's dimension.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> docs = MultiVectorSet.from_matrices([rng.normal(size=(5, 8)) for _ in range(3)])
    >>> enc = MuveraEncoder(k_sim=2, d_proj=4, repetitions=3).fit(docs)
    >>> enc.n_features_out_, enc.encode(docs).vectors.shape
    (48, (3, 48))
    """

    def __init__(
        self,
        k_sim: int = 5,
        d_proj: int | None = 16,
        repetitions: int = 20,
        *,
        fill_empty: bool = True,
        final_dim: int | None = None,
        max_dim: int = MAX_FDE_DIM,
        random_state: int = 0,
    ) -> None:
        self.k_sim = k_sim
        self.d_proj = d_proj
        self.repetitions = repetitions
        self.fill_empty = fill_empty
        self.final_dim = final_dim
        self.max_dim = max_dim
        self.random_state = random_state

    def fit(self, documents: MultiVectorSet | int) -> MuveraEncoder:
        """Fix the token dimension (from a set, or given) and draw the hyperplanes and projections.

        Raises
        ------
        ConfigurationError
            When a parameter is out of range, or the encoding would exceed ``max_dim`` (the message gives the
            size it would have).
        """
        dim = documents if isinstance(documents, int) else documents.dim
        k_sim = check_int(self.k_sim, "k_sim", minimum=0)
        repetitions = check_int(self.repetitions, "repetitions")
        d_proj = dim if self.d_proj is None else check_int(self.d_proj, "d_proj")
        if k_sim > 20:
            raise ConfigurationError(f"k_sim={k_sim} would make 2**{k_sim} partitions a repetition; use at most 20.")
        size = fde_dim(k_sim, repetitions, d_proj)
        if size > check_int(self.max_dim, "max_dim"):
            raise ConfigurationError(
                f"an encoding of repetitions={repetitions} x 2**k_sim={2**k_sim} partitions x d_proj={d_proj} has "
                f"{size:,} dimensions ({4 * size:,} bytes a row as float32), above max_dim={self.max_dim:,}; lower "
                "k_sim, repetitions or d_proj, or raise max_dim (final_dim then reduces what is stored)."
            )
        final_dim = None if self.final_dim is None else check_int(self.final_dim, "final_dim")
        self.dim_, self.d_proj_, self.n_features_out_ = dim, d_proj, fde_dim(k_sim, repetitions, d_proj, final_dim)
        self.patterns_ = _gray_patterns(k_sim)
        self.repetitions_ = [self._draw(r, dim, k_sim, d_proj) for r in range(repetitions)]
        self.final_projection_ = None
        if final_dim is not None:
            rng = np.random.default_rng([self.random_state, repetitions, 2])
            rows = np.arange(size)
            signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=size)
            self.final_projection_ = sp.csr_matrix((signs, (rows, rng.integers(0, final_dim, size))), (size, final_dim))
        return self

    def _draw(self, repetition: int, dim: int, k_sim: int, d_proj: int) -> _Repetition:
        rng = np.random.default_rng([self.random_state, repetition, 0])
        hyperplanes = rng.standard_normal((dim, k_sim)).astype(np.float32)
        projection = None
        if self.d_proj is not None:
            rng = np.random.default_rng([self.random_state, repetition, 1])
            projection = np.zeros((dim, d_proj), dtype=np.float32)
            projection[np.arange(dim), rng.integers(0, d_proj, dim)] = rng.choice(np.array([-1.0, 1.0]), size=dim)
        return _Repetition(hyperplanes, projection)

    def encode(self, rows: MultiVectorSet, kind: str = "document") -> EmbeddingSet:
        """The encodings of ``rows`` as documents (means, empty partitions filled) or queries (sums).

        Returns
        -------
        EmbeddingSet
            One vector of :attr:`n_features_out_` per row, with the rows' ids and metadata.

        Raises
        ------
        ConfigurationError
            When ``kind`` is neither, the encoder is not fitted, or the rows' dimension is not the fitted one.
        """
        if kind not in _KINDS:
            raise ConfigurationError(f"kind must be 'document' or 'query', got {kind!r}.")
        if not hasattr(self, "repetitions_"):
            raise ConfigurationError("this MuveraEncoder is not fitted; call fit(documents) first.")
        if rows.dim != self.dim_:
            raise ConfigurationError(
                f"the encoder was fitted on token vectors of dimension {self.dim_}, these have {rows.dim}."
            )
        parts = [self._repetition(rep, rows, kind == "document") for rep in self.repetitions_]
        out = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        if self.final_projection_ is not None:
            out = np.asarray(out @ self.final_projection_)
        return EmbeddingSet(out, rows.ids, rows.metadata, source=rows.source, model=rows.model)

    def _repetition(self, rep: _Repetition, rows: MultiVectorSet, document: bool) -> np.ndarray:
        tokens = rows.vectors
        bits = (tokens @ rep.hyperplanes) > 0
        partition = _partitions(bits)
        projected = tokens if rep.projection is None else tokens @ rep.projection
        buckets = 2**self.k_sim
        cell = rows.row_of_token * buckets + partition
        n_cells = len(rows) * buckets
        membership = sp.csr_matrix(
            (np.ones(tokens.shape[0], np.float32), (cell, np.arange(tokens.shape[0]))), (n_cells, tokens.shape[0])
        )
        sums = np.asarray(membership @ projected, dtype=np.float32)
        if document:
            counts = np.bincount(cell, minlength=n_cells).astype(np.float32)
            sums /= np.maximum(counts, 1.0)[:, None]
            if self.fill_empty:
                empty = np.flatnonzero(counts == 0)
                if empty.size:
                    sums[empty] = projected[self._nearest_tokens(bits, rows, empty)]
        return sums.reshape(len(rows), buckets * projected.shape[1])

    def _nearest_tokens(self, bits: np.ndarray, rows: MultiVectorSet, empty_cells: np.ndarray) -> np.ndarray:
        """For each empty (row, partition) cell, the row's token whose sign bits are nearest the partition's
        pattern in Hamming distance (the first such token on ties, as the reference's scan keeps)."""
        buckets = 2**self.k_sim
        codes = bits.astype(np.int64) @ (1 << np.arange(self.k_sim - 1, -1, -1, dtype=np.int64))
        pattern_codes = np.arange(buckets) ^ (np.arange(buckets) >> 1)  # partition b holds the bits b ^ (b >> 1)
        row, partition = np.divmod(empty_cells, buckets)
        chosen = np.empty(empty_cells.size, dtype=np.int64)
        # rows in blocks, so that the (tokens, partitions) distance table stays near 2**22 entries
        for r0, r1 in rows.row_blocks(max(1, 2**22 // buckets)):
            a, b = rows.offsets[r0], rows.offsets[r1]
            distance = np.bitwise_count(codes[a:b, None] ^ pattern_codes[None, :]).astype(np.int64)
            key = distance * (b - a) + np.arange(b - a)[:, None]
            best = np.minimum.reduceat(key, rows.offsets[r0:r1] - a, axis=0) % (b - a) + a  # (rows, partitions)
            inside = (row >= r0) & (row < r1)
            chosen[inside] = best[row[inside] - r0, partition[inside]]
        return chosen
