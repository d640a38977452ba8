"""Adapters: fitted maps from the rows of one embedding space (``d_in``) to another (``d_out``).

Each adapter is a scikit-learn style estimator (``fit(X, y)``, ``transform(X)``, learnt attributes ending in
``_``) whose fitted state is a handful of numpy arrays, so it serialises to a JSON document and maps rows
without torch, even when it was trained with torch (:class:`MLPAdapter`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import Tags, check_random_state
from sklearn.utils.validation import check_is_fitted

from embedlab._checks import check_int, check_positive
from embedlab._json import (
    MAX_ARRAY_DOCUMENT_BYTES,
    array_from_json,
    array_to_json,
    document_errors,
    read_document,
)
from embedlab._torch import batches, mlp, require_torch, seeded_torch
from embedlab.exceptions import EmbeddingDataError
from embedlab.io.validation import check_vectors, fit_rows, new_rows
from embedlab.io.writers import write_json

__all__ = [
    "ADAPTER_TYPES",
    "FORMAT_VERSION",
    "Adapter",
    "IdentityAdapter",
    "LowRankAdapter",
    "MLPAdapter",
    "ProcrustesAdapter",
    "RidgeAdapter",
    "adapter_from_dict",
    "load_adapter",
    "mean_cosine",
]

#: Format of the serialised adapter; bumped when the layout changes.
FORMAT_VERSION = 1
_KIND = "embedlab-adapter"
#: Rows mapped at a time by :meth:`Adapter.transform`.
_MAP_ROWS = 65_536


def mean_cosine(A: np.ndarray, B: np.ndarray) -> float:
    """Mean cosine similarity between the rows of ``A`` and the same rows of ``B`` (zero rows count as 0).

    Examples
    --------
    >>> mean_cosine(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[2.0, 0.0], [1.0, 0.0]]))
    0.5
    """
    a, b = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    return float(np.mean(np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)))


def _centred(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Float64 centred copies of X and Y and their means (validated input assumed)."""
    mean_x, mean_y = X.mean(axis=0, dtype=np.float64), Y.mean(axis=0, dtype=np.float64)
    return X - mean_x, Y - mean_y, mean_x, mean_y


