"""DANCo: intrinsic dimension from the concentration of neighbour distances and angles, calibrated on balls."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import comb, digamma, i0e, i1e

from embedlab._checks import check_int
from embedlab.exceptions import EmbeddingDataError
from embedlab.neighbors import knn

__all__ = ["DancoStatistics", "danco", "danco_statistics"]


@dataclass(frozen=True)
class DancoStatistics:
    """What DANCo reads from a set: the MIND_MLk dimension of its normalised nearest distances, and the mean
    von Mises location and concentration of the angles between each point's neighbours."""

    dimension: float
    angle_location: float
    angle_concentration: float


_FIELDS = [f.name for f in fields(DancoStatistics)]


def _mind_mlk(rho: np.ndarray, k: int, upper: float) -> float:
    """Maximum-likelihood d of rho = r_1 / r_(k+1), whose density is k d rho^(d-1) (1 - rho^d)^(k-1)."""
    log_rho = np.log(rho)

    def negative_log_likelihood(d: float) -> float:
        return -(np.log(k * d) + (d - 1.0) * log_rho.mean() + (k - 1.0) * np.log1p(-(rho**d)).mean())

    result = minimize_scalar(negative_log_likelihood, bounds=(1e-3, upper), method="bounded", options={"xatol": 1e-5})
    return float(result.x)


def _inverse_bessel_ratio(eta: np.ndarray) -> np.ndarray:
    """The von Mises concentration tau with I1(tau) / I0(tau) = eta (Best and Fisher's approximation)."""
    eta = np.clip(eta, 0.0, 1.0 - 1e-12)
    return np.where(
        eta < 0.53,
        2.0 * eta + eta**3 + 5.0 * eta**5 / 6.0,
        np.where(eta < 0.85, -0.4 + 1.39 * eta + 0.43 / (1.0 - eta), 1.0 / (eta**3 - 4.0 * eta**2 + 3.0 * eta)),
    )


def _angle_statistics(X: np.ndarray, queries: np.ndarray, neighbours: np.ndarray) -> tuple[float, float]:
    """Mean von Mises location and concentration of the pairwise angles between each query's neighbours."""
    vectors = X[neighbours] - X[queries][:, None, :]
    vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
    k = neighbours.shape[1]
    upper = np.triu_indices(k, 1)
    cosines = np.clip(np.einsum("bid,bjd->bij", vectors, vectors)[:, upper[0], upper[1]], -1.0, 1.0)
    sines = np.sqrt(1.0 - cosines**2)  # sin of an angle in [0, pi]
    location = np.arctan2(sines.sum(axis=1), cosines.sum(axis=1))
    eta = np.hypot(cosines.mean(axis=1), sines.mean(axis=1))
    return float(location.mean()), float(_inverse_bessel_ratio(eta).mean())


def danco_statistics(
    X: np.ndarray,
    k: int = 10,
    *,
    max_queries: int | None = None,
    upper: float | None = None,
    skip_duplicates: bool = False,
    seed: int = 0,
) -> DancoStatistics:
    """DANCo's statistics of a set, its neighbours searched exactly among all its rows.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, dim)
        Free of exact duplicates.
    k : int, default=10
    max_queries : int, optional
        Rows (seeded) whose neighbourhoods are read; all rows by default.
    upper : float, optional
        Largest dimension the MIND_MLk fit may return (default ``dim``).
    skip_duplicates : bool, default=False
        Leave out queries with a copy at distance 0 instead of refusing the set (a simulated ball in one
        dimension, rounded to float32, has a few).
    seed : int, default=0
    """
    n, dim = X.shape
    data = np.ascontiguousarray(X, dtype=np.float32)
    rows = np.arange(n)
    if max_queries is not None and max_queries < n:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_queries, replace=False))
    found = knn(data, k + 1, query_rows=rows, metric="l2", method="exact", recall_sample=0)
    distances = found.distances.astype(np.float64)
    distinct = distances[:, 0] > 0
    if not distinct.all() and not skip_duplicates:
        raise EmbeddingDataError(f"DANCo: {int((~distinct).sum())} rows have an exact duplicate.")
    rho = distances[distinct, 0] / distances[distinct, k]
    dimension = _mind_mlk(rho[rho < 1.0], k, float(dim if upper is None else upper))
    location, concentration = _angle_statistics(data.astype(np.float64), rows[distinct], found.indices[distinct, :k])
    return DancoStatistics(dimension, location, concentration if dim > 1 else 1.0)


