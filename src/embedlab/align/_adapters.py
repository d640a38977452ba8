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
    "SubspaceAdapter",
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


class SubspaceAdapter(Adapter):
    """Affine map through the subspace the two spaces share: SVCCA directions, then the map between them.

    Each space is first reduced to the principal directions holding ``variance`` of its variance (SVCCA's
    singular-value step, Raghu et al. 2017), which drops the directions of noise. Canonical correlation analysis
    of the two reduced spaces (Hotelling 1936), with a ridge of ``alpha`` times the mean variance on each
    covariance, then finds the directions ``u_i = x a_i``, ``v_i = y b_i`` of each space that correlate most,
    with correlations ``rho_1 >= rho_2 >= ...``: the shared subspace. The map keeps the ``rank`` most correlated
    pairs, predicts each ``v_i`` from its ``u_i`` by least squares (``rho_i u_i``, the canonical variates being
    uncorrelated with unit variance) and reconstructs the target from them:
    ``W = P_x C_xx^-1/2 U_r diag(rho_r) V_r^T C_yy^1/2 P_y^T``. At full rank without reduction or ridge this is
    the least squares map; at rank ``r`` it is reduced-rank regression in the metric of the target's covariance
    (Izenman 1975), fitted only in the subspace the spaces share, as the platonic-representation view of
    models converging on a common structure suggests (Huh et al. 2024).

    Parameters
    ----------
    rank : int, default=64
        Canonical directions kept, between 1 and ``min(d_in, d_out)``; at most the principal directions kept of
        either space (``n_components_`` is what was used).
    variance : float, default=0.99
        Share of each space's variance its principal directions keep before the canonical analysis, in (0, 1].
    alpha : float, default=1e-3
        Relative ridge on each space's covariance, > 0.

    Attributes
    ----------
    weight_ : numpy.ndarray of shape (d_in, d_out), float32
        Of rank ``n_components_``.
    bias_ : numpy.ndarray of shape (d_out,), float32
    canonical_correlations_ : numpy.ndarray of shape (min(p_x, p_y),), float32
        Every canonical correlation of the reduced spaces on the fitting pairs, descending: how many directions
        the spaces share (in-sample, so optimistic where pairs are few).
    n_components_ : int

    References
    ----------
    Raghu, M., Gilmer, J., Yosinski, J. and Sohl-Dickstein, J. (2017). SVCCA: Singular Vector Canonical
    Correlation Analysis for Deep Learning Dynamics and Interpretability. NeurIPS.
    Hotelling, H. (1936). Relations between two sets of variates. Biometrika 28(3/4).
    Huh, M., Cheung, B., Wang, T. and Isola, P. (2024). The Platonic Representation Hypothesis. ICML.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> shared = rng.normal(size=(500, 3))
    >>> X = np.c_[shared, rng.normal(size=(500, 5))] @ rng.normal(size=(8, 8))
    >>> Y = np.c_[shared @ rng.normal(size=(3, 3)), rng.normal(size=(500, 4))]
    >>> adapter = SubspaceAdapter(rank=3, variance=1.0, alpha=1e-8).fit(X, Y)
    >>> [round(float(c), 2) for c in adapter.canonical_correlations_[:4]]
    [1.0, 1.0, 1.0, 0.14]
    """

    name = "subspace"
    _state = ("weight_", "bias_", "canonical_correlations_")

    def __init__(self, *, rank: int = 64, variance: float = 0.99, alpha: float = 1e-3) -> None:
        self.rank = rank
        self.variance = variance
        self.alpha = alpha

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        alpha = check_positive(self.alpha, "alpha")
        variance = check_positive(self.variance, "variance", upper=1.0)
        rank = check_int(self.rank, "rank", maximum=min(X.shape[1], Y.shape[1]), why="min(d_in, d_out)")
        if X.shape[0] < 2:
            raise EmbeddingDataError(f"a shared subspace needs at least 2 pairs to vary, got n_samples = {X.shape[0]}.")
        Xc, Yc, mean_x, mean_y = _centred(X, Y)
        basis_x, var_x = _principal_directions(Xc, variance)
        basis_y, var_y = _principal_directions(Yc, variance)
        # In principal coordinates each covariance is diagonal, so whitening is a scaling.
        scale_x = 1.0 / np.sqrt(var_x + alpha * var_x.mean())
        scale_y = np.sqrt(var_y + alpha * var_y.mean())
        cross = (Xc @ basis_x * scale_x).T @ (Yc @ basis_y / scale_y) / Xc.shape[0]
        left, correlations, right_t = np.linalg.svd(cross, full_matrices=False)
        self.n_components_ = min(rank, correlations.size)
        r = self.n_components_
        weight = (basis_x * scale_x) @ (left[:, :r] * correlations[:r]) @ (right_t[:r] * scale_y) @ basis_y.T
        self.weight_ = weight.astype(np.float32)
        self.bias_ = (mean_y - mean_x @ weight).astype(np.float32)
        self.canonical_correlations_ = correlations.astype(np.float32)


def _principal_directions(centred: np.ndarray, variance: float) -> tuple[np.ndarray, np.ndarray]:
    """The top principal directions (columns) of centred rows holding ``variance`` of their variance, and the
    variance along each."""
    eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / centred.shape[0])
    eigenvalues, vectors = np.clip(eigenvalues[::-1], 0.0, None), vectors[:, ::-1]
    total = eigenvalues.sum()
    if total <= 0:
        raise EmbeddingDataError("the rows do not vary: every row is the same, so no direction is shared.")
    kept = int(np.searchsorted(np.cumsum(eigenvalues) / total, variance - 1e-12)) + 1
    kept = min(kept, int((eigenvalues > 1e-12 * eigenvalues[0]).sum()))
    return vectors[:, :kept], eigenvalues[:kept]


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
    cls.name: cls
    for cls in (IdentityAdapter, ProcrustesAdapter, LowRankAdapter, SubspaceAdapter, RidgeAdapter, MLPAdapter)
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
