"""Intrinsic dimension: TwoNN, MLE (Levina-Bickel / MacKay-Ghahramani), GRIDE, TLE, PCA and pointwise LID, each
optionally corrected for the finite sample (:mod:`embedlab.geometry._reference`), and the recommended estimate
that brackets that correction and says when the estimators disagree.

The kNN estimators take Euclidean neighbour distances, ascending, the query itself excluded (the
``KnnResult`` convention of :mod:`embedlab.neighbors` with ``metric="l2"``), so every estimator can run from
one shared kNN graph. Rows whose nearest distance is zero (exact duplicates) must be removed first:
:func:`embedlab.geometry.inspect_geometry` does that and reports how many.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import betaln

from embedlab._checks import check_choice, check_int
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.geometry._estimate import IDEstimate, bootstrap_interval
from embedlab.geometry._reference import REFERENCE_QUERIES, Reference
from embedlab.io.shards import ShardedSet, gather_rows
from embedlab.neighbors import ShardedSearcher, knn
from embedlab.scale import Backend

__all__ = [
    "RecommendedID",
    "decimation_plateau",
    "gride",
    "gride_curve",
    "local_id",
    "mle_id",
    "pca_dimensions",
    "recommended_id",
    "stable_scale",
    "tle",
    "twonn",
    "twonn_decimation",
    "twonn_shards",
]

#: Shapes a finite-sample correction reads its reference from (see :mod:`embedlab.geometry._reference`).
REFERENCES = ("sphere", "cube")


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


def _corrected(
    estimate: IDEstimate,
    statistic: Callable[[np.ndarray], float],
    ranks: tuple[int, ...],
    n_points: int | None,
    reference: str,
    random_state: int | None,
    ratios: int | None = None,
) -> IDEstimate:
    """``estimate`` with value and interval mapped through the finite-sample correction of ``reference``, or
    unchanged when ``n_points`` is None; ``scale`` keeps the uncorrected value under ``"uncorrected"``. The
    interval widens by the reference's own Monte-Carlo error, added in quadrature.

    ``statistic`` reads the distances of the neighbours of the given ranks, a column each. The sphere reference
    averages over ``ratios`` ratios: by default 10,000, and 2,000 for an estimate from fewer than 1,000 points,
    whose own sampling error (over 3%) dwarfs the reference's."""
    if n_points is None:
        return estimate
    check_choice(reference, "reference", REFERENCES)
    check_int(n_points, "n_points", ranks[-1] + 1, why=f"the points the {ranks[-1]} neighbours were searched among")
    seed = 0 if random_state is None else random_state
    if ratios is None:  # below 1,000 ratios the estimate's own error is over 3%: a smaller reference will do
        ratios = REFERENCE_QUERIES if estimate.n == 0 or estimate.n >= 1000 else _CURVE_RATIOS
    ref = Reference(statistic, ranks, n_points, reference, seed=seed, ratios=ratios)
    start = None
    if reference == "cube":  # the sphere's correction, exact and cheap, is a lower bound to start the walk from
        sphere = Reference(statistic, ranks, n_points, "sphere", seed=seed, ratios=_CURVE_RATIOS)
        start = 0.95 * sphere.invert(estimate.value)
    value = ref.invert(estimate.value, start=start)
    low = ref.invert(estimate.ci_low, start=value * estimate.ci_low / estimate.value)
    high = ref.invert(estimate.ci_high, start=value)
    reference_error = 1.96 * value * ref.relative_error
    low, high = value - np.hypot(value - low, reference_error), value + np.hypot(high - value, reference_error)
    return IDEstimate(value, float(low), float(high), estimate.n, {**estimate.scale, "uncorrected": estimate.value})


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
    n_points: int | None = None,
    reference: str = "sphere",
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
    n_points : int, optional
        The points the neighbours were searched among. When given, the estimate is corrected for that finite
        sample: it is the dimension of the ``reference`` manifold on which TwoNN, with ``n_points`` points,
        reads what it read here (see :mod:`embedlab.geometry._reference`).
    reference : {"sphere", "cube"}, default="sphere"
        The closed unit sphere (the least correction) or the unit cube (boundary on every side, the most).
    n_boot : int, default=200
        Bootstrap resamples of the points for the 95% interval.
    random_state : int or None, default=0
        Seeds the bootstrap and the reference.

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
    estimate = IDEstimate(value, low, high, int(mu.size))
    return _corrected(
        estimate, lambda r: _twonn_fit(r[:, 1] / r[:, 0], discard_fraction), (1, 2), n_points, reference, random_state
    )


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
    reference: str | None = None,
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
    reference : {"sphere", "cube"}, optional
        When given, the estimate is corrected for the set's number of rows on that reference (as
        :func:`twonn` with ``n_points``).
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
    correction = {} if reference is None else {"n_points": sharded.n_rows, "reference": reference}
    return twonn(usable, discard_fraction=discard_fraction, n_boot=n_boot, random_state=random_state, **correction)


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
    reference: str | None = None,
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
    reference : {"sphere", "cube"}, optional
        When given, the estimate is corrected for the set's number of rows on that reference.
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
    correction = {} if reference is None else {"n_points": sharded.n_rows, "reference": reference}
    return mle_id(distances[usable, :need], k, scales=scales, n_boot=n_boot, random_state=random_state, **correction)


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


