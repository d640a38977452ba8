"""The one input validator: every public entry point passes its vectors (and ids) through here.

It turns array-likes into C-contiguous float32 matrices and finds the rows that no estimator can use (NaN or
Inf values, all-zero vectors, repeated ids). Errors name the input, the problem, how many rows are affected,
the first offending ids and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import sparse
from sklearn.utils.extmath import row_norms
from sklearn.utils.validation import check_is_fitted

from embedlab._checks import check_choice, check_int
from embedlab._json import plain
from embedlab.exceptions import ConfigurationError, EmbeddingDataError

__all__ = [
    "METRICS",
    "InvalidRows",
    "Metric",
    "OnInvalid",
    "Rows",
    "ValidationReport",
    "as_float32_matrix",
    "check_k",
    "check_vectors",
    "find_invalid_rows",
    "fit_rows",
    "new_rows",
    "prepare",
    "repeated_positions",
    "unit_rows",
]

OnInvalid = Literal["raise", "drop"]
Metric = Literal["cosine", "l2", "ip"]
#: The metrics of embedlab: cosine is the inner product of unit-normalised rows.
METRICS = ("cosine", "l2", "ip")
_SCAN_ROWS = 65_536
_SHOWN_IDS = 5


@dataclass(frozen=True)
class InvalidRows:
    """Rows of one input that share one problem.

    Attributes
    ----------
    reason : str
        What is wrong, for example ``"NaN or Inf values"``.
    positions : numpy.ndarray of int64
        Row positions in the input, ascending.
    ids : numpy.ndarray
        The ids of those rows.
    """

    reason: str
    positions: np.ndarray
    ids: np.ndarray

    def describe(self, n_rows: int) -> str:
        """One sentence: how many rows, out of how many, and the first ids."""
        shown = ", ".join(repr(plain(i)) for i in self.ids[:_SHOWN_IDS])
        more = ", ..." if len(self.ids) > _SHOWN_IDS else ""
        return f"{len(self.positions)} of {n_rows} rows have {self.reason} (ids {shown}{more})"


@dataclass(frozen=True)
class ValidationReport:
    """What validation found and, with ``on_invalid="drop"``, what it dropped.

    Attributes
    ----------
    n_input : int
        Rows before validation.
    dropped : tuple of InvalidRows
        The rows removed, by reason. Empty when nothing was dropped.
    """

    n_input: int
    dropped: tuple[InvalidRows, ...] = field(default_factory=tuple)

    @property
    def n_dropped(self) -> int:
        """Number of distinct rows dropped."""
        if not self.dropped:
            return 0
        return int(np.unique(np.concatenate([d.positions for d in self.dropped])).size)

    def to_dict(self) -> dict:
        """A JSON-ready description listing every dropped id."""
        return {
            "n_input": self.n_input,
            "n_dropped": self.n_dropped,
            "dropped": [
                {"reason": d.reason, "count": len(d.positions), "ids": [plain(i) for i in d.ids]} for d in self.dropped
            ],
        }


def as_float32_matrix(vectors: object, *, name: str = "vectors") -> np.ndarray:
    """Convert ``vectors`` to a C-contiguous float32 matrix, checking only type and shape.

    Parameters
    ----------
    vectors : array-like of shape (n, d)
        Numeric values; float16, float64 and integer inputs are converted.
    name : str, default="vectors"
        How to call the input in error messages (a file name, an argument name).

    Returns
    -------
    numpy.ndarray of shape (n, d), float32
        The same array when it already is float32 and C-contiguous (memory maps stay memory maps).

    Raises
    ------
    EmbeddingDataError
        If the values are not numeric, not two-dimensional, or have no rows or no columns.

    Examples
    --------
    >>> as_float32_matrix([[1, 2], [3, 4]]).dtype
    dtype('float32')
    """
    if sparse.issparse(vectors):
        raise EmbeddingDataError(
            f"{name}: sparse input is not supported (embeddings are dense); pass a dense array, e.g. X.toarray()."
        )
    try:
        array = np.asarray(vectors)
    except ValueError as err:  # ragged nested sequences
        raise EmbeddingDataError(
            f"{name}: the vectors are ragged (rows of different lengths) and cannot form a matrix: {err}. "
            "Every vector must have the same number of values."
        ) from err
    if np.iscomplexobj(array):
        raise EmbeddingDataError(f"{name}: Complex data not supported (dtype {array.dtype}); embeddings are real.")
    if array.dtype == object:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise EmbeddingDataError(
                f"{name}: an object array whose values are not all numbers ({err}). Pass a numeric array of shape "
                "(n_rows, dim)."
            ) from err
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise EmbeddingDataError(
            f"{name}: vectors must be numeric, got dtype {array.dtype}. Pass a numeric array of shape (n_rows, dim)."
        )
    if array.ndim != 2:
        hint = " Reshape your data: for a single vector use vectors.reshape(1, -1)." if array.ndim == 1 else ""
        raise EmbeddingDataError(f"{name}: expected a 2-D array of shape (n_rows, dim), got shape {array.shape}.{hint}")
    if array.shape[0] == 0:
        raise EmbeddingDataError(f"{name}: the input is empty (0 rows). Check the file or the filter.")
    if array.shape[1] == 0:
        raise EmbeddingDataError(
            f"{name}: the vectors have dimension 0: 0 feature(s) (shape={array.shape}) while a minimum of 1 is "
            "required. Check the vector column."
        )
    if array.dtype == np.float32 and array.flags.c_contiguous:
        return array
    return np.ascontiguousarray(array, dtype=np.float32)


def find_invalid_rows(
    vectors: np.ndarray, ids: np.ndarray | None = None, *, allow_zero: bool = False
) -> tuple[InvalidRows, ...]:
    """Find the rows no estimator can use.

    Scans block-wise, so a memory-mapped matrix is never copied whole.

    Parameters
    ----------
    vectors : numpy.ndarray of shape (n, d)
        Assumed already converted by :func:`as_float32_matrix`.
    ids : numpy.ndarray of shape (n,), optional
        Row ids; positions are used when omitted. Repeated ids are reported (every occurrence after
        the first).
    allow_zero : bool, default=False
        Whether all-zero vectors are acceptable (they are not for cosine geometry).

    Returns
    -------
    tuple of InvalidRows
        One entry per problem found; empty when every row is usable.
    """
    n = vectors.shape[0]
    labels = np.arange(n, dtype=np.int64) if ids is None else ids
    non_finite, huge, zero = [], [], []
    for start in range(0, n, _SCAN_ROWS):
        block = np.asarray(vectors[start : start + _SCAN_ROWS])
        finite = np.isfinite(block).all(axis=1)
        with np.errstate(over="ignore", invalid="ignore"):  # what overflows is what this looks for
            squares = np.einsum("ij,ij->i", block, block)
        non_finite.append(np.flatnonzero(~finite) + start)
        huge.append(np.flatnonzero(finite & ~np.isfinite(squares)) + start)
        if not allow_zero:
            with np.errstate(invalid="ignore"):  # signalling NaNs are reported as non-finite above
                zero.append(np.flatnonzero(~block.any(axis=1)) + start)
    problems = []
    bad = np.concatenate(non_finite)
    if bad.size:
        problems.append(InvalidRows("NaN or Inf values", bad, labels[bad]))
    bad = np.concatenate(huge)
    if bad.size:
        problems.append(
            InvalidRows("values too large to compare (the squared norm overflows float32)", bad, labels[bad])
        )
    if zero:
        bad = np.concatenate(zero)
        if bad.size:
            problems.append(InvalidRows("all-zero vectors", bad, labels[bad]))
    if ids is not None:
        repeated = repeated_positions(ids)
        if repeated.size:
            problems.append(InvalidRows("a duplicate id (an earlier row has the same id)", repeated, ids[repeated]))
    return tuple(problems)


def repeated_positions(ids: np.ndarray) -> np.ndarray:
    """Positions of every id occurrence after its first one, ascending."""
    _, first = np.unique(ids, return_index=True)
    if first.size == ids.size:
        return np.empty(0, dtype=np.int64)
    keep = np.zeros(ids.size, dtype=bool)
    keep[first] = True
    return np.flatnonzero(~keep)


def check_vectors(
    vectors: object,
    *,
    name: str = "vectors",
    ids: Sequence | np.ndarray | None = None,
    on_invalid: OnInvalid = "raise",
    allow_zero: bool = False,
    min_rows: int = 1,
) -> tuple[np.ndarray, np.ndarray | None, ValidationReport]:
    """Validate vectors (and their ids), raising on unusable rows or dropping them on request.

    Parameters
    ----------
    vectors : array-like of shape (n, d)
        The embeddings.
    name : str, default="vectors"
        How to call the input in messages (a file name, an argument name).
    ids : array-like of shape (n,), optional
        Row ids, checked for uniqueness and used in messages.
    on_invalid : {"raise", "drop"}, default="raise"
        ``"raise"`` fails on the first problem; ``"drop"`` removes the bad rows and lists them in the report.
    allow_zero : bool, default=False
        Accept all-zero vectors.
    min_rows : int, default=1
        Fewest rows the caller can work with, checked after dropping.

    Returns
    -------
    vectors : numpy.ndarray of shape (m, d), float32
        C-contiguous; ``m = n`` unless rows were dropped.
    ids : numpy.ndarray of shape (m,) or None
        The ids of the kept rows (None when none were given).
    report : ValidationReport
        What was dropped.

    Raises
    ------
    EmbeddingDataError
        On unusable rows with ``on_invalid="raise"``, a length mismatch between vectors and ids, or fewer
        than ``min_rows`` rows.

    Examples
    --------
    >>> X, ids, report = check_vectors([[1.0, 0.0], [float("nan"), 1.0]], ids=["a", "b"], on_invalid="drop")
    >>> X.shape, ids.tolist(), report.n_dropped
    ((1, 2), ['a'], 1)
    """
    check_choice(on_invalid, "on_invalid", ("raise", "drop"))
    matrix = as_float32_matrix(vectors, name=name)
    id_array = None if ids is None else np.asarray(ids)
    if id_array is not None and id_array.shape != (matrix.shape[0],):
        raise EmbeddingDataError(
            f"{name}: {matrix.shape[0]} vectors but {id_array.size} ids; give exactly one id per row."
        )
    problems = find_invalid_rows(matrix, id_array, allow_zero=allow_zero)
    n = matrix.shape[0]
    if problems and on_invalid == "raise":
        details = "; ".join(p.describe(n) for p in problems)
        raise EmbeddingDataError(
            f"{name}: {details}. Fix the data upstream, or drop these rows explicitly with "
            "on_invalid='drop' (CLI: --on-invalid drop), which lists every dropped id."
        )
    report = ValidationReport(n_input=n, dropped=problems)
    if problems:
        keep = np.ones(n, dtype=bool)
        for problem in problems:
            keep[problem.positions] = False
        matrix = np.ascontiguousarray(matrix[keep])
        id_array = None if id_array is None else id_array[keep]
    if matrix.shape[0] < min_rows:
        raise EmbeddingDataError(
            f"{name}: {matrix.shape[0]} usable row(s), but this needs at least {min_rows}"
            + (f" ({report.n_dropped} dropped as invalid)" if report.n_dropped else "")
            + ". Provide more vectors."
        )
    return matrix, id_array, report


def check_k(k: int, n_rows: int, *, name: str = "k", exclude_self: bool = True) -> int:
    """Check a neighbour count against the number of rows available.

    Parameters
    ----------
    k : int
        Requested number of neighbours.
    n_rows : int
        Rows in the searched set.
    name : str, default="k"
        Parameter name for messages.
    exclude_self : bool, default=True
        Whether each row is searched against the set containing it (then at most ``n_rows - 1``
        neighbours exist).

    Returns
    -------
    int
        ``k`` as a Python int.

    Raises
    ------
    ConfigurationError
        If ``k < 1`` or more neighbours are asked for than exist.

    Examples
    --------
    >>> check_k(5, 10)
    5
    """
    k = check_int(k, name)
    available = n_rows - 1 if exclude_self else n_rows
    if k > available:
        raise ConfigurationError(
            f"{name}={k} but only {available} neighbour(s) exist among {n_rows} rows (n_samples={n_rows})"
            + (" (a row is not its own neighbour)" if exclude_self else "")
            + f". Use {name} <= {max(available, 1)} or provide more rows."
        )
    return int(k)


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm, as float32: ``X`` itself when they already are, else a copy.

    Cosine geometry everywhere in embedlab (search, spherical k-means, codecs) works on these rows. Assumes no
    zero rows (validated input).

    Examples
    --------
    >>> unit_rows(np.array([[3.0, 4.0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    norms = row_norms(X)[:, None]  # no n x d temporary, unlike np.linalg.norm
    if np.abs(norms - 1.0).max() <= 1e-6:
        return X
    return np.ascontiguousarray(X / norms, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Rows:
    """Validated rows for one metric: what estimators, codecs and searchers work on. Made by :func:`prepare`.

    Attributes
    ----------
    vectors : numpy.ndarray of shape (n, d), float32
        C-contiguous and finite (a memory map stays one); unit-norm rows without zero vectors under cosine.
    metric : {"cosine", "l2", "ip"}
        The metric they were prepared for.
    """

    vectors: np.ndarray = field(repr=False)
    metric: Metric

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """Dimension of the rows."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"Rows(n={self.n}, dim={self.dim}, metric={self.metric!r})"

    def take(self, positions: np.ndarray | slice) -> Rows:
        """The rows at ``positions``, still prepared (a copy, C-contiguous)."""
        return Rows(np.ascontiguousarray(self.vectors[positions]), self.metric)


