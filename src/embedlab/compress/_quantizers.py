"""Quantizers: rows to compact byte codes and back, and the approximate inner products of queries with codes.

numpy quantizers (float32, float16, int8, int4, binary) score a block of codes by decoding it and multiplying
with the queries through BLAS. faiss quantizers (PQ, OPQ, 4-bit fast-scan PQ, RaBitQ) search their codes with
faiss's own asymmetric distance computation.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import ClassVar

import faiss
import numpy as np
from scipy.linalg import orthogonal_procrustes

from embedlab.exceptions import ConfigurationError, EmbeddingDataError

__all__ = ["QUANTIZER_TYPES", "FaissQuantizer", "Quantizer", "SignQuantizer"]

logger = logging.getLogger(__name__)

#: Alternating steps of ITQ (the paper's 50), on at most this many training rows.
_ITQ_ITERATIONS = 50
_ITQ_TRAIN_ROWS = 16_384
#: Bits per dimension of RaBitQ's quantized queries.
_RABITQ_QUERY_BITS = 8
#: Largest magnitude float16 holds.
_FLOAT16_MAX = float(np.finfo(np.float16).max)


class Quantizer(ABC):
    """Maps rows of dimension ``dim`` to ``bytes_per_vector`` uint8 codes."""

    name: ClassVar[str]
    #: Array attributes that make up the fitted state (serialised with the codec).
    state: ClassVar[tuple[str, ...]] = ()
    #: Fewest training rows the quantizer can be fitted on.
    min_train_rows: ClassVar[int] = 1

    def __init__(self, argument: str | None, dim: int) -> None:
        self.argument = argument
        self.dim = dim

    @property
    @abstractmethod
    def bytes_per_vector(self) -> int:
        """Code bytes of one row."""

    def fit(self, X: np.ndarray, rng: np.random.RandomState) -> None:  # noqa: B027 (a hook: float codecs learn nothing)
        """Learn the quantizer from training rows (nothing to learn by default)."""

    def check_state(self) -> None:  # noqa: B027 (a hook: array states are checked by their shapes where used)
        """Refuse a fitted state read from a document that this quantizer could not have written.

        Raises
        ------
        EmbeddingDataError
            When the state is damaged.
        """

    @abstractmethod
    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes of shape (n, bytes_per_vector), uint8."""

    @abstractmethod
    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Reconstructed rows of shape (n, dim), float32."""

    def prepare_queries(self, Q: np.ndarray) -> np.ndarray:
        """Queries in the form ``block_scores`` takes."""
        return Q

    def block_scores(self, prepared: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Approximate inner products (n_queries, n_codes) of prepared queries with a block of codes."""
        return prepared @ self.decode(codes).T