def _mle_fit(distances: np.ndarray, k: int) -> float:
    """The pooled (MacKay-Ghahramani) MLE: the harmonic mean of the pointwise Levina-Bickel estimates."""
    return float((k - 1) / np.mean(np.log(distances[:, k - 1 : k] / distances[:, : k - 1]).sum(axis=1)))


def mle_id(
    distances: np.ndarray,
    k: int = 20,
    *,
    scales: tuple[int, ...] = (5, 10, 20, 40),
    n_points: int | None = None,
    reference: str = "sphere",
    n_boot: int = 200,
    random_state: int | None = 0,
) -> IDEstimate:
    """Maximum-likelihood intrinsic dimension: pointwise Levina-Bickel estimates combined as MacKay and
    Ghahramani propose, by averaging their inverses.

    Levina and Bickel average the pointwise estimates m_k(x); MacKay and Ghahramani show that the likelihood of
    all points together is maximised by the inverse of the mean of 1 / m_k(x), which removes the upward bias
    of averaging estimates that are themselves inverses.

    Parameters
    ----------
    distances : numpy.ndarray of shape (n, >= max(k, scales))
    k : int, default=20
        Neighbours of the reported estimate.
    scales : tuple of int, default=(5, 10, 20, 40)
        Neighbourhood sizes of the sensitivity curve (those the distances allow).
    n_points : int, optional
        The points the neighbours were searched among; when given, the estimate and its scale curve are
        corrected for that finite sample (as in :func:`twonn`).
    reference : {"sphere", "cube"}, default="sphere"
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
            if n_points is not None:
                curve[s] = _corrected(
                    IDEstimate(curve[s], curve[s], curve[s], 0),
                    partial(_mle_fit, k=s),
                    tuple(range(1, s + 1)),
                    n_points,
                    reference,
                    random_state,
                ).value
    estimate = IDEstimate(value, low, high, int(finite.size), curve)
    return _corrected(estimate, partial(_mle_fit, k=k), tuple(range(1, k + 1)), n_points, reference, random_state)


def _gride_negative_log_likelihood(d: float, log_mu: np.ndarray, n1: int, n2: int) -> float:
    """Mean negative log-likelihood of ratios mu = r_n2 / r_n1 under dimension d (Denti et al. 2022, eq. 4)."""
    gap = n2 - n1 - 1
    term = np.mean(d * log_mu + np.log(-np.expm1(-d * log_mu))) if gap else 0.0
    return float(-(np.log(d) + gap * term - (d * (n2 - 1) + 1) * log_mu.mean() - betaln(n2 - n1, n1)))


def _gride_fit(log_mu: np.ndarray, n1: int, n2: int, upper: float) -> float:
    """Maximum-likelihood d for ratios mu = r_n2 / r_n1 (Denti et al. 2022, eq. 4)."""
    if n2 - n1 == 1:  # closed form: the TwoNN maximum-likelihood estimate
        return float(1.0 / ((n2 - 1) * float(log_mu.mean())))
    result = minimize_scalar(
        _gride_negative_log_likelihood,
        bounds=(1e-3, upper),
        args=(log_mu, n1, n2),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(result.x)


def _gride_standard_error(d: float, log_mu: np.ndarray, n1: int, n2: int) -> float:
    """Standard error of the GRIDE estimate from the observed Fisher information (a numerical second
    derivative of the likelihood at the estimate)."""
    h = 1e-3 * d
    curvature = (
        _gride_negative_log_likelihood(d + h, log_mu, n1, n2)
        - 2.0 * _gride_negative_log_likelihood(d, log_mu, n1, n2)
        + _gride_negative_log_likelihood(d - h, log_mu, n1, n2)
    ) / h**2
    return float(1.0 / np.sqrt(max(curvature, 1e-300) * log_mu.size))


#: Reference ratios of each corrected scale of a GRIDE curve (its plateau needs the curve's shape, not the last
#: percent of each point; the chosen scale is corrected again with the full reference), and the fewest any
#: correction reads.
_CURVE_RATIOS = 2000


def _gride_ratios(distances: np.ndarray, n2: int) -> np.ndarray:
    mu = distances[:, n2 - 1] / distances[:, n2 // 2 - 1]
    return np.log(mu[mu > 1.0])


def _gride_upper(distances: np.ndarray) -> float:
    return 10.0 * distances.shape[1] + 1000.0


def gride_curve(
    distances: np.ndarray,
    *,
    max_order: int | None = None,
    n_points: int | None = None,
    reference: str = "sphere",
    random_state: int | None = 0,
) -> dict[int, float]:
    """GRIDE estimates at the scales n2 = 2, 4, 8, ... (n1 = n2 / 2) the distances allow.

    Parameters
    ----------
    distances : numpy.ndarray of shape (n, k >= 2)
    max_order : int, optional
        Largest n2 (default: as many neighbours as the distances have).
    n_points : int, optional
        When given, each scale's estimate is corrected for that finite sample (as in :func:`twonn`).
    reference : {"sphere", "cube"}, default="sphere"
    random_state : int or None, default=0
        Seeds the reference.

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
    return {
        n2: estimate.value
        for n2, (estimate, _) in _gride_scales(distances, max_order, n_points, reference, random_state).items()
    }


