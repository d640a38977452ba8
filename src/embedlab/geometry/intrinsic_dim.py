"""Intrinsic dimension: TwoNN, MLE (Levina-Bickel / MacKay-Ghahramani), GRIDE, PCA, and pointwise LID.

The kNN estimators take Euclidean neighbour distances, ascending, the query itself excluded (the
``KnnResult`` convention of :mod:`embedlab.neighbors` with ``metric="l2"``), so every estimator can run from
one shared kNN graph. Rows whose nearest distance is zero (exact duplicates) must be removed first:
:func:`embedlab.geometry.inspect_geometry` does that and reports how many.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import betaln

from embedlab._checks import check_choice, check_int
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.geometry._estimate import IDEstimate, bootstrap_interval
from embedlab.io.shards import ShardedSet, gather_rows
from embedlab.neighbors import ShardedSearcher, knn
from embedlab.scale import Backend

__all__ = [
    "gride",
    "gride_curve",
    "local_id",
    "mle_id",
    "pca_dimensions",
    "twonn",
    "twonn_decimation",
    "twonn_shards",
]


def _check_distances(distances: np.ndarray, needed: int, name: str) -> np.ndarray:
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] < needed:
        raise ConfigurationError(f"{name} needs distances to at least {needed} neighbours, got shape {d.shape}.")
    if d.shape[0] < 3:
        raise EmbeddingDataError(f"{name} needs at least 3 points, got {d.shape[0]}.")
    if not np.isfinite(d[:, :needed]).all():
        raise EmbeddingDataError(f"{name}: neighbour distances contain NaN or Inf (missing neighbours).")
    if (d[:, 0] <= 0).any():
        raise EmbeddingDataError(
            f"{name}: {int((d[:, 0] <= 0).sum())} points have a duplicate at distance 0; remove exact duplicates "
            "first (inspect_geometry does)."
        )
    return d


def _twonn_fit(mu: np.ndarray, discard_fraction: float) -> float:
    """Slope through the origin of -log(1 - F(mu)) against log(mu), the largest ratios discarded."""
    n = mu.size
    keep = max(2, int(n * (1.0 - discard_fraction)))
    log_mu = np.log(np.sort(mu)[:keep])
    y = -np.log1p(-np.arange(1, keep + 1) / n)
    return float(log_mu @ y / (log_mu @ log_mu))


def twonn(
    distances: np.ndarray,
    *,
    discard_fraction: float = 0.1,
    n_boot: int = 200,
    random_state: int | None = 0,
) -> IDEstimate:
    """TwoNN intrinsic dimension from the ratio of second to first neighbour distances.

    Under local uniformity mu = r2 / r1 is Pareto-distributed with exponent d, so -log(1 - F(mu)) = d log mu;
    d is the slope of that line through the origin, fitted after discarding the largest ``discard_fraction``
    of ratios (the paper's guard against noise and curvature).

    Parameters
    ----------
    distances : numpy.ndarray of shape (n, k >= 2)
        Euclidean distances to each point's nearest neighbours, ascending, self excluded, no zero distances.
    discard_fraction : float, default=0.1
    n_boot : int, default=200
        Bootstrap resamples of the points for the 95% interval.
    random_state : int or None, default=0

    Returns
    -------
    IDEstimate

    References
    ----------
    Facco, d'Errico, Rodriguez and Laio (2017), "Estimating the intrinsic dimension of datasets by a minimal
    neighborhood information", Scientific Reports 7, 12140.

    Examples
    --------
    >>> import numpy as np
    >>> from embedlab.neighbors import knn
    >>> X = np.random.default_rng(0).uniform(size=(4000, 3))
    >>> round(twonn(knn(X, 2, metric="l2").distances).value)
    3
    """
    if not 0.0 <= discard_fraction < 1.0:
        raise ConfigurationError(f"discard_fraction must be in [0, 1), got {discard_fraction}.")
    d = _check_distances(distances, 2, "TwoNN")
    mu = d[:, 1] / d[:, 0]
    mu = mu[mu > 1.0]  # ties r1 == r2 carry no information about d
    value = _twonn_fit(mu, discard_fraction)
    low, high = bootstrap_interval(
        lambda m: _twonn_fit(m, discard_fraction), mu, n_boot=n_boot, rng=np.random.default_rng(random_state)
    )
    return IDEstimate(value, low, high, int(mu.size))


def _sampled_distances(
    sharded: ShardedSet, n_queries: int, depth: int, metric: str, backend: str | Backend, random_state: int | None
) -> np.ndarray:
    """Euclidean (or chord) distances of ``n_queries`` seeded rows to their ``depth`` nearest other rows."""
    check_choice(metric, "metric", ("l2", "cosine"))
    m = min(check_int(n_queries, "n_queries"), sharded.n_rows)
    positions = np.sort(np.random.default_rng(random_state).choice(sharded.n_rows, m, replace=False))
    queries = gather_rows(sharded, positions, backend=backend)
    depth = min(depth, sharded.n_rows - 1)
    found = ShardedSearcher(sharded, metric, backend=backend).search(queries, depth, exclude=positions)
    distances = found.distances.astype(np.float64)
    return np.sqrt(2.0 * distances) if metric == "cosine" else distances


def twonn_shards(
    sharded: ShardedSet,
    *,
    n_queries: int = 10_000,
    metric: str = "l2",
    backend: str | Backend = "local",
    discard_fraction: float = 0.1,
    n_boot: int = 200,
    random_state: int | None = 0,
) -> IDEstimate:
    """TwoNN of a sharded set from sampled query rows whose neighbours are searched exactly among all rows.

    ``n_queries`` rows drawn uniformly (seeded) are gathered from their shards and searched against every
    shard (:class:`~embedlab.neighbors.ShardedSearcher`), their own rows left out. Exact duplicates carry no
    ratio: r1 and r2 are each query's first two distinct non-zero distances among its four nearest rows, which
    is what removing the duplicates first gives unless a row has more than two copies.

    Parameters
    ----------
    sharded : ShardedSet
    n_queries : int, default=10000
        At most the number of rows.
    metric : {"l2", "cosine"}, default="l2"
        ``"cosine"`` measures chord distances between unit-normalised rows (``sqrt(2 (1 - cos))``).
    backend : {"local", "ray"} or Backend, default="local"
    discard_fraction, n_boot : see :func:`twonn`
    random_state : int or None, default=0
        Seeds the query rows and the bootstrap.

    Returns
    -------
    IDEstimate
        ``n`` is the number of queries with a ratio.

    References
    ----------
    Facco, d'Errico, Rodriguez and Laio (2017), "Estimating the intrinsic dimension of datasets by a minimal
    neighborhood information", Scientific Reports 7, 12140.
    """
    distances = _sampled_distances(sharded, n_queries, 4, metric, backend, random_state)
    m = distances.shape[0]
    depth = distances.shape[1]
    ratios = np.full((m, 2), np.nan)
    for column in range(depth):  # the first non-zero distance, then the first beyond it
        r = distances[:, column]
        first = np.isnan(ratios[:, 0]) & (r > 0)
        second = ~np.isnan(ratios[:, 0]) & np.isnan(ratios[:, 1]) & (r > ratios[:, 0])
        ratios[second, 1] = r[second]
        ratios[first, 0] = r[first]
    usable = ratios[~np.isnan(ratios).any(axis=1)]
    if usable.shape[0] < 2:
        raise EmbeddingDataError(f"{sharded.path}: too few distinct neighbours among the sampled rows for TwoNN.")
    return twonn(usable, discard_fraction=discard_fraction, n_boot=n_boot, random_state=random_state)


#: Neighbours searched beyond what the MLE needs, so that a query's exact copies (distance 0) can be skipped.
_SPARE_NEIGHBOURS = 8


def mle_shards(
    sharded: ShardedSet,
    *,
    k: int = 20,
    n_queries: int = 10_000,
    metric: str = "l2",
    scales: tuple[int, ...] = (5, 10, 20, 40),
    backend: str | Backend = "local",
    n_boot: int = 200,
    random_state: int | None = 0,
) -> IDEstimate:
    """The MLE intrinsic dimension (:func:`mle_id`) of a sharded set from sampled query rows whose neighbours
    are searched exactly among all rows.

    ``n_queries`` rows drawn uniformly (seeded) are searched against every shard
    (:class:`~embedlab.neighbors.ShardedSearcher`), their own rows left out. Exact copies of a query (distance
    0) carry no scale and are skipped: each query's first ``max(k, scales)`` non-zero distances are used, and a
    query with more than 8 copies is left out.

    Parameters
    ----------
    sharded : ShardedSet
    k, scales, n_boot : see :func:`mle_id`
    n_queries : int, default=10000
        At most the number of rows.
    metric : {"l2", "cosine"}, default="l2"
        ``"cosine"`` measures chord distances between unit-normalised rows.
    backend : {"local", "ray"} or Backend, default="local"
    random_state : int or None, default=0
        Seeds the query rows and the bootstrap.

    Returns
    -------
    IDEstimate
        ``n`` is the number of queries used; ``scale`` as for :func:`mle_id`.

    Raises
    ------
    ConfigurationError
        On bad parameters.
    EmbeddingDataError
        When too few queries have enough distinct neighbours.

    References
    ----------
    Levina and Bickel (2004), "Maximum likelihood estimation of intrinsic dimension", NeurIPS 17.
    MacKay and Ghahramani (2005), "Comments on 'Maximum likelihood estimation of intrinsic dimension' by
    E. Levina and P. Bickel".
    """
    need = max(check_int(k, "k", 2), *scales)
    distances = _sampled_distances(sharded, n_queries, need + _SPARE_NEIGHBOURS, metric, backend, random_state)
    distinct = distances > 0
    first_non_zero = np.argsort(~distinct, axis=1, kind="stable")  # the non-zero distances first, in order
    distances = np.take_along_axis(distances, first_non_zero, axis=1)
    usable = distinct.sum(axis=1) >= min(need, distances.shape[1])
    if usable.sum() < 2:
        raise EmbeddingDataError(f"{sharded.path}: too few distinct neighbours among the sampled rows for the MLE.")
    return mle_id(distances[usable, :need], k, scales=scales, n_boot=n_boot, random_state=random_state)


def twonn_decimation(
    X: np.ndarray,
    fractions: tuple[float, ...] = (0.5, 0.25, 0.125),
    *,
    rows: np.ndarray | None = None,
    discard_fraction: float = 0.1,
    max_queries: int = 5000,
    random_state: int | None = 0,
) -> dict[float, float]:
    """TwoNN on random subsets of the points: the scale analysis of Facco et al. (2017).

    Keeping a fraction f of the points stretches neighbour distances by about f^(-1/d), so the curve of
    estimates over f shows how the dimension depends on the scale: flat for a clean manifold, falling with f
    where small-scale noise inflates the estimate at full density.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
        Assumed validated.
    fractions : tuple of float, default=(0.5, 0.25, 0.125)
        Fractions too small to leave 20 points are skipped.
    rows : numpy.ndarray of int, optional
        Positions of the points to use, free of exact duplicates (one row of each group); all rows of ``X``
        by default, then assumed free of duplicates.
    discard_fraction : float, default=0.1
    max_queries : int, default=5000
        Points whose ratio is measured in each subset (their neighbours are searched among the whole subset).
    random_state : int or None, default=0
        Seeds the subsets, the query points and the neighbour searches.

    Returns
    -------
    dict
        fraction -> TwoNN estimate.

    References
    ----------
    Facco, d'Errico, Rodriguez and Laio (2017), "Estimating the intrinsic dimension of datasets by a minimal
    neighborhood information", Scientific Reports 7, 12140.
    """
    rng = np.random.default_rng(random_state)
    n = X.shape[0] if rows is None else len(rows)
    curve = {}
    for fraction in fractions:
        size = int(n * fraction)
        if size < 20:
            continue
        chosen = np.sort(rng.choice(n, size, replace=False))
        subset = chosen if rows is None else np.asarray(rows)[chosen]
        queries = subset[np.sort(rng.choice(size, min(max_queries, size), replace=False))]
        searchable = np.zeros(X.shape[0], dtype=bool)
        searchable[subset] = True
        distances = knn(
            X, 2, query_rows=queries, searchable=searchable, metric="l2", recall_sample=0, random_state=random_state
        ).distances
        curve[fraction] = twonn(distances, discard_fraction=discard_fraction, n_boot=0).value
    return curve


def local_id(distances: np.ndarray, k: int = 20) -> np.ndarray:
    """Pointwise maximum-likelihood local intrinsic dimension (LID) from each point's k nearest distances.

    ``m_k(x) = (k - 1) / sum_{j<k} log(T_k(x) / T_j(x))`` with ``T_j`` the distance to the j-th neighbour.

    Parameters
    ----------
    distances : numpy.ndarray of shape (n, >= k)
    k : int, default=20

    Returns
    -------
    numpy.ndarray of shape (n,)
        Infinite where all k distances are equal.

    References
    ----------
    Levina and Bickel (2004), "Maximum likelihood estimation of intrinsic dimension", NeurIPS 17.
    Amsaleg et al. (2015), "Estimating local intrinsic dimensionality", KDD.
    """
    if k < 2:
        raise ConfigurationError(f"k must be at least 2 for the MLE, got {k}.")
    d = _check_distances(distances, k, "MLE")[:, :k]
    log_ratios = np.log(d[:, -1:] / d[:, :-1]).sum(axis=1)
    with np.errstate(divide="ignore"):
        return (k - 1) / log_ratios


def _harmonic_mean(values: np.ndarray) -> float:
    return float(1.0 / np.mean(1.0 / values))


def mle_id(
    distances: np.ndarray,
    k: int = 20,
    *,
    scales: tuple[int, ...] = (5, 10, 20, 40),
    n_boot: int = 200,
    random_state: int | None = 0,
) -> IDEstimate:
    """Maximum-likelihood intrinsic dimension: pointwise Levina-Bickel estimates combined as MacKay and
    Ghahramani propose, by averaging their inverses.

    Parameters
    ----------
    distances : numpy.ndarray of shape (n, >= max(k, scales))
    k : int, default=20
        Neighbours of the reported estimate.
    scales : tuple of int, default=(5, 10, 20, 40)
        Neighbourhood sizes of the sensitivity curve (those the distances allow).
    n_boot : int, default=200
    random_state : int or None, default=0

    Returns
    -------
    IDEstimate
        ``scale`` maps each k to its estimate.

    References
    ----------
    Levina and Bickel (2004), "Maximum likelihood estimation of intrinsic dimension", NeurIPS 17.
    MacKay and Ghahramani (2005), "Comments on 'Maximum likelihood estimation of intrinsic dimension' by
    E. Levina and P. Bickel".
    """
    pointwise = local_id(distances, k)
    finite = pointwise[np.isfinite(pointwise)]
    value = _harmonic_mean(finite)
    low, high = bootstrap_interval(_harmonic_mean, finite, n_boot=n_boot, rng=np.random.default_rng(random_state))
    available = np.asarray(distances).shape[1]
    curve = {}
    for s in scales:
        if 2 <= s <= available:
            lid = local_id(distances, s)
            curve[s] = _harmonic_mean(lid[np.isfinite(lid)])
    return IDEstimate(value, low, high, int(finite.size), curve)


def _gride_fit(log_mu: np.ndarray, n1: int, n2: int, upper: float) -> float:
    """Maximum-likelihood d for ratios mu = r_n2 / r_n1 (Denti et al. 2022, eq. 4)."""
    gap = n2 - n1 - 1
    mean_log = float(log_mu.mean())

    def negative_log_likelihood(d: float) -> float:
        term = np.mean(d * log_mu + np.log(-np.expm1(-d * log_mu))) if gap else 0.0
        return -(np.log(d) + gap * term - (d * (n2 - 1) + 1) * mean_log - betaln(n2 - n1, n1))

    if gap == 0:  # closed form: the TwoNN maximum-likelihood estimate
        return float(1.0 / ((n2 - 1) * mean_log))
    result = minimize_scalar(negative_log_likelihood, bounds=(1e-3, upper), method="bounded", options={"xatol": 1e-4})
    return float(result.x)


def gride_curve(distances: np.ndarray, *, max_order: int | None = None) -> dict[int, float]:
    """GRIDE estimates at the scales n2 = 2, 4, 8, ... (n1 = n2 / 2) the distances allow.

    Returns
    -------
    dict
        n2 -> estimated dimension. Larger n2 probes larger neighbourhoods, so a plateau over n2 is the
        dimension at that scale while a rise at small n2 signals noise.

    References
    ----------
    Denti, Doimo, Laio and Mira (2022), "The generalized ratios intrinsic dimension estimator", Scientific
    Reports 12, 20005.
    """
    d = _check_distances(distances, 2, "GRIDE")
    order = d.shape[1] if max_order is None else min(max_order, d.shape[1])
    curve = {}
    n2 = 2
    while n2 <= order:
        mu = d[:, n2 - 1] / d[:, n2 // 2 - 1]
        mu = mu[mu > 1.0]
        curve[n2] = _gride_fit(np.log(mu), n2 // 2, n2, upper=10.0 * d.shape[1] + 1000.0)
        n2 *= 2
    return curve


def gride(
    distances: np.ndarray,
    *,
    max_order: int | None = None,
    n_boot: int = 100,
    random_state: int | None = 0,
) -> IDEstimate:
    """GRIDE multi-scale intrinsic dimension, reported at its most stable scale.

    The value is the estimate at the scale n2 where the curve of :func:`gride_curve` changes least from the
    previous scale (its plateau); ``scale`` holds the whole curve.

    Parameters
    ----------
    distances : numpy.ndarray of shape (n, k >= 2)
    max_order : int, optional
        Largest n2 of the curve (default: as many neighbours as the distances have).
    n_boot : int, default=100
    random_state : int or None, default=0

    Returns
    -------
    IDEstimate

    References
    ----------
    Denti, Doimo, Laio and Mira (2022), "The generalized ratios intrinsic dimension estimator", Scientific
    Reports 12, 20005.
    """
    curve = gride_curve(distances, max_order=max_order)
    orders = sorted(curve)
    if len(orders) == 1:
        chosen = orders[0]
    else:
        changes = [abs(np.log(curve[b] / curve[a])) for a, b in pairwise(orders)]
        chosen = orders[1 + int(np.argmin(changes))]
    d = np.asarray(distances, dtype=np.float64)
    mu = d[:, chosen - 1] / d[:, chosen // 2 - 1]
    log_mu = np.log(mu[mu > 1.0])
    upper = 10.0 * d.shape[1] + 1000.0
    low, high = bootstrap_interval(
        lambda s: _gride_fit(s, chosen // 2, chosen, upper),
        log_mu,
        n_boot=n_boot,
        rng=np.random.default_rng(random_state),
    )
    return IDEstimate(curve[chosen], low, high, int(log_mu.size), curve)


def _components_for(eigenvalues: np.ndarray, variance: float) -> int:
    ratios = np.cumsum(eigenvalues) / eigenvalues.sum()
    return int(np.searchsorted(ratios, variance - 1e-12) + 1)


def _covariance_eigenvalues(rows: np.ndarray) -> np.ndarray:
    centred = rows - rows.mean(axis=0)
    return np.linalg.eigvalsh(centred.T @ centred / (len(rows) - 1))[::-1].clip(min=0.0)


def pca_dimensions(
    X: np.ndarray,
    variances: tuple[float, ...] = (0.9, 0.95, 0.99),
    *,
    n_boot: int = 50,
    random_state: int | None = 0,
) -> dict[float, IDEstimate]:
    """Number of principal components that explain each share of the total variance.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
        Assumed validated (float32, finite); for large sets pass a sample.
    variances : tuple of float, default=(0.9, 0.95, 0.99)
    n_boot : int, default=50
        Bootstrap resamples of the rows for the intervals.
    random_state : int or None, default=0

    Returns
    -------
    dict
        variance share -> IDEstimate.

    References
    ----------
    Jolliffe (2002), "Principal Component Analysis", 2nd ed., section 6.1.1 (cumulative percentage of total
    variation).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 10)) * np.r_[10.0, 10.0, np.full(8, 0.1)]
    >>> pca_dimensions(X, (0.9,), n_boot=0)[0.9].value
    2.0
    """
    for v in variances:
        if not 0.0 < v <= 1.0:
            raise ConfigurationError(f"variance shares must be in (0, 1], got {v}.")
    data = np.asarray(X, dtype=np.float32)
    if data.shape[0] < 2:
        raise EmbeddingDataError(f"PCA needs at least 2 rows, got {data.shape[0]}.")
    shares = tuple(variances)

    def counts(rows: np.ndarray) -> np.ndarray:
        eigenvalues = _covariance_eigenvalues(rows).astype(np.float64)
        return np.array([_components_for(eigenvalues, v) for v in shares], dtype=np.float64)

    rng = np.random.default_rng(random_state)
    value = counts(data)
    result = {}
    if n_boot >= 1:
        boots = np.array([counts(data[rng.integers(0, len(data), len(data))]) for _ in range(n_boot)])
        low, median, high = np.quantile(boots, [0.025, 0.5, 0.975], axis=0)
        low, high = low + value - median, high + value - median
    else:
        low, high = value, value
    for i, v in enumerate(shares):
        result[v] = IDEstimate(float(value[i]), float(low[i]), float(high[i]), int(data.shape[0]))
    return result
