"""``Codec``: a spec's transforms and quantizer, fitted together; encodes rows and searches codes."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int
from embedlab._json import array_from_json, array_to_json, document_errors
from embedlab.compress._learnt import LEARNT_QUANTIZER_TYPES, LEARNT_TRANSFORM_TYPES
from embedlab.compress._quantizers import QUANTIZER_TYPES, FaissQuantizer, Quantizer
from embedlab.compress._spec import CodecSpec, parse_spec
from embedlab.compress._transforms import TRANSFORM_TYPES, Transform
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.validation import Rows, prepare
from embedlab.neighbors import merge_top_k

__all__ = ["CODEC_METRICS", "Codec", "CompressMetric"]

logger = logging.getLogger(__name__)

CompressMetric = Literal["cosine", "ip"]
#: Codecs rank by inner product: of unit-normalised rows (cosine) or of the rows as they are (ip).
CODEC_METRICS = ("cosine", "ip")
#: Query-by-code scores computed per block (16 MB of float32).
_SCORE_BLOCK_VALUES = 2**22
#: Format of the serialised codec; bumped when the layout changes.
FORMAT_VERSION = 1
_TRANSFORMS: dict[str, type[Transform]] = {**TRANSFORM_TYPES, **LEARNT_TRANSFORM_TYPES}
_QUANTIZERS: dict[str, type[Quantizer]] = {**QUANTIZER_TYPES, **LEARNT_QUANTIZER_TYPES}


def _state_to_json(stage: Transform | Quantizer) -> dict[str, Any]:
    return {name: array_to_json(getattr(stage, name)) for name in stage.state}


def _load_state(stage: Transform | Quantizer, state: dict[str, Any]) -> None:
    for name in stage.state:
        setattr(stage, name, array_from_json(state[name]))


#: More dimensions than any embedding model has: a codec document that claims more is damaged.
_MAX_DIM = 2**20


class Codec:
    """The transforms and quantizer of a codec spec, fitted on training rows.

    Parameters
    ----------
    spec : str or CodecSpec
        For example ``"int8"``, ``"pca:256+int8"`` or ``"opq:48"`` (see :func:`parse_spec`); a ``rescore``
        stage is kept in ``spec`` for the collection that uses the codec but does not change the codes.
    metric : {"cosine", "ip"}, default="cosine"
        Cosine unit-normalises rows and queries first; both rank by inner product.
    max_train_rows : int, default=65536
        Rows sampled to fit the transforms and quantizer.
    random_state : int, RandomState or None, default=0

    Attributes
    ----------
    dim_ : int
        Dimension of the input rows.
    transforms_ : list of Transform
    quantizer_ : Quantizer
    n_train_rows_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 32)).astype(np.float32)
    >>> codec = Codec("pca:16+int8").fit(X)
    >>> codes = codec.encode(X)
    >>> codes.shape, codec.bytes_per_vector
    ((500, 16), 16)

    Search the codes through the search layer with :class:`~embedlab.compress.CodecSearcher`.
    """

    def __init__(
        self,
        spec: str | CodecSpec,
        *,
        metric: CompressMetric = "cosine",
        max_train_rows: int = 65_536,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.spec = parse_spec(spec) if isinstance(spec, str) else spec
        self.metric = metric
        self.max_train_rows = max_train_rows
        self.random_state = random_state

    def __repr__(self) -> str:
        return f"Codec({str(self.spec)!r}, metric={self.metric!r})"

    def _build(self, dim: int) -> None:
        self.dim_ = dim
        self.transforms_: list[Transform] = []
        for stage in self.spec.transforms:
            transform = _TRANSFORMS[stage.name](stage.argument, dim)
            self.transforms_.append(transform)
            dim = transform.dim_out
        quantizer = self.spec.quantizer_stage
        self.quantizer_: Quantizer = _QUANTIZERS[quantizer.name](quantizer.argument, dim)

    def _prepare(self, X: object, name: str, dim: int | None = None) -> Rows:
        """``X`` prepared for the codec's metric (codecs rank by inner product: cosine or ip)."""
        return prepare(X, check_choice(self.metric, "metric", CODEC_METRICS), name=name, dim=dim)

    def fit(self, X: object, queries: object | None = None) -> Codec:
        """Fit every stage, in order, on a sample of ``max_train_rows`` rows of ``X``.

        ``X`` and ``queries`` are array-likes or :class:`~embedlab.io.validation.Rows` prepared for the metric.
        ``queries`` are sample queries for query-aware transforms (``leanvec-ood``); others ignore them.
        """
        rows = self._prepare(X, "X")
        rng = check_random_state(self.random_state)
        return self.fit_sample(rows.take(self.train_positions(rows.n, rng)), queries, rng)

    def train_positions(self, n_rows: int, rng: np.random.RandomState) -> np.ndarray:
        """The sorted positions, among ``n_rows``, of the rows :meth:`fit` trains on (all of them up to
        ``max_train_rows``); drawn from ``rng``, which :meth:`fit_sample` then goes on drawing from."""
        if n_rows > self.max_train_rows:
            return np.sort(rng.choice(n_rows, self.max_train_rows, replace=False))
        return np.arange(n_rows)

    def fit_sample(self, rows: object, queries: object | None, rng: np.random.RandomState) -> Codec:
        """Fit every stage on the training rows themselves: :meth:`fit`'s second half. Rows gathered from the
        shards of a set on disk at :meth:`train_positions`, and prepared for the metric, give the codec
        :meth:`fit` gives on the whole set."""
        rows = self._prepare(rows, "training rows").vectors
        sample_queries = None if queries is None else self._prepare(queries, "queries", rows.shape[1]).vectors
        self._build(rows.shape[1])
        self.n_train_rows_ = int(rows.shape[0])
        for transform in self.transforms_:
            transform.fit(rows, sample_queries, rng)
            rows = transform.database(rows)
            if sample_queries is not None:
                sample_queries = transform.queries(sample_queries)
        self.quantizer_.fit(np.ascontiguousarray(rows, dtype=np.float32), rng)
        return self

    @property
    def bytes_per_vector(self) -> int:
        """Code bytes per row."""
        return self.quantizer_.bytes_per_vector

    def _check_fitted(self) -> None:
        if not hasattr(self, "quantizer_"):
            raise ConfigurationError(f"{self!r} is not fitted; call fit(X) first.")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Prepared rows (validated, normalised) through every transform: what the quantizer encodes."""
        for transform in self.transforms_:
            X = transform.database(X)
        return np.ascontiguousarray(X, dtype=np.float32)

    def encode(self, X: object) -> np.ndarray:
        """Codes of shape (n, bytes_per_vector), uint8, of an array-like or prepared :class:`Rows`."""
        self._check_fitted()
        rows = self._prepare(X, "X", self.dim_).vectors
        return np.ascontiguousarray(self.quantizer_.encode(self.transform(rows)), dtype=np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Reconstructed rows in the space the quantizer works in (after the transforms), float32."""
        self._check_fitted()
        return self.quantizer_.decode(self.checked_codes(codes))

    def checked_codes(self, codes: np.ndarray) -> np.ndarray:
        """``codes`` when they are this codec's (uint8, ``bytes_per_vector`` columns), else an EmbeddingDataError."""
        self._check_fitted()
        codes = np.asarray(codes)
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != self.bytes_per_vector:
            raise EmbeddingDataError(
                f"codes must be uint8 of shape (n, {self.bytes_per_vector}) for {self.spec.codes_spec}, got "
                f"{codes.dtype} {codes.shape}."
            )
        return codes

    def top_k(self, codes: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` codes of highest approximate inner product with each query row: the searchers' kernel.

        ``queries`` are prepared rows (``prepare(Q, metric).vectors``). Returns scores (n_queries, k) float32,
        descending, and row positions (n_queries, k) int64. Callers search through
        :class:`~embedlab.compress.CodecSearcher`, which checks the queries and ``k``.
        """
        Q = queries
        offset = np.zeros(Q.shape[0], dtype=np.float32)
        for transform in self.transforms_:
            offset += transform.query_offset(Q)
            Q = transform.queries(Q)
        prepared = self.quantizer_.prepare_queries(np.ascontiguousarray(Q, dtype=np.float32))
        if isinstance(self.quantizer_, FaissQuantizer):
            scores, indices = self.quantizer_.searcher(codes).search(prepared, k)
        else:
            scores, indices = self._blocked_top_k(codes, prepared, k)
        return scores + offset[:, None], indices

    def _blocked_top_k(self, codes: np.ndarray, prepared: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        step = int(np.clip(_SCORE_BLOCK_VALUES // max(prepared.shape[0], 1), 1024, 65_536))

        def blocks():  # the best k of each block of codes, merged in one heap
            for start in range(0, codes.shape[0], step):
                scores = np.asarray(self.quantizer_.block_scores(prepared, codes[start : start + step]), np.float32)
                kept = min(k, scores.shape[1])
                if kept < scores.shape[1]:
                    top = np.argpartition(-scores, kept - 1, axis=1)[:, :kept]
                else:
                    top = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
                yield np.take_along_axis(scores, top, axis=1), top + start

        return merge_top_k(blocks(), prepared.shape[0], k, largest=True)

    def to_dict(self) -> dict[str, Any]:
        """The fitted codec as a JSON-ready document (arrays base64-encoded)."""
        self._check_fitted()
        return {
            "format": FORMAT_VERSION,
            "spec": str(self.spec),
            "metric": self.metric,
            "dim": self.dim_,
            "bytes_per_vector": self.bytes_per_vector,
            "n_train_rows": self.n_train_rows_,
            "transforms": [_state_to_json(transform) for transform in self.transforms_],
            "quantizer": _state_to_json(self.quantizer_),
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Codec:
        """The codec saved by :meth:`to_dict`.

        Raises
        ------
        EmbeddingDataError
            When the document is not a codec of this format.
        """
        with document_errors("codec document", "embedlab codec"):
            if document["format"] != FORMAT_VERSION:
                raise EmbeddingDataError(
                    f"the codec has format {document['format']}; this embedlab reads format {FORMAT_VERSION}."
                )
            codec = cls(document["spec"], metric=document["metric"])
            codec._build(check_int(document["dim"], "dim", maximum=_MAX_DIM))
            codec.n_train_rows_ = int(document["n_train_rows"])
            for transform, state in zip(codec.transforms_, document["transforms"], strict=True):
                _load_state(transform, state)
            _load_state(codec.quantizer_, document["quantizer"])
            codec.quantizer_.check_state()
            if codec.bytes_per_vector != document["bytes_per_vector"]:
                raise EmbeddingDataError(
                    f"the codec document says {document['bytes_per_vector']} bytes per vector but its state gives "
                    f"{codec.bytes_per_vector}."
                )
        return codec