def _gride_scales(
    distances: np.ndarray,
    max_order: int | None,
    n_points: int | None,
    reference: str,
    random_state: int | None,
) -> dict[int, tuple[IDEstimate, float]]:
    """n2 -> (the estimate at that scale, corrected when ``n_points`` is given; its standard error)."""
    d = _check_distances(distances, 2, "GRIDE")
    order = d.shape[1] if max_order is None else min(max_order, d.shape[1])
    upper = _gride_upper(d)
    scales = {}
    n2 = 2
    while n2 <= order:
        log_mu = _gride_ratios(d, n2)
        value = _gride_fit(log_mu, n2 // 2, n2, upper)
        error = _gride_standard_error(value, log_mu, n2 // 2, n2)
        raw = IDEstimate(value, value, value, int(log_mu.size))
        n1, top = n2 // 2, n2
        corrected = _corrected(
            raw,
            lambda r, n1=n1, top=top: _gride_fit(np.log(r[:, 1] / r[:, 0]), n1, top, upper),
            (n1, n2),
            n_points,
            reference,
            random_state,
            ratios=_CURVE_RATIOS,
        )
        scales[n2] = (corrected, error * corrected.value / value)
        n2 *= 2
    return scales


def stable_scale(values: dict, errors: dict, *, tolerance: float = 2.0, falls_only: bool = False) -> object:
    """The first scale whose value agrees with the next scale's within ``tolerance`` times their combined
    standard error, else the scale whose change to the next is smallest in standard errors; scales in
    increasing order.

    This is the plateau of a multiscale analysis (Facco et al. 2017, figure 3; Denti et al. 2022, section 3)
    chosen from the data: below it small-scale noise moves the estimate, and beyond it the estimate holds.
    With ``falls_only``, only a fall to the next scale counts as a change (noise inflates the estimate at
    small scales; a rise is curvature or the finite sample, not noise).
    """
    scales = list(values)
    if len(scales) == 1:
        return scales[0]
    changes = []
    for here, there in pairwise(scales):
        change = values[here] - values[there] if falls_only else abs(values[here] - values[there])
        change /= np.hypot(errors[here], errors[there])
        if change <= tolerance:
            return here
        changes.append(change)
    return scales[int(np.argmin(changes))]


def gride(
    distances: np.ndarray,
    *,
    max_order: int | None = None,
    n_points: int | None = None,
    reference: str = "sphere",
    n_boot: int = 100,
    random_state: int | None = 0,
) -> IDEstimate:
    """GRIDE multi-scale intrinsic dimension, reported at the first scale of its plateau.

    The estimate is computed at n2 = 2, 4, 8, ... (n1 = n2 / 2), each with its standard error from the
    likelihood's curvature, and reported at the smallest n2 whose estimate the next scale confirms within
    twice their combined standard error (:func:`stable_scale`): the range selection Denti et al. propose,
    chosen from the data. ``scale`` holds the whole curve.

    Parameters
    ----------
    distances : numpy.ndarray of shape (n, k >= 2)
    max_order : int, optional
        Largest n2 of the curve (default: as many neighbours as the distances have).
    n_points : int, optional
        When given, every scale is corrected for that finite sample (as in :func:`twonn`), so that the
        curve is flat on a clean manifold of any dimension and the plateau is not hidden by the bias.
    reference : {"sphere", "cube"}, default="sphere"
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
    scales = _gride_scales(distances, max_order, n_points, reference, random_state)
    chosen = stable_scale(
        {n2: estimate.value for n2, (estimate, _) in scales.items()},
        {n2: error for n2, (_, error) in scales.items()},
    )
    d = np.asarray(distances, dtype=np.float64)
    log_mu = _gride_ratios(d, chosen)
    upper = _gride_upper(d)
    n1 = chosen // 2
    low, high = bootstrap_interval(
        lambda s: _gride_fit(s, n1, chosen, upper), log_mu, n_boot=n_boot, rng=np.random.default_rng(random_state)
    )
    value = _gride_fit(log_mu, n1, chosen, upper)
    curve = {n2: estimate.value for n2, (estimate, _) in scales.items()}
    return _corrected(
        IDEstimate(value, low, high, int(log_mu.size), curve),
        lambda r: _gride_fit(np.log(r[:, 1] / r[:, 0]), n1, chosen, upper),
        (n1, chosen),
        n_points,
        reference,
        random_state,
    )


def _tle_pointwise(neighbours: np.ndarray, distances: np.ndarray, epsilon: float) -> np.ndarray:
    """TLE of each query from its neighbours' coordinates (b, k, dim) and distances (b, k), ascending."""
    r = distances[:, -1:, None]  # (b, 1, 1)
    di2 = (distances**2)[:, :, None]  # d(q, v_i)^2 down the rows
    dj2 = (distances**2)[:, None, :]  # d(q, v_j)^2 along the columns
    squares = np.einsum("bkd,bkd->bk", neighbours, neighbours)
    v2 = np.maximum(squares[:, :, None] + squares[:, None, :] - 2.0 * neighbours @ neighbours.transpose(0, 2, 1), 0)
    z2 = 2.0 * di2 + 2.0 * dj2 - v2
    room = r**2 - di2
    at_radius = room <= 1e-12 * r**2
    with np.errstate(divide="ignore", invalid="ignore"):

        def measure(w2: np.ndarray) -> np.ndarray:
            b = di2 + w2 - dj2
            inside = r * (np.sqrt(b**2 + 4.0 * w2 * room) - b) / (2.0 * room)
            return np.where(at_radius, r * w2 / (r**2 + w2 - dj2), inside)

        s, t = measure(v2), measure(z2)
    k = distances.shape[1]
    off_diagonal = ~np.eye(k, dtype=bool)[None]
    valid = off_diagonal & (v2 > 0) & np.isfinite(s) & np.isfinite(t) & (s >= epsilon) & (t >= epsilon)
    log_s = np.where(valid, np.log(np.where(valid, s, 1.0) / r), 0.0)
    log_t = np.where(valid, np.log(np.where(valid, t, 1.0) / r), 0.0)
    central = distances >= epsilon
    log_d = np.where(central, np.log(np.where(central, distances, 1.0) / distances[:, -1:]), 0.0)
    total = log_s.sum(axis=(1, 2)) + log_t.sum(axis=(1, 2)) + 2.0 * log_d.sum(axis=1)
    count = 2.0 * valid.sum(axis=(1, 2)) + 2.0 * central.sum(axis=1)
    with np.errstate(divide="ignore"):
        return -count / total


def tle(
    X: np.ndarray,
    indices: np.ndarray,
    distances: np.ndarray,
    k: int = 20,
    *,
    epsilon: float = 1e-4,
    batch_size: int = 512,
    n_boot: int = 200,
    random_state: int | None = 0,
) -> IDEstimate:
    """Tight local intrinsic dimension (TLE): the MLE of each point's local dimension from every distance its
    neighbourhood holds, not just those to the point.

    For a query q with k neighbours within radius r, each pair of neighbours (v, w) adds two measurements
    of the distance distribution at q: the distance s along the line from v through w at which a point
    would be as far from v as w is, and the same for w reflected through q (t); with the k central distances
    d(q, v), counted twice, every measurement x gives log(x / r) and the local estimate is
    -(number of measurements) / (their sum), the Hill estimator over about 2 k^2 measurements instead of k.
    Pairs at distance 0 and measurements below ``epsilon`` are dropped. The global estimate is the harmonic
    mean of the local ones (the MacKay-Ghahramani pooling of :func:`mle_id`).

    Parameters
    ----------
    X : numpy.ndarray of shape (n, dim)
        The points the neighbours index.
    indices : numpy.ndarray of shape (m, >= k)
        Rows of ``X`` that are each query's nearest neighbours, ascending, self excluded.
    distances : numpy.ndarray of shape (m, >= k)
        The Euclidean distances to them, no zero distances.
    k : int, default=20
    epsilon : float, default=1e-4
    batch_size : int, default=512
        Queries whose neighbourhoods are held at once (each a k x k matrix and k rows of ``X``).
    n_boot : int, default=200
    random_state : int or None, default=0

    Returns
    -------
    IDEstimate

    References
    ----------
    Amsaleg, Chelly, Houle, Kawarabayashi, Radovanovic and Treeratanajaru (2019), "Intrinsic dimensionality
    estimation within tight localities", SIAM International Conference on Data Mining, 181-189.
    """
    check_int(k, "k", 2)
    d = _check_distances(distances, k, "TLE")[:, :k]
    rows = np.asarray(indices)[:, :k]
    if rows.shape[0] != d.shape[0] or rows.min() < 0:
        raise ConfigurationError(f"TLE needs {k} neighbour rows for each of the {d.shape[0]} queries.")
    pointwise = np.concatenate(
        [
            _tle_pointwise(np.asarray(X[rows[i : i + batch_size]], dtype=np.float64), d[i : i + batch_size], epsilon)
            for i in range(0, d.shape[0], batch_size)
        ]
    )
    finite = pointwise[np.isfinite(pointwise) & (pointwise > 0)]
    if finite.size < 2:
        raise EmbeddingDataError("TLE: fewer than 2 neighbourhoods with distinct distances.")
    value = _harmonic_mean(finite)
    low, high = bootstrap_interval(_harmonic_mean, finite, n_boot=n_boot, rng=np.random.default_rng(random_state))
    return IDEstimate(value, low, high, int(finite.size))


def decimation_plateau(
    curve: dict[float, float],
    n_points: int,
    *,
    relative_error: float | None = None,
    max_queries: int = 5000,
    discard_fraction: float = 0.1,
) -> float:
    """The fraction at which a TwoNN decimation curve (:func:`twonn_decimation`, with 1.0 for all points)
    reaches its plateau: the densest scale from which the estimate does not fall by more than three combined
    standard errors to the next coarser one (:func:`stable_scale` with ``falls_only``; three, as the curve
    is tested at each of its scales). Noise inflates the estimate at full density; decimating stretches the
    distances beyond the noise, so the curve falls until it settles.

    Parameters
    ----------
    curve : dict
        Fraction -> estimate, 1.0 included.
    n_points : int
        Points at fraction 1.0.
    relative_error : float, optional
        Relative standard error of the estimate at 1.0 (from its bootstrap); each coarser estimate's error
        grows with the square root of the ratios it fits. By default d / sqrt(ratios fitted), the TwoNN
        maximum-likelihood error.
    max_queries : int, default=5000
        Queries of each decimated estimate.
    discard_fraction : float, default=0.1

    Returns
    -------
    float

    References
    ----------
    Facco, d'Errico, Rodriguez and Laio (2017), "Estimating the intrinsic dimension of datasets by a minimal
    neighborhood information", Scientific Reports 7, 12140 (the scale analysis of figure 3).
    """
    fractions = sorted(curve, reverse=True)
    values = {f: curve[f] for f in fractions}
    ratios = {f: max(1.0, (1.0 - discard_fraction) * min(max_queries, f * n_points)) for f in fractions}
    if relative_error is None:
        errors = {f: curve[f] / np.sqrt(ratios[f]) for f in fractions}
    else:
        full = ratios[fractions[0]]
        errors = {f: curve[f] * relative_error * np.sqrt(full / ratios[f]) for f in fractions}
    return float(stable_scale(values, errors, tolerance=3.0, falls_only=True))


@dataclass(frozen=True)
class RecommendedID(IDEstimate):
    """The intrinsic dimension embedlab recommends, with how far the estimators agree.

    Attributes
    ----------
    value : float
        TwoNN corrected for the finite sample: the geometric mean of its corrections to a closed reference
        (the sphere) and to a bounded one (the cube), at the plateau of the decimation curve.
    ci_low, ci_high : float
        The hull of the two corrections' intervals (bootstrap and reference error), widened to every other
        corrected estimate when they disagree.
    n : int
        Ratios the TwoNN fit used.
    scale : dict
        Fraction of the points -> TwoNN corrected for that many points (the decimation curve).
    fraction : float
        The fraction the value was read at (1.0 unless small-scale noise moved the plateau).
    estimates : dict
        Each corrected estimate: ``twonn_closed``, ``twonn_bounded``, ``mle``, ``gride`` (and ``decimation``).
    agree : bool
        Whether every corrected estimate lies inside the TwoNN interval.
    note : str
        One sentence for a person.
    """

    fraction: float = 1.0
    estimates: dict[str, float] = field(default_factory=dict)
    agree: bool = True
    note: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            **super().to_dict(),
            "fraction": self.fraction,
            "estimates": dict(self.estimates),
            "agree": self.agree,
            "note": self.note,
        }


_ESTIMATOR_NAMES = {"mle": "MLE", "gride": "GRIDE", "decimation": "TwoNN at the decimation plateau"}


def recommended_id(
    distances: np.ndarray,
    n_points: int,
    *,
    decimation: dict[float, float] | None = None,
    decimation_queries: int = 5000,
    discard_fraction: float = 0.1,
    n_boot: int = 200,
    random_state: int | None = 0,
) -> RecommendedID:
    """The intrinsic dimension to trust: TwoNN corrected for the finite sample, bracketed between a closed and
    a bounded reference, and checked against the other corrected estimators instead of averaged with them.

    1. TwoNN is corrected twice (:func:`twonn` with ``n_points``): to the unit sphere, which has no boundary
       and needs the least correction, and to the unit cube, whose boundary needs the most. The value is
       their geometric mean and the interval is the hull of their intervals.
    2. Given a decimation curve (:func:`twonn_decimation`, raw), each fraction is corrected for its own
       number of points and the plateau is found (:func:`decimation_plateau`); when it is not at full
       density, small-scale noise inflated the estimate and the value is read at the plateau instead.
    3. The MLE (k = 10) and GRIDE (at its plateau), both corrected, are compared with the interval; when one
       falls outside, ``agree`` is False, the interval widens to include it and the note names it.

    Parameters
    ----------
    distances : numpy.ndarray of shape (m, >= 10)
        Euclidean neighbour distances of m query points among ``n_points``, ascending, no zero distances.
    n_points : int
    decimation : dict, optional
        Fraction of the points -> raw TwoNN (without 1.0, which is measured here).
    decimation_queries : int, default=5000
        Queries of each decimated estimate (for its standard error).
    discard_fraction : float, default=0.1
    n_boot : int, default=200
    random_state : int or None, default=0

    Returns
    -------
    RecommendedID

    References
    ----------
    Facco, d'Errico, Rodriguez and Laio (2017), "Estimating the intrinsic dimension of datasets by a minimal
    neighborhood information", Scientific Reports 7, 12140.
    Ceruti, Bassis, Rozza, Lombardi, Casiraghi and Campadelli (2014), "DANCo: an intrinsic dimensionality
    estimator exploiting angle and norm concentration", Pattern Recognition 47(8) (calibration against
    references sampled with the data's size).
    Levina and Bickel (2004); MacKay and Ghahramani (2005); Denti, Doimo, Laio and Mira (2022).
    """
    d = _check_distances(distances, 2, "recommended_id")
    raw = twonn(d, discard_fraction=discard_fraction, n_boot=n_boot, random_state=random_state)

    def statistic(r: np.ndarray) -> float:
        return _twonn_fit(r[:, 1] / r[:, 0], discard_fraction)

    closed = _corrected(raw, statistic, (1, 2), n_points, "sphere", random_state)
    bounded = _corrected(raw, statistic, (1, 2), n_points, "cube", random_state)
    value = float(np.sqrt(closed.value * bounded.value))
    low, high = min(closed.ci_low, bounded.ci_low), max(closed.ci_high, bounded.ci_high)
    fraction = 1.0
    corrected = {1.0: closed.value}
    estimates = {"twonn_closed": closed.value, "twonn_bounded": bounded.value}
    if decimation:
        for share, reading in decimation.items():
            size = max(3, int(share * n_points))
            corrected[share] = _corrected(
                IDEstimate(reading, reading, reading, 0), statistic, (1, 2), size, "sphere", random_state
            ).value
        spread = (raw.ci_high - raw.ci_low) / (2 * 1.96 * raw.value) if raw.ci_high > raw.ci_low else None
        fraction = decimation_plateau(
            corrected,
            n_points,
            relative_error=spread,
            max_queries=decimation_queries,
            discard_fraction=discard_fraction,
        )
        estimates["decimation"] = corrected[fraction]
        if fraction < 1.0:  # read at the plateau, bracketed as at full density
            value = corrected[fraction] * np.sqrt(bounded.value / closed.value)
            low, high = min(low, corrected[fraction]), max(high, value)
    if d.shape[1] >= 10:
        estimates["mle"] = mle_id(d, 10, scales=(), n_points=n_points, n_boot=0, random_state=random_state).value
    if d.shape[1] >= 4:
        estimates["gride"] = gride(d, n_points=n_points, n_boot=0, random_state=random_state).value
    outside = {name: v for name, v in estimates.items() if name in _ESTIMATOR_NAMES and not low <= v <= high}
    agree = not outside
    if agree:
        note = (
            f"TwoNN, corrected for {n_points:,} points, reads {value:.1f}; the MLE and GRIDE agree within "
            f"{low:.1f}-{high:.1f}."
        )
    else:
        low, high = min(low, *outside.values()), max(high, *outside.values())
        named = ", ".join(f"{_ESTIMATOR_NAMES[name]} {v:.1f}" for name, v in outside.items())
        note = (
            f"The estimators disagree: TwoNN reads {value:.1f} but {named}; the set is not uniform at the "
            f"neighbour scale (noise, curvature or uneven density), so the interval spans {low:.1f}-{high:.1f}."
        )
    if fraction < 1.0:
        note += f" Small-scale noise: the value is read on {fraction:g} of the points, where the estimate settles."
    return RecommendedID(value, float(low), float(high), closed.n, corrected, fraction, estimates, agree, note)


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