def _kl_dimension(dhat: float, dcal: float, k: int) -> float:
    """KL divergence between the rho densities of dimensions ``dhat`` and ``dcal``.

    Ceruti et al. give it without the terms that do not depend on ``dcal`` (-H_k - (k - 1) / k), which leave
    the minimum where it is; they are kept here so that the value is the divergence itself.
    """
    ratio = dcal / dhat
    i = np.arange(k + 1)
    harmonic = np.sum(1.0 / np.arange(1, k + 1))
    alternating = np.sum((-1.0) ** i * comb(k, i) * digamma(1.0 + i / ratio))
    return float(harmonic * (ratio - 1.0) - np.log(ratio) - (k - 1) / k - (k - 1) * alternating)


def _kl_von_mises(location1: float, concentration1: float, location2: float, concentration2: float) -> float:
    """KL divergence between two von Mises densities, in exponentially scaled Bessel functions."""
    log_ratio = np.log(i0e(concentration2)) + concentration2 - np.log(i0e(concentration1)) - concentration1
    mean_resultant = i1e(concentration1) / i0e(concentration1)
    return float(log_ratio + mean_resultant * (concentration1 - concentration2 * np.cos(location1 - location2)))


def _unit_ball(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    points = rng.normal(size=(n, d))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points * rng.uniform(size=(n, 1)) ** (1.0 / d)


def danco(
    X: np.ndarray,
    k: int = 10,
    *,
    max_dim: int | None = None,
    max_queries: int | None = 5000,
    random_state: int | None = 0,
) -> tuple[float, dict[int, float]]:
    """DANCo intrinsic dimension: the dimension of the unit ball whose distance and angle statistics, sampled
    with as many points, are closest to the data's in Kullback-Leibler divergence.

    The data's statistics (:func:`danco_statistics`) are the MIND_MLk dimension of rho = r_1 / r_(k+1) and
    the mean von Mises location and concentration of the angles between each point's k nearest neighbours.
    The same are computed on n points uniform in the unit d-ball for d = 1, 2, ...; the divergence of the
    rho densities (closed form) plus that of the von Mises densities is minimised over d, and refined
    between integers by interpolating the ball statistics linearly in d (the fractal variant).

    Parameters
    ----------
    X : numpy.ndarray of shape (n, dim)
        Free of exact duplicates, at least k + 2 rows.
    k : int, default=10
    max_dim : int, optional
        Largest dimension tried (default: ``dim``). The search also stops ten dimensions after the divergence
        last fell, beyond three times the uncalibrated MIND_MLk estimate.
    max_queries : int or None, default=5000
        Rows whose neighbourhoods are read, in the data and in each ball (None: all).
    random_state : int or None, default=0
        Seeds the queries and the balls.

    Returns
    -------
    tuple
        (the estimate, the divergence at each integer dimension tried).

    References
    ----------
    Ceruti, Bassis, Rozza, Lombardi, Casiraghi and Campadelli (2014), "DANCo: an intrinsic dimensionality
    estimator exploiting angle and norm concentration", Pattern Recognition 47(8), 2569-2581.
    Best and Fisher (1981), "The bias of the maximum likelihood estimators of the von Mises-Fisher
    concentration parameters", Communications in Statistics (the inverse Bessel-ratio approximation).
    """
    n, dim = np.shape(X)
    check_int(k, "k", 2)
    if n < k + 2:
        raise EmbeddingDataError(f"DANCo with k={k} needs at least {k + 2} rows, got {n}.")
    top = dim if max_dim is None else check_int(max_dim, "max_dim", 1)
    seed = 0 if random_state is None else random_state
    data = danco_statistics(X, k, max_queries=max_queries, upper=top, seed=seed)
    rng = np.random.default_rng(seed)
    balls: dict[int, DancoStatistics] = {}
    divergences: dict[int, float] = {}

    def divergence(stats: DancoStatistics) -> float:
        return _kl_dimension(data.dimension, stats.dimension, k) + _kl_von_mises(
            data.angle_location, data.angle_concentration, stats.angle_location, stats.angle_concentration
        )

    best = 1
    for d in range(1, top + 1):
        ball = _unit_ball(n, d, rng)
        balls[d] = danco_statistics(ball, k, max_queries=max_queries, upper=top, skip_duplicates=True, seed=seed)
        divergences[d] = divergence(balls[d])
        if divergences[d] < divergences[best]:
            best = d
        if d > 3 * data.dimension and d >= best + 10:
            break

    def interpolated(x: float) -> float:
        low = min(int(np.floor(x)), max(balls))
        high = min(low + 1, max(balls))
        w = x - low
        mix = [(1 - w) * getattr(balls[low], f) + w * getattr(balls[high], f) for f in _FIELDS]
        return divergence(DancoStatistics(*mix))

    bounds = (max(1.0, best - 1.0), min(float(max(balls)), best + 1.0))
    if bounds[1] <= bounds[0]:
        return float(best), divergences
    refined = minimize_scalar(interpolated, bounds=bounds, method="bounded", options={"xatol": 1e-3})
    value = float(refined.x) if refined.fun <= divergences[best] else float(best)
    return value, divergences
