"""Anisotropy and spread: mean cosine, dominant direction, IsoScore, partition-function isotropy, spectral
entropy, and Wang and Isola's alignment and uniformity."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.utils.extmath import row_norms

from embedlab.geometry.spectrum import Spectrum

__all__ = [
    "Anisotropy",
    "alignment",
    "anisotropy",
    "isoscore",
    "mean_pairwise_cosine",
    "partition_isotropy",
    "spectral_entropy",
    "uniformity",
]


@dataclass(frozen=True)
class Anisotropy:
    """How unevenly a set fills its space.

    Attributes
    ----------
    mean_cosine : float
        Mean cosine similarity over all pairs of distinct rows (0 for an isotropic cloud around the origin).
    first_pc_variance : float
        Share of the variance along the first principal component.
    isoscore : float
        IsoScore in [0, 1] (1: isotropic).
    partition_isotropy : float
        Mu and Viswanath's I(W) in [0, 1], over the principal directions (1: isotropic).
    spectral_entropy : float
        Normalised entropy of the covariance eigenvalues in [0, 1] (1: variance spread evenly).
    uniformity : float
        Wang and Isola's uniformity of the unit-normalised vectors (lower: more uniform on the sphere).
    alignment : float or None
        Mean squared distance between unit-normalised nearest-neighbour pairs (lower: tighter neighbourhoods).
    n : int
        Rows used.
    """

    mean_cosine: float
    first_pc_variance: float
    isoscore: float
    partition_isotropy: float
    spectral_entropy: float
    uniformity: float
    alignment: float | None
    n: int

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return asdict(self)


def _unit(X: np.ndarray) -> np.ndarray:
    """Unit-normalised float64 copy of the rows."""
    data = np.array(X, dtype=np.float64)
    data /= row_norms(data)[:, None]
    return data


def mean_pairwise_cosine(X: np.ndarray) -> float:
    """Mean cosine similarity over all n(n-1) ordered pairs of distinct rows, in O(n d).

    Uses sum_{i != j} u_i . u_j = ||sum_i u_i||^2 - n for unit vectors u.

    References
    ----------
    Ethayarajh (2019), "How contextual are contextualized word representations?", EMNLP.

    Examples
    --------
    >>> round(mean_pairwise_cosine(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])), 6)
    0.471405
    """
    u = _unit(X)
    n = u.shape[0]
    total = u.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def isoscore(eigenvalues: np.ndarray, dim: int) -> float:
    """IsoScore from the variances along the principal directions.

    Steps of the paper: normalise the variance vector of the PCA-reoriented data to norm sqrt(n); its isotropy
    defect delta = ||v - 1|| / sqrt(2 (n - sqrt n)); the share of dimensions used phi = (n - delta^2 (n -
    sqrt n))^2 / n^2; IsoScore = (n phi - 1) / (n - 1), with n the ambient dimension.

    References
    ----------
    Rudman, Gillman, Rayne and Eickhoff (2022), "IsoScore: Measuring the uniformity of embedding space
    utilization", Findings of ACL.

    Examples
    --------
    >>> isoscore(np.ones(8), 8), isoscore(np.r_[1.0, np.zeros(7)], 8)
    (1.0, 0.0)
    """
    n = dim
    variances = np.zeros(n)
    lam = np.asarray(eigenvalues, dtype=np.float64)[:n]
    variances[: lam.size] = lam
    norm = np.linalg.norm(variances)
    if norm == 0 or n < 2:
        return 0.0
    v = np.sqrt(n) * variances / norm
    delta = np.linalg.norm(v - 1.0) / np.sqrt(2.0 * (n - np.sqrt(n)))
    phi = (n - delta**2 * (n - np.sqrt(n))) ** 2 / n**2
    return float(np.clip((n * phi - 1.0) / (n - 1.0), 0.0, 1.0))


def partition_isotropy(X: np.ndarray, directions: np.ndarray) -> float:
    """I(W) = min_c Z(c) / max_c Z(c), Z(c) = sum_i exp(c . w_i), over the principal directions c (both signs).

    The rows are unit-normalised first, so the measure ignores global scale as every embedlab estimate does.

    References
    ----------
    Mu and Viswanath (2018), "All-but-the-top: simple and effective postprocessing for word representations",
    ICLR (after Arora et al. 2016).
    """
    projections = _unit(X) @ np.concatenate([directions, -directions]).T
    log_z = np.logaddexp.reduce(projections, axis=0)
    return float(np.exp(log_z.min() - log_z.max()))


def spectral_entropy(eigenvalues: np.ndarray, dim: int) -> float:
    """Shannon entropy of the normalised eigenvalues divided by log(dim): 1 when variance is spread evenly.

    References
    ----------
    Roy and Vetterli (2007), "The effective rank: a measure of effective dimensionality", EUSIPCO (the
    entropy behind the effective rank, here normalised to [0, 1]).
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    lam = lam[lam > 0]
    if lam.size == 0 or dim < 2:
        return 0.0
    p = lam / lam.sum()
    return float(-(p * np.log(p)).sum() / np.log(dim))