def prepare(
    X: object,
    metric: Metric = "cosine",
    *,
    name: str = "X",
    dim: int | None = None,
    min_rows: int = 1,
    owner: str = "it",
) -> Rows:
    """Validate rows once for ``metric``: float32, finite, no zero rows and unit-normalised under cosine.

    Every estimator, codec and searcher calls this on what it is given; passing it the :class:`Rows` it
    returned skips the work, so a pipeline validates its input once.

    Parameters
    ----------
    X : array-like of shape (n, d), Rows or EmbeddingSet
        Rows prepared for ``metric`` are returned as they are; rows prepared for cosine also serve the inner
        product (the same ranking); rows prepared for another metric are prepared again from their vectors. An
        :class:`~embedlab.EmbeddingSet` read from a file gives its vectors, and messages name the file.
    metric : {"cosine", "l2", "ip"}, default="cosine"
    name : str, default="X"
        How to call the input in messages (unless it is an EmbeddingSet read from a file).
    dim : int, optional
        The dimension the rows must have (that of a fitted model or of the searched set).
    min_rows : int, default=1
    owner : str, default="it"
        What expects ``dim`` (an estimator's class name), for the message.

    Returns
    -------
    Rows

    Raises
    ------
    EmbeddingDataError
        On NaN/Inf values, zero rows under cosine, another dimension than ``dim``, or fewer than ``min_rows``.
    ConfigurationError
        On an unknown metric.

    Examples
    --------
    >>> rows = prepare([[3.0, 4.0], [0.0, 2.0]], "cosine")
    >>> rows.vectors.tolist(), prepare(rows, "cosine") is rows
    ([[0.6000000238418579, 0.800000011920929], [0.0, 1.0]], True)
    """
    check_choice(metric, "metric", METRICS)
    if hasattr(X, "vectors") and not isinstance(X, Rows | np.ndarray):  # an EmbeddingSet, named by its file
        name, X = str(X.source or name), X.vectors
    if isinstance(X, Rows) and (X.metric == metric or (X.metric, metric) == ("cosine", "ip")):
        rows = X if X.metric == metric else Rows(X.vectors, metric)
    else:
        source = X.vectors if isinstance(X, Rows) else X
        vectors, _, _ = check_vectors(source, name=name, allow_zero=metric != "cosine")
        rows = Rows(unit_rows(vectors) if metric == "cosine" else vectors, metric)
    if dim is not None and rows.dim != dim:
        raise EmbeddingDataError(
            f"{name} has {rows.dim} features, but {owner} is expecting {dim} features as input (the dimension of "
            "the rows it was fitted on or searches)."
        )
    if rows.n < min_rows:
        raise EmbeddingDataError(
            f"{name}: {rows.n} row(s) (n_samples={rows.n}), but this needs at least {min_rows}. Provide more vectors."
        )
    return rows


def fit_rows(estimator: object, X: object, metric: Metric = "cosine", *, name: str = "X", min_rows: int = 1) -> Rows:
    """:func:`prepare` for an estimator's ``fit``, recording ``n_features_in_`` as scikit-learn estimators do."""
    rows = prepare(X, metric, name=name, min_rows=min_rows)
    estimator.n_features_in_ = rows.dim
    return rows


def new_rows(estimator: object, X: object, metric: Metric = "cosine", *, name: str = "X") -> Rows:
    """:func:`prepare` for a fitted estimator's ``predict``, ``transform`` or ``score``: rows with the
    ``n_features_in_`` it was fitted on, or a message in scikit-learn's words.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When the estimator is not fitted.
    EmbeddingDataError
        As :func:`prepare`, and on another dimension.
    """
    check_is_fitted(estimator, "n_features_in_")
    return prepare(X, metric, name=name, dim=estimator.n_features_in_, owner=type(estimator).__name__)
