"""Spectrum of the covariance: explained variance, effective rank, and the power-law decay of eigenvalues."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedlab.exceptions import EmbeddingDataError

__all__ = ["Spectrum", "covariance_spectrum", "effective_rank", "power_law_slope"]


@dataclass(frozen=True)
class Spectrum:
    """Eigen-structure of a set's covariance.

    Attributes
    ----------
    eigenvalues : numpy.ndarray
        Covariance eigenvalues, descending (at most ``min(n - 1, d)`` of them).
    explained_variance : numpy.ndarray
        Cumulative share of variance of the first 1, 2, ... components.
    effective_rank : float
        Roy and Vetterli's effective rank of the centred data matrix.
    power_law_slope : float
        alpha in eigenvalue_i ~ i^-alpha, fitted over the non-degenerate part of the spectrum.
    n : int
        Rows the spectrum was computed from.
    directions : numpy.ndarray of shape (d, d)
        Principal directions as rows, in the order of ``eigenvalues`` (not in ``to_dict``).
    """

    eigenvalues: np.ndarray
    explained_variance: np.ndarray
    effective_rank: float
    power_law_slope: float
    n: int
    directions: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready dictionary (the curves as lists)."""
        return {
            "eigenvalues": self.eigenvalues.tolist(),
            "explained_variance": self.explained_variance.tolist(),
            "effective_rank": self.effective_rank,
            "power_law_slope": self.power_law_slope,
            "n": self.n,
        }


def effective_rank(singular_values: np.ndarray) -> float:
    """exp of the Shannon entropy of the normalised singular values.

    Parameters
    ----------
    singular_values : numpy.ndarray
        Singular values of the (centred) data matrix.

    Returns
    -------
    float
        Between 1 (rank one) and the number of non-zero singular values (all equal).

    References
    ----------
    Roy and Vetterli (2007), "The effective rank: a measure of effective dimensionality", EUSIPCO.

    Examples
    --------
    >>> effective_rank(np.array([1.0, 1.0, 1.0, 0.0]))
    3.0
    """
    s = np.asarray(singular_values, dtype=np.float64)
    s = s[s > 0]
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(np.round(np.exp(-(p * np.log(p)).sum()), 12))


def power_law_slope(eigenvalues: np.ndarray, *, skip: int = 1, tail_ratio: float = 1e-6) -> float:
    """alpha of a power-law fit eigenvalue_i ~ i^-alpha by least squares in log-log coordinates.

    The first ``skip`` eigenvalues (often dominated by a common direction) and the numerically-zero tail
    (below ``tail_ratio`` times the largest) are left out of the fit.

    References
    ----------
    Stringer, Pachitariu, Steinmetz, Carandini and Harris (2019), "High-dimensional geometry of population
    responses in visual cortex", Nature 571; Agrawal et al. (2022), "alpha-ReQ: Assessing representation
    quality in self-supervised learning by measuring eigenspectrum decay", NeurIPS.

    Examples
    --------
    >>> round(power_law_slope(np.arange(1, 200.0) ** -1.5, skip=0), 6)
    1.5
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    usable = np.flatnonzero(lam > tail_ratio * lam.max())
    usable = usable[usable >= skip]
    if usable.size < 3:
        return float("nan")
    slope = np.polyfit(np.log(usable + 1.0), np.log(lam[usable]), 1)[0]
    return float(-slope)


def covariance_spectrum(X: np.ndarray) -> Spectrum:
    """Eigen-decomposition of the covariance of ``X`` and what follows from it.

    The singular values of the centred data, for the effective rank, are sqrt((n - 1) * eigenvalue).

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
        Assumed validated; for large sets pass a sample.

    Returns
    -------
    Spectrum
    """
    data = np.asarray(X, dtype=np.float64)
    if data.shape[0] < 2:
        raise EmbeddingDataError(f"the spectrum needs at least 2 rows, got {data.shape[0]}.")
    eigenvalues, vectors = np.linalg.eigh(np.atleast_2d(np.cov(data, rowvar=False)))
    eigenvalues, vectors = eigenvalues[::-1].clip(min=0.0), vectors[:, ::-1]
    singular = np.sqrt(eigenvalues * (data.shape[0] - 1))
    total = eigenvalues.sum()
    explained = np.cumsum(eigenvalues) / total if total > 0 else np.ones_like(eigenvalues)
    return Spectrum(
        eigenvalues=eigenvalues,
        explained_variance=explained,
        effective_rank=effective_rank(singular),
        power_law_slope=power_law_slope(eigenvalues),
        n=int(data.shape[0]),
        directions=vectors.T,
    )