def uniformity(X: np.ndarray, *, t: float = 2.0) -> float:
    """log E exp(-t ||u - v||^2) over pairs of distinct unit-normalised rows.

    References
    ----------
    Wang and Isola (2020), "Understanding contrastive representation learning through alignment and uniformity
    on the hypersphere", ICML.
    """
    u = _unit(X)
    n = u.shape[0]
    sq = np.maximum(2.0 - 2.0 * (u @ u.T), 0.0)
    off = ~np.eye(n, dtype=bool)
    return float(np.logaddexp.reduce(-t * sq[off]) - np.log(off.sum()))


def alignment(X: np.ndarray, pairs: np.ndarray, *, alpha: float = 2.0, block: int = 8192) -> float:
    """E ||u_i - u_j||^alpha over positive pairs (i, j) of rows of ``X``, unit-normalised.

    With no augmentations at hand, embedlab uses each row and its nearest neighbour as the positive pair.
    Computed in blocks of pairs, so memory stays bounded on large sets.

    References
    ----------
    Wang and Isola (2020), "Understanding contrastive representation learning through alignment and uniformity
    on the hypersphere", ICML.

    Examples
    --------
    >>> round(alignment(np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 3.0]]), np.array([[0, 1], [1, 2]])), 6)
    1.0
    """
    total = 0.0
    for start in range(0, len(pairs), block):
        chunk = pairs[start : start + block]
        gap = _unit(X[chunk[:, 0]]) - _unit(X[chunk[:, 1]])
        total += float((np.linalg.norm(gap, axis=1) ** alpha).sum())
    return total / len(pairs)


def anisotropy(
    X: np.ndarray,
    spectrum: Spectrum,
    *,
    positives: tuple[np.ndarray, np.ndarray] | None = None,
    uniformity_rows: int = 2000,
) -> Anisotropy:
    """Every anisotropy and spread measure of a (sampled) set.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
        Assumed validated; for large sets a random sample of rows.
    spectrum : Spectrum
        :func:`embedlab.geometry.covariance_spectrum` of ``X``.
    positives : (numpy.ndarray of shape (m, d), numpy.ndarray of shape (p, 2)), optional
        Vectors and the positive pairs of their rows, for the alignment.
    uniformity_rows : int, default=2000
        Uniformity is quadratic in the rows: it uses the first ``uniformity_rows`` rows of ``X``.

    Returns
    -------
    Anisotropy
    """
    lam = spectrum.eigenvalues
    return Anisotropy(
        mean_cosine=mean_pairwise_cosine(X),
        first_pc_variance=float(lam[0] / lam.sum()) if lam.sum() > 0 else 1.0,
        isoscore=isoscore(lam, X.shape[1]),
        partition_isotropy=partition_isotropy(X, spectrum.directions),
        spectral_entropy=spectral_entropy(lam, X.shape[1]),
        uniformity=uniformity(X[:uniformity_rows]),
        alignment=None if positives is None else alignment(*positives),
        n=int(X.shape[0]),
    )