class Float32(Quantizer):
    """Uncompressed float32: the reference, four bytes per dimension."""

    name = "float32"

    @property
    def bytes_per_vector(self) -> int:
        return 4 * self.dim

    def encode(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(X, dtype=np.float32).view(np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(codes).view(np.float32)


class Float16(Quantizer):
    """IEEE half precision: two bytes per dimension, relative error below 2^-11 within +-65504."""

    name = "float16"

    @property
    def bytes_per_vector(self) -> int:
        return 2 * self.dim

    def encode(self, X: np.ndarray) -> np.ndarray:
        largest = float(np.abs(X).max(initial=0.0))
        if largest > _FLOAT16_MAX:
            raise ConfigurationError(
                f"float16 holds magnitudes up to {_FLOAT16_MAX:g} but the rows reach {largest:g}; normalise them "
                "or use int8."
            )
        return np.ascontiguousarray(X, dtype=np.float16).view(np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(codes).view(np.float16).astype(np.float32)


class _ScalarQuantizer(Quantizer):
    """Uniform scalar quantization of each dimension over its calibrated range, clipped at percentiles.

    The range of dimension j is the central ``kept`` percent of the training values (the rest is clipped),
    divided into ``2^bits`` levels; codes decode to ``low + level * step``.

    References
    ----------
    Jacob et al. (2018), "Quantization and training of neural networks for efficient integer-arithmetic-only
    inference", CVPR (affine quantization with calibrated ranges).
    """

    bits: ClassVar[int]
    default_kept: ClassVar[float]
    state = ("low_", "step_")

    def __init__(self, argument: str | None, dim: int) -> None:
        super().__init__(argument, dim)
        try:
            kept = self.default_kept if argument is None else float(argument)
        except ValueError:
            kept = -1.0
        if not 50.0 <= kept <= 100.0:
            raise ConfigurationError(
                f"'{self.name}:{argument}': the argument is the central percentage of each dimension's range kept, "
                "between 50 and 100."
            )
        self.kept = kept

    @property
    def levels(self) -> int:
        return 2**self.bits

    def fit(self, X: np.ndarray, rng: np.random.RandomState) -> None:
        tail = (100.0 - self.kept) / 2
        low, high = np.percentile(X, [tail, 100.0 - tail], axis=0)
        self.low_ = low.astype(np.float32)
        self.step_ = ((high - low) / (self.levels - 1)).astype(np.float32)

    def _levels(self, X: np.ndarray) -> np.ndarray:
        safe_step = np.where(self.step_ > 0, self.step_, 1.0)
        return np.clip(np.rint((X - self.low_) / safe_step), 0, self.levels - 1).astype(np.uint8)

    def _from_levels(self, levels: np.ndarray) -> np.ndarray:
        return levels.astype(np.float32) * self.step_ + self.low_


class Int8(_ScalarQuantizer):
    """8-bit scalar quantization: one byte per dimension, over each dimension's full range by default.

    With 255 steps the rounding error is small and clipping the tails costs more than it saves (as in faiss's
    SQ8 and sentence-transformers' int8, which also use the full range).
    """

    name = "int8"
    bits = 8
    default_kept = 100.0

    @property
    def bytes_per_vector(self) -> int:
        return self.dim

    def encode(self, X: np.ndarray) -> np.ndarray:
        return self._levels(X)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self._from_levels(codes)


class Int4(_ScalarQuantizer):
    """4-bit scalar quantization: two dimensions per byte (even dimension in the low nibble)."""

    name = "int4"
    bits = 4
    default_kept = 99.0

    @property
    def bytes_per_vector(self) -> int:
        return (self.dim + 1) // 2

    def encode(self, X: np.ndarray) -> np.ndarray:
        levels = self._levels(X)
        if self.dim % 2:
            levels = np.pad(levels, ((0, 0), (0, 1)))
        return levels[:, 0::2] | (levels[:, 1::2] << 4)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        levels = np.empty((codes.shape[0], 2 * codes.shape[1]), dtype=np.uint8)
        levels[:, 0::2] = codes & 0x0F
        levels[:, 1::2] = codes >> 4
        return self._from_levels(levels[:, : self.dim])


class SignQuantizer(Quantizer):
    """Codes of packed sign bits that decode linearly, ``x̂ = s D + c`` with ``s`` in {-1, +1}^n_bits.

    Queries are scored asymmetrically at full precision: ``q . x̂ = (q D^T) . s + q . c``, one product of the
    prepared queries with the unpacked signs per block.
    """

    @property
    @abstractmethod
    def n_bits(self) -> int:
        """Sign bits per row."""

    @abstractmethod
    def _decoder(self) -> tuple[np.ndarray, np.ndarray]:
        """``D`` of shape (n_bits, dim) and ``c`` of shape (dim,)."""

    def _signs(self, codes: np.ndarray) -> np.ndarray:
        return 2.0 * np.unpackbits(codes, axis=1, count=self.n_bits).astype(np.float32) - 1.0

    def decode(self, codes: np.ndarray) -> np.ndarray:
        matrix, offset = self._decoder()
        return self._signs(codes) @ matrix + offset

    def prepare_queries(self, Q: np.ndarray) -> np.ndarray:
        matrix, offset = self._decoder()
        return np.hstack([Q @ matrix.T, (Q @ offset)[:, None]])

    def block_scores(self, prepared: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return prepared[:, :-1] @ self._signs(codes).T + prepared[:, -1:]


class Binary(SignQuantizer):
    """One bit per dimension: the sign of each (centred, optionally ITQ-rotated) coordinate.

    Modes: ``sign`` thresholds at 0; ``center`` at the training mean; ``itq`` centres, then rotates by the
    iterative-quantization rotation that minimises the binarisation error. Codes decode to
    ``mean + (sign * scale) R^T`` with ``scale`` the mean absolute value of each (rotated) centred coordinate,
    so queries are scored asymmetrically, at full precision, against the decoded signs.

    References
    ----------
    Charikar (2002), "Similarity estimation techniques from rounding algorithms", STOC (sign bits).
    Gong and Lazebnik (2011), "Iterative quantization: a Procrustean approach to learning binary codes", CVPR.
    """

    name = "binary"
    state = ("mean_", "scale_", "rotation_")
    modes = ("sign", "center", "itq")

    def __init__(self, argument: str | None, dim: int) -> None:
        super().__init__(argument, dim)
        self.mode = argument or "sign"
        if self.mode not in self.modes:
            raise ConfigurationError(f"'binary:{argument}': the mode must be one of {', '.join(self.modes)}.")

    @property
    def bytes_per_vector(self) -> int:
        return (self.dim + 7) // 8

    def fit(self, X: np.ndarray, rng: np.random.RandomState) -> None:
        self.mean_ = (
            np.zeros(self.dim, np.float32)
            if self.mode == "sign"
            else X.mean(axis=0, dtype=np.float64).astype(np.float32)
        )
        centred = X - self.mean_
        self.rotation_ = np.eye(self.dim, dtype=np.float32)
        if self.mode == "itq":
            sample = centred[rng.choice(centred.shape[0], min(centred.shape[0], _ITQ_TRAIN_ROWS), replace=False)]
            rotation = np.linalg.qr(rng.normal(size=(self.dim, self.dim)))[0].astype(np.float32)
            for _ in range(_ITQ_ITERATIONS):
                rotation, _ = orthogonal_procrustes(sample, np.sign(sample @ rotation), check_finite=False)
            self.rotation_ = rotation.astype(np.float32)
        self.scale_ = np.abs(centred @ self.rotation_).mean(axis=0).astype(np.float32)

    @property
    def n_bits(self) -> int:
        return self.dim

    def encode(self, X: np.ndarray) -> np.ndarray:
        return np.packbits((X - self.mean_) @ self.rotation_ > 0, axis=1)

    def _decoder(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scale_[:, None] * self.rotation_.T, self.mean_


# The most faiss may hold while it encodes one block of rows.
_ENCODE_BYTES = 256 * 2**20


def encoding_table_bytes(name: str, m: int, dim: int, n_rows: int) -> int:
    """What faiss holds while it encodes ``n_rows`` rows with the product quantizer ``name`` (``pq`` or ``opq``)
    of ``m`` sub-quantizers on ``dim`` dimensions: the distance tables, computed with BLAS when a sub-vector has
    16 dimensions or more (faiss's rule; shorter ones are encoded row by row), in blocks of :data:`_ENCODE_BYTES`."""
    if name not in ("pq", "opq") or dim // m < 16:
        return 0
    return min(n_rows * 4 * m * 2**_ProductQuantizer.bits, _ENCODE_BYTES)


class FaissQuantizer(Quantizer):
    """A quantizer backed by a faiss index that searches its codes itself (asymmetric distance computation)."""

    state = ("index_bytes_",)

    @abstractmethod
    def _new_index(self) -> faiss.Index:
        """The untrained faiss index (inner-product metric)."""

    @property
    def bytes_per_vector(self) -> int:
        return int(self._index().sa_code_size())

    def _index(self) -> faiss.Index:
        if not hasattr(self, "index_bytes_"):
            return self._new_index()
        return faiss.deserialize_index(self.index_bytes_)

    def check_state(self) -> None:
        """The serialised faiss index must be the trained index of this spec: its class, dimension, metric and
        code size (faiss searches a damaged one with another metric, or aborts, instead of refusing it)."""
        expected = self._new_index()
        try:
            index = faiss.deserialize_index(np.ascontiguousarray(self.index_bytes_, dtype=np.uint8))
        except RuntimeError as error:
            raise EmbeddingDataError(f"the fitted '{self.name}' index is damaged ({error}).") from error
        found = (type(index).__name__, index.d, index.metric_type, index.is_trained, index.sa_code_size())
        wanted = (type(expected).__name__, expected.d, expected.metric_type, True, expected.sa_code_size())
        if found != wanted:
            raise EmbeddingDataError(
                f"the fitted '{self.name}' index is damaged: (class, dimension, metric, trained, code bytes) is "
                f"{found}, not {wanted}."
            )

    def _check_train_rows(self, X: np.ndarray) -> None:
        if X.shape[0] < self.min_train_rows:
            raise ConfigurationError(
                f"'{self.name}:{self.argument}' needs at least {self.min_train_rows} training rows, got {X.shape[0]}."
            )

    def fit(self, X: np.ndarray, rng: np.random.RandomState) -> None:
        self._check_train_rows(X)
        index = self._new_index()
        index.train(np.ascontiguousarray(X, dtype=np.float32))
        self.index_bytes_ = faiss.serialize_index(index)

    @property
    def encode_row_bytes(self) -> int:
        """What faiss holds per row while it encodes (a product quantizer: the row's table of distances to every
        centroid of every sub-quantizer)."""
        return 4 * self.dim

    def encode(self, X: np.ndarray) -> np.ndarray:
        # faiss encodes a whole call at once: a product quantizer's tables for 65,536 rows of pq:32 are 2 GiB (as fast
        # as blocks of 256 MiB; blocks of 64 MiB took 30% longer).
        X = np.ascontiguousarray(X, dtype=np.float32)
        index, step = self._index(), max(1, _ENCODE_BYTES // self.encode_row_bytes)
        if X.shape[0] <= step:
            return index.sa_encode(X)
        return np.concatenate([index.sa_encode(X[start : start + step]) for start in range(0, X.shape[0], step)])

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self._index().sa_decode(np.ascontiguousarray(codes))

    def searcher(self, codes: np.ndarray) -> faiss.Index:
        """A faiss index holding ``codes``, ready to search."""
        index = self._index()
        index.add_sa_codes(np.ascontiguousarray(codes))
        return index


class _ProductQuantizer(FaissQuantizer):
    """Product quantization: ``M`` sub-vectors, each replaced by the nearest of ``2^bits`` learnt centroids.

    References
    ----------
    Jégou, Douze and Schmid (2011), "Product quantization for nearest neighbor search", IEEE TPAMI.
    """

    bits: ClassVar[int] = 8

    def __init__(self, argument: str | None, dim: int) -> None:
        super().__init__(argument, dim)
        self.m = int(argument or 0)
        if self.m < 1 or dim % self.m:
            raise ConfigurationError(
                f"'{self.name}:{argument}': the number of sub-quantizers must divide the dimension {dim}."
            )

    @property
    def min_train_rows(self) -> int:  # type: ignore[override]
        return 2**self.bits

    @property
    def encode_row_bytes(self) -> int:
        return 4 * self.m * 2**self.bits


class PQ(_ProductQuantizer):
    __doc__ = _ProductQuantizer.__doc__
    name = "pq"

    def _new_index(self) -> faiss.Index:
        return faiss.IndexPQ(self.dim, self.m, self.bits, faiss.METRIC_INNER_PRODUCT)


class OPQ(_ProductQuantizer):
    """Optimised product quantization: a learnt rotation that balances the sub-vectors, then PQ.

    References
    ----------
    Ge, He, Ke and Sun (2013), "Optimized product quantization for approximate nearest neighbor search", CVPR.
    """

    name = "opq"
    state = ("index_bytes_", "rotation_")

    def _new_index(self) -> faiss.Index:
        return faiss.IndexPQ(self.dim, self.m, self.bits, faiss.METRIC_INNER_PRODUCT)

    def fit(self, X: np.ndarray, rng: np.random.RandomState) -> None:
        self._check_train_rows(X)  # before the rotation, whose k-means faiss would abort on too few rows
        opq = faiss.OPQMatrix(self.dim, self.m)
        opq.train(np.ascontiguousarray(X, dtype=np.float32))
        # faiss applies y = A x; keep A^T so that rows rotate as X @ rotation_
        self.rotation_ = faiss.vector_to_array(opq.A).reshape(self.dim, self.dim).T.astype(np.float32).copy()
        super().fit(X @ self.rotation_, rng)

    def encode(self, X: np.ndarray) -> np.ndarray:
        return super().encode(X @ self.rotation_)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return super().decode(codes) @ self.rotation_.T

    def prepare_queries(self, Q: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(Q @ self.rotation_, dtype=np.float32)


class FastScanPQ(_ProductQuantizer):
    """4-bit product quantization searched with SIMD look-up tables (faiss's fast-scan).

    References
    ----------
    André, Kermarrec and Le Scouarnec (2015), "Cache locality is not enough: high-performance nearest
    neighbor search with product quantization fast scan", VLDB.
    """

    name = "pqfs"
    bits = 4

    def _new_index(self) -> faiss.Index:
        return faiss.IndexPQFastScan(self.dim, self.m, self.bits, faiss.METRIC_INNER_PRODUCT)

    @property
    def bytes_per_vector(self) -> int:
        return (self.m * self.bits + 7) // 8

    def searcher(self, codes: np.ndarray) -> faiss.Index:
        # fast-scan indexes store codes in SIMD blocks and take no raw codes: re-adding the decoded rows gives
        # back the same codes (each sub-vector is exactly its centroid)
        index = self._index()
        index.add(self.decode(codes))
        return index


class RaBitQ(FaissQuantizer):
    """RaBitQ: a random rotation, then ``bits`` bits per dimension with per-row correction factors that make
    the inner-product estimate unbiased; queries are quantized to 8 bits per dimension (faiss's ``qb``; its
    unquantized path is about 100 times slower and no more accurate here).

    References
    ----------
    Gao and Long (2024), "RaBitQ: quantizing high-dimensional vectors with a theoretical error bound for
    approximate nearest neighbor search", SIGMOD.
    Gao, Gou, Xu, Yang, Long and Wong (2025), "Practical and asymptotically optimal quantization of
    high-dimensional vectors in Euclidean space for approximate nearest neighbor search", SIGMOD (extended
    RaBitQ, more than one bit).
    """

    name = "rabitq"
    bit_choices = (1, 2, 4)

    def __init__(self, argument: str | None, dim: int) -> None:
        super().__init__(argument, dim)
        self.bits = int(argument) if argument in {str(b) for b in self.bit_choices} else 0
        if not self.bits:
            raise ConfigurationError(f"'rabitq:{argument}': bits per dimension must be 1, 2 or 4.")

    def _new_index(self) -> faiss.Index:
        index = faiss.IndexRaBitQ(self.dim, faiss.METRIC_INNER_PRODUCT, self.bits)
        index.qb = _RABITQ_QUERY_BITS
        return index

    def _index(self) -> faiss.Index:
        index = super()._index()
        index.qb = _RABITQ_QUERY_BITS
        return index


QUANTIZER_TYPES: dict[str, type[Quantizer]] = {
    cls.name: cls for cls in (Float32, Float16, Int8, Int4, Binary, PQ, OPQ, FastScanPQ, RaBitQ)
}