def _ridge_weight(Xc: np.ndarray, Yc: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge weights ``(Xc^T Xc + alpha * tr(Xc^T Xc) / d_in * I)^-1 Xc^T Yc`` for centred float64 input."""
    gram = Xc.T @ Xc
    scale = np.trace(gram) / gram.shape[0]
    penalty = alpha * (scale if scale > 0 else 1.0)
    gram[np.diag_indices_from(gram)] += penalty
    return scipy.linalg.solve(gram, Xc.T @ Yc, assume_a="pos")


class Adapter(TransformerMixin, BaseEstimator, ABC):
    """Base class of the adapters: input checks, the affine part ``X @ weight_ + bias_``, serialisation.

    Subclasses set ``name`` and ``_state`` (the fitted arrays) and implement ``_fit`` and, when the map is
    not affine, ``_map``. Hyper-parameters are keyword-only and stored unchanged by ``__init__``.

    Attributes
    ----------
    weight_ : numpy.ndarray of shape (d_in, d_out), float32
    bias_ : numpy.ndarray of shape (d_out,), float32
    n_features_in_, n_features_out_ : int
        Dimensions of the source and target spaces.
    """

    name: ClassVar[str]
    _state: ClassVar[tuple[str, ...]] = ("weight_", "bias_")

    def __sklearn_tags__(self) -> Tags:
        """Fitted on pairs: ``y`` is required and holds one row of the target space (many values) per row."""
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags

    def fit(self, X: object, y: object) -> Adapter:
        """Fit the map from the rows of ``X`` to the same rows of ``y``.

        Parameters
        ----------
        X : array-like of shape (n, d_in)
            Source rows.
        y : array-like of shape (n, d_out)
            Target rows (the same items in the other space); row ``i`` is the image wanted for ``X[i]``.

        Returns
        -------
        self

        Raises
        ------
        EmbeddingDataError
            On NaN or Inf values, or when X and y have different numbers of rows.
        """
        if y is None:
            raise EmbeddingDataError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: an adapter is fitted on "
                "pairs, row i of y the image of row i of X in the other space."
            )
        source = fit_rows(self, X, "l2").vectors
        target, _, _ = check_vectors(y, name="y", allow_zero=True)
        if source.shape[0] != target.shape[0]:
            raise EmbeddingDataError(
                f"X has {source.shape[0]} rows and y {target.shape[0]}: row i of y must be the target of row i of X."
            )
        self._fit(source, target)
        self.n_features_out_ = target.shape[1]
        return self

    @abstractmethod
    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        """Set ``weight_`` and ``bias_`` (and any other fitted state) from validated rows."""

    def _map(self, X: np.ndarray) -> np.ndarray:
        """The map on validated float64 rows of the right dimension."""
        return X @ self.weight_ + self.bias_

    def transform(self, X: object, *, name: str = "X") -> np.ndarray:
        """Map rows of the source space into the target space.

        Parameters
        ----------
        X : array-like of shape (n, d_in)
        name : str, default="X"
            How to call the input in error messages (a file name).

        Returns
        -------
        numpy.ndarray of shape (n, d_out), float32

        Raises
        ------
        EmbeddingDataError
            On NaN or Inf values, or when the dimension is not the one the adapter was fitted on.
        """
        check_is_fitted(self, "weight_")
        rows = new_rows(self, X, "l2", name=name).vectors
        mapped = np.empty((rows.shape[0], self.n_features_out_), dtype=np.float32)
        # In float64, then rounded: float32 GEMM kernels round a row differently at the edge of a tile, so a row's
        # image would depend on where it stands in the batch. Blocks bound the float64 copy.
        for start in range(0, rows.shape[0], _MAP_ROWS):
            mapped[start : start + _MAP_ROWS] = self._map(rows[start : start + _MAP_ROWS].astype(np.float64))
        return mapped

    def score(self, X: object, y: object) -> float:
        """Mean cosine similarity between the mapped rows of ``X`` and the rows of ``y`` (higher is better)."""
        mapped = self.transform(X)
        target, _, _ = check_vectors(y, name="y", allow_zero=True)
        return mean_cosine(mapped, target)

    def to_dict(self) -> dict[str, Any]:
        """The fitted adapter as a JSON-ready document (arrays base64-encoded, with a format version)."""
        check_is_fitted(self, "weight_")
        params = {key: value for key, value in self.get_params().items() if key != "random_state"}
        return {
            "kind": _KIND,
            "format": FORMAT_VERSION,
            "method": self.name,
            "params": params,
            "n_features_in": int(self.n_features_in_),
            "n_features_out": int(self.n_features_out_),
            "state": {attribute: array_to_json(getattr(self, attribute)) for attribute in self._state},
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` to ``path`` as JSON, atomically; :func:`load_adapter` reads it back."""
        return write_json(self.to_dict(), path)


class IdentityAdapter(Adapter):
    """No map at all: ``y = x``, for spaces of equal dimension.

    The baseline every other adapter must beat. When NEW is a fine-tuned or lightly changed OLD (the same
    coordinates, moved a little), using new queries on the old index unchanged can retrieve better than any
    fitted map, and cross-validation should be able to say so.

    Raises
    ------
    EmbeddingDataError
        From :meth:`fit` when X and Y have different dimensions.

    Examples
    --------
    >>> X = np.eye(3)
    >>> IdentityAdapter().fit(X, 2 * X).transform(X).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """

    name = "identity"

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        if X.shape[1] != Y.shape[1]:
            raise EmbeddingDataError(
                f"the identity adapter needs spaces of equal dimension, got {X.shape[1]} and {Y.shape[1]}."
            )
        self.weight_ = np.eye(X.shape[1], dtype=np.float32)
        self.bias_ = np.zeros(X.shape[1], dtype=np.float32)

    def _map(self, X: np.ndarray) -> np.ndarray:
        return X


class ProcrustesAdapter(Adapter):
    """Orthogonal Procrustes after centring: ``y = s (x - mean_x) R + mean_y`` with ``R`` (semi-)orthogonal.

    ``R = U V^T`` from the thin SVD ``U S V^T`` of ``Xc^T Yc`` minimises ``||Xc R - Yc||_F`` over matrices
    with orthonormal rows (``d_in <= d_out``) or columns (``d_in >= d_out``); for equal dimensions it is
    :func:`scipy.linalg.orthogonal_procrustes`, and for different ones it equals that solution after
    zero-padding the smaller space. It keeps every distance and angle of the source space (up to ``s``).

    Parameters
    ----------
    scale : bool, default=False
        Also fit one global scale ``s = trace(S) / ||Xc||_F^2``; otherwise ``s = 1``.

    Attributes
    ----------
    rotation_ : numpy.ndarray of shape (d_in, d_out), float32
        The (semi-)orthogonal ``R``.
    scale_ : float
        The fitted ``s`` (1.0 unless ``scale=True``).
    weight_, bias_ : numpy.ndarray
        The affine map ``s R`` and ``mean_y - s mean_x R``.

    References
    ----------
    Schönemann, P. H. (1966). A generalized solution of the orthogonal Procrustes problem. Psychometrika 31(1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 4))
    >>> R = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    >>> adapter = ProcrustesAdapter().fit(X, X @ R + 1.0)
    >>> bool(np.abs(adapter.transform(X) - (X @ R + 1.0)).max() < 1e-4)
    True
    """

    name = "procrustes"
    _state = ("weight_", "bias_", "rotation_")

    def __init__(self, *, scale: bool = False) -> None:
        self.scale = scale

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        Xc, Yc, mean_x, mean_y = _centred(X, Y)
        U, singular, Vt = np.linalg.svd(Xc.T @ Yc, full_matrices=False)
        rotation = U @ Vt
        norm = float(np.sum(Xc * Xc))
        factor = float(singular.sum() / norm) if self.scale and norm > 0 else 1.0
        self.rotation_ = rotation.astype(np.float32)
        self.weight_ = (factor * rotation).astype(np.float32)
        self.bias_ = (mean_y - mean_x @ (factor * rotation)).astype(np.float32)

    @property
    def scale_(self) -> float:
        """The global scale ``s`` of the fitted map."""
        check_is_fitted(self, "weight_")
        return float(np.linalg.norm(self.weight_) / np.linalg.norm(self.rotation_))


class RidgeAdapter(Adapter):
    """Affine least squares with a ridge penalty, in closed form: ``y = x W + b``.

    ``W = (Xc^T Xc + lambda I)^-1 Xc^T Yc`` on centred rows and ``b = mean_y - mean_x W``, where the penalty
    ``lambda = alpha * trace(Xc^T Xc) / d_in`` is ``alpha`` times the mean variance of the source, so that
    ``alpha`` means the same whatever the scale of the embeddings.

    Parameters
    ----------
    alpha : float, default=1e-3
        Relative ridge penalty, > 0.

    Attributes
    ----------
    weight_ : numpy.ndarray of shape (d_in, d_out), float32
    bias_ : numpy.ndarray of shape (d_out,), float32

    References
    ----------
    Hoerl, A. E. and Kennard, R. W. (1970). Ridge regression: biased estimation for nonorthogonal problems.
    Technometrics 12(1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, A = rng.normal(size=(200, 5)), rng.normal(size=(5, 3))
    >>> adapter = RidgeAdapter(alpha=1e-8).fit(X, X @ A - 2.0)
    >>> bool(np.abs(adapter.weight_ - A).max() < 1e-3)
    True
    """

    name = "ridge"

    def __init__(self, *, alpha: float = 1e-3) -> None:
        self.alpha = alpha

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        alpha = check_positive(self.alpha, "alpha")
        Xc, Yc, mean_x, mean_y = _centred(X, Y)
        weight = _ridge_weight(Xc, Yc, alpha)
        self.weight_ = weight.astype(np.float32)
        self.bias_ = (mean_y - mean_x @ weight).astype(np.float32)


class LowRankAdapter(Adapter):
    """Affine map of rank ``r``: reduced-rank ridge regression.

    The ridge weights ``W`` (see :class:`RidgeAdapter`) are projected on the top ``r`` right singular vectors
    ``V_r`` of the fitted values ``Xc W``: ``W_r = W V_r V_r^T``. With few pairs, or when the spaces share
    only a few directions, the rank constraint removes noise the full map would fit.

    Parameters
    ----------
    rank : int, default=64
        Rank of the map, between 1 and ``min(d_in, d_out)``.
    alpha : float, default=1e-3
        Relative ridge penalty, as in :class:`RidgeAdapter`.

    Attributes
    ----------
    weight_ : numpy.ndarray of shape (d_in, d_out), float32
        Of rank ``rank``.
    bias_ : numpy.ndarray of shape (d_out,), float32

    References
    ----------
    Izenman, A. J. (1975). Reduced-rank regression for the multivariate linear model. Journal of Multivariate
    Analysis 5(2).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, A = rng.normal(size=(200, 6)), rng.normal(size=(6, 2)) @ rng.normal(size=(2, 6))
    >>> adapter = LowRankAdapter(rank=2, alpha=1e-8).fit(X, X @ A)
    >>> int(np.linalg.matrix_rank(adapter.weight_, tol=1e-4)), bool(np.abs(adapter.weight_ - A).max() < 1e-3)
    (2, True)
    """

    name = "low-rank"

    def __init__(self, *, rank: int = 64, alpha: float = 1e-3) -> None:
        self.rank = rank
        self.alpha = alpha

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        alpha = check_positive(self.alpha, "alpha")
        rank = check_int(self.rank, "rank", maximum=min(X.shape[1], Y.shape[1]), why="min(d_in, d_out)")
        Xc, Yc, mean_x, mean_y = _centred(X, Y)
        weight = _ridge_weight(Xc, Yc, alpha)
        fitted = Xc @ weight
        # Right singular vectors of the fitted values = eigenvectors of their d_out x d_out Gram matrix.
        _, vectors = np.linalg.eigh(fitted.T @ fitted)
        top = vectors[:, ::-1][:, :rank]
        weight = weight @ top @ top.T
        self.weight_ = weight.astype(np.float32)
        self.bias_ = (mean_y - mean_x @ weight).astype(np.float32)


class MLPAdapter(Adapter):
    """A residual MLP ``y = x W + b + MLP(x)`` started from the ridge solution and trained with torch.

    ``W, b`` start at the :class:`RidgeAdapter` solution and the MLP's output layer at zero, so training
    starts from the best affine map and only learns what it misses. The loss is the mean squared error
    (divided by the mean squared norm of the targets, so it does not depend on their scale) plus
    ``cosine_weight`` times the mean cosine distance. After ``fit`` the weights are numpy arrays:
    :meth:`transform` and serialisation need no torch.

    Parameters
    ----------
    hidden_units : int, default=256
        Width of the MLP's hidden layer (ReLU).
    alpha : float, default=1e-3
        Relative ridge penalty of the starting affine map.
    epochs : int, default=50
        Passes over the pairs.
    batch_size : int, default=256
    learning_rate : float, default=1e-3
        Adam's step size.
    cosine_weight : float, default=1.0
        Weight of the cosine term of the loss.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation and batch order.

    Attributes
    ----------
    weight_, bias_ : numpy.ndarray of shapes (d_in, d_out) and (d_out,), float32
        The affine part.
    hidden_weight_, hidden_bias_ : numpy.ndarray of shapes (d_in, hidden_units) and (hidden_units,)
    output_weight_, output_bias_ : numpy.ndarray of shapes (hidden_units, d_out) and (d_out,)

    Raises
    ------
    MissingDependencyError
        From ``fit`` when torch is not installed (``pip install "embedlab[deep]"``).

    References
    ----------
    Vejendla, V. (2025). Drift-Adapter: a practical approach to near zero-downtime embedding model upgrades in
    vector databases. EMNLP.
    """

    name = "mlp"
    _state = ("weight_", "bias_", "hidden_weight_", "hidden_bias_", "output_weight_", "output_bias_")

    def __init__(
        self,
        *,
        hidden_units: int = 256,
        alpha: float = 1e-3,
        epochs: int = 50,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        cosine_weight: float = 1.0,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.hidden_units = hidden_units
        self.alpha = alpha
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.cosine_weight = cosine_weight
        self.random_state = random_state

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        torch = require_torch("the mlp adapter")
        alpha = check_positive(self.alpha, "alpha")
        hidden_units = check_int(self.hidden_units, "hidden_units")
        epochs = check_int(self.epochs, "epochs")
        batch_size = check_int(self.batch_size, "batch_size")
        rng = check_random_state(self.random_state)
        Xc, Yc, mean_x, mean_y = _centred(X, Y)
        weight = _ridge_weight(Xc, Yc, alpha)
        bias = mean_y - mean_x @ weight
        target_power = float(np.mean(np.sum(Y.astype(np.float64) ** 2, axis=1))) or 1.0
        with seeded_torch(rng):
            linear = torch.nn.Linear(X.shape[1], Y.shape[1])
            residual = mlp([X.shape[1], hidden_units, Y.shape[1]])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(weight.T.astype(np.float32)))
                linear.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
                residual[-1].weight.zero_()
                residual[-1].bias.zero_()
            optimiser = torch.optim.Adam([*linear.parameters(), *residual.parameters()], lr=self.learning_rate)
            inputs, targets = torch.from_numpy(X), torch.from_numpy(Y)
            for _ in range(epochs):
                for rows in batches(X.shape[0], batch_size, rng):
                    x, y = inputs[rows], targets[rows]
                    predicted = linear(x) + residual(x)
                    squared = ((predicted - y) ** 2).sum(dim=1).mean() / target_power
                    cosine = 1.0 - torch.nn.functional.cosine_similarity(predicted, y, dim=1).mean()
                    loss = squared + self.cosine_weight * cosine
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
        self.weight_ = linear.weight.detach().numpy().T.astype(np.float32).copy()
        self.bias_ = linear.bias.detach().numpy().astype(np.float32).copy()
        self.hidden_weight_ = residual[0].weight.detach().numpy().T.astype(np.float32).copy()
        self.hidden_bias_ = residual[0].bias.detach().numpy().astype(np.float32).copy()
        self.output_weight_ = residual[-1].weight.detach().numpy().T.astype(np.float32).copy()
        self.output_bias_ = residual[-1].bias.detach().numpy().astype(np.float32).copy()

    def _map(self, X: np.ndarray) -> np.ndarray:
        hidden = np.maximum(X @ self.hidden_weight_ + self.hidden_bias_, 0.0)
        return X @ self.weight_ + self.bias_ + hidden @ self.output_weight_ + self.output_bias_


#: Adapter classes by method name, in order of increasing flexibility.
ADAPTER_TYPES: dict[str, type[Adapter]] = {
    cls.name: cls for cls in (IdentityAdapter, ProcrustesAdapter, LowRankAdapter, RidgeAdapter, MLPAdapter)
}


def adapter_from_dict(document: dict[str, Any]) -> Adapter:
    """The fitted adapter saved by :meth:`Adapter.to_dict` (keys it does not know are ignored).

    Raises
    ------
    EmbeddingDataError
        When the document is not an adapter of this format, or its arrays do not match its dimensions.
    """
    try:
        if document.get("kind") != _KIND:
            raise EmbeddingDataError(f"not an embedlab adapter document (kind {document.get('kind')!r}).")
        if document["format"] != FORMAT_VERSION:
            raise EmbeddingDataError(
                f"the adapter has format {document['format']}; this embedlab reads format {FORMAT_VERSION}."
            )
        cls = ADAPTER_TYPES.get(document["method"])
        if cls is None:
            raise EmbeddingDataError(
                f"unknown adapter method {document['method']!r}; known: {', '.join(ADAPTER_TYPES)}."
            )
        adapter = cls(**document["params"])
        for attribute in cls._state:
            setattr(adapter, attribute, array_from_json(document["state"][attribute]))
        adapter.n_features_in_ = int(document["n_features_in"])
        adapter.n_features_out_ = int(document["n_features_out"])
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        if isinstance(error, EmbeddingDataError):
            raise
        raise EmbeddingDataError(f"not a valid embedlab adapter document ({type(error).__name__}: {error}).") from error
    if adapter.weight_.shape != (adapter.n_features_in_, adapter.n_features_out_):
        raise EmbeddingDataError(
            f"the adapter document says {adapter.n_features_in_} -> {adapter.n_features_out_} dimensions but its "
            f"weights have shape {adapter.weight_.shape}."
        )
    try:  # every other array (biases, hidden layers) must fit the weights: one row through the map tells
        mapped_shape = adapter._map(np.zeros((1, adapter.n_features_in_))).shape
    except ValueError as error:
        mapped_shape = error
    if mapped_shape != (1, adapter.n_features_out_):
        raise EmbeddingDataError(f"the adapter's arrays do not fit together ({mapped_shape}).")
    return adapter


def load_adapter(path: str | os.PathLike) -> Adapter:
    """Read an adapter written by :meth:`Adapter.save` (or ``embedlab align fit``).

    Raises
    ------
    EmbeddingDataError
        When the file cannot be read or is not an adapter document; the message names the file.
    """
    document = read_document(path, what="adapter", max_bytes=MAX_ARRAY_DOCUMENT_BYTES)
    with document_errors(path, "adapter"):
        return adapter_from_dict(document)
