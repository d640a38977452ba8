"""Unit matching: which dimension of one space corresponds to which of another -- one-to-one by the Hungarian
method on correlations, one-to-many by sparse (Lasso) regression."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.linear_model import Lasso

from embedlab.exceptions import ConfigurationError
from embedlab.io import EmbeddingSet, pair_by_id

__all__ = ["SparseUnitRegression", "UnitMatching", "match_units", "sparse_unit_regression"]


def _standardised(X: np.ndarray) -> np.ndarray:
    """Columns with zero mean and unit variance, float64; constant columns stay all zero."""
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    std = X.std(axis=0)
    return X / np.where(std > 0, std, 1.0)


@dataclass(frozen=True)
class UnitMatching:
    """A one-to-one matching of the units (dimensions) of X and Y.

    Attributes
    ----------
    units_x, units_y : numpy.ndarray of shape (min(d1, d2),), int64
        Unit ``units_x[i]`` of X is matched to unit ``units_y[i]`` of Y; ``units_x`` ascending.
    correlations : numpy.ndarray of shape (min(d1, d2),), float64
        Pearson correlation of each matched pair; its sign says whether the unit is flipped.
    """

    units_x: np.ndarray
    units_y: np.ndarray
    correlations: np.ndarray

    @property
    def mean_abs_correlation(self) -> float:
        """Mean ``|correlation|`` of the matched pairs."""
        return float(np.mean(np.abs(self.correlations)))


@dataclass(frozen=True)
class SparseUnitRegression:
    """Each unit of Y predicted from the units of X by a sparse linear regression (standardised units).

    Attributes
    ----------
    coefficients : numpy.ndarray of shape (d2, d1)
        Row ``j``: the weights of X's standardised units predicting Y's standardised unit ``j``.
    r2 : numpy.ndarray of shape (d2,)
        In-sample coefficient of determination of each unit of Y (NaN for a constant unit).
    alpha : float
    """

    coefficients: np.ndarray
    r2: np.ndarray
    alpha: float

    @property
    def n_nonzero(self) -> np.ndarray:
        """Units of X used for each unit of Y, shape (d2,)."""
        return np.count_nonzero(self.coefficients, axis=1)


def match_units(X: EmbeddingSet | object, Y: EmbeddingSet | object) -> UnitMatching:
    """Match the units of X one-to-one to those of Y, maximising the total absolute correlation.

    Columns are standardised, their ``(d1, d2)`` correlation matrix formed, and the Hungarian method
    (:func:`scipy.optimize.linear_sum_assignment`) picks the assignment of highest total ``|correlation|``, so a
    unit that is a sign-flipped copy is matched and reported with a negative correlation. With ``d1 != d2`` the
    ``min(d1, d2)`` best pairs are kept.

    Parameters
    ----------
    X, Y : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        Paired rows (sets by id, arrays by position).

    Returns
    -------
    UnitMatching

    References
    ----------
    Li, Yosinski, Clune, Lipson and Hopcroft (2016), "Convergent learning: do different neural networks learn
    the same representations?", ICLR (bipartite semi-matching of units by correlation).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> matching = match_units(X, -X[:, [2, 0, 1]])
    >>> matching.units_y.tolist(), matching.correlations.round(6).tolist()
    ([1, 2, 0], [-1.0, -1.0, -1.0])
    """
    pairs = pair_by_id(X, Y, min_pairs=3, names=("X", "Y"))
    x, y = _standardised(pairs.first), _standardised(pairs.second)
    correlation = x.T @ y / x.shape[0]
    units_x, units_y = linear_sum_assignment(np.abs(correlation), maximize=True)
    return UnitMatching(
        units_x=units_x.astype(np.int64),
        units_y=units_y.astype(np.int64),
        correlations=correlation[units_x, units_y],
    )


def sparse_unit_regression(
    X: EmbeddingSet | object, Y: EmbeddingSet | object, *, alpha: float = 0.01, max_iter: int = 5000
) -> SparseUnitRegression:
    """Predict every unit of Y from all units of X with an L1-penalised (Lasso) regression.

    A one-to-many mapping: a unit of Y spread over a few units of X gets a few non-zero weights, where a
    one-to-one matching would miss it. Units are standardised first, so ``alpha`` is on the scale of
    correlations and the weights are comparable across units.

    Parameters
    ----------
    X, Y : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        Paired rows.
    alpha : float, default=0.01
        L1 penalty of :class:`sklearn.linear_model.Lasso`; larger values use fewer units of X.
    max_iter : int, default=5000
        Coordinate-descent iterations at most.

    Returns
    -------
    SparseUnitRegression

    References
    ----------
    Li, Yosinski, Clune, Lipson and Hopcroft (2016), "Convergent learning: do different neural networks learn
    the same representations?", ICLR (sparse prediction loss, one-to-many mappings).
    Tibshirani (1996), "Regression shrinkage and selection via the lasso", JRSS B 58(1).
    """
    if not alpha > 0:
        raise ConfigurationError(f"alpha must be positive, got {alpha!r}.")
    pairs = pair_by_id(X, Y, min_pairs=3, names=("X", "Y"))
    x, y = _standardised(pairs.first), _standardised(pairs.second)
    model = Lasso(alpha=alpha, fit_intercept=False, max_iter=max_iter).fit(x, y)
    coefficients = np.atleast_2d(model.coef_)
    residual = ((y - x @ coefficients.T) ** 2).sum(axis=0)
    total = (y**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(total > 0, 1.0 - residual / total, np.nan)
    return SparseUnitRegression(coefficients=coefficients, r2=r2, alpha=float(alpha))
