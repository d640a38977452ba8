"""Cluster evaluation: Hungarian accuracy, NMI and ARI against labels, internal scores, sizes and calibration.

Labels are used only to score. A predicted label of ``-1`` (``NOISE``, as HDBSCAN writes it) marks a row that
belongs to no cluster: it is never matched to a label, so it counts as wrong for the accuracy, it forms one
extra cluster for NMI and ARI, and it is left out of the internal scores and the cluster sizes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import config_context
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)

from embedlab._checks import check_choice, check_int
from embedlab._json import json_safe, plain
from embedlab.cluster._kmeans import ClusterMetric
from embedlab.exceptions import EmbeddingDataError
from embedlab.io.validation import unit_rows

__all__ = [
    "NOISE",
    "CalibrationReport",
    "ExternalScores",
    "InternalScores",
    "SizeDistribution",
    "calibration_error",
    "external_scores",
    "hungarian_accuracy",
    "internal_scores",
    "match_clusters",
    "size_distribution",
]

logger = logging.getLogger(__name__)

NOISE = -1  # predicted label of rows in no cluster
_SILHOUETTE_WORKING_MB = 16  # scikit-learn's chunking budget for the pairwise distances of the silhouette
_PROBA_TOLERANCE = 1e-4
_SHOWN_ROWS = 5


@dataclass(frozen=True)
class ExternalScores:
    """Agreement of a clustering with reference labels.

    Attributes
    ----------
    accuracy, nmi, ari : float
        Hungarian accuracy (:func:`hungarian_accuracy`), normalised mutual information (arithmetic
        normalisation) and adjusted Rand index; for NMI and ARI the noise rows form one extra cluster.
    n_clusters, n_labels : int
        Distinct predicted clusters (noise not counted) and distinct reference labels.
    noise_fraction : float
        Share of rows predicted as noise.
    """

    accuracy: float
    nmi: float
    ari: float
    n_clusters: int
    n_labels: int
    noise_fraction: float

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class InternalScores:
    """Label-free cluster quality of the non-noise rows.

    The three scores are NaN when undefined: fewer than 2 clusters, or every cluster a single row, among the
    rows they are computed on.

    Attributes
    ----------
    silhouette, davies_bouldin, calinski_harabasz : float
        Mean silhouette on the sample (in [-1, 1], higher is better), Davies-Bouldin index (>= 0, lower is
        better) and Calinski-Harabasz index (higher is better) on every non-noise row.
    metric : str
        ``"cosine"`` or ``"l2"``.
    n_rows, n_sampled, n_noise, n_clusters : int
        Rows given, rows in the silhouette sample, noise rows, distinct non-noise clusters.
    """

    silhouette: float
    davies_bouldin: float
    calinski_harabasz: float
    metric: str
    n_rows: int
    n_sampled: int
    n_noise: int
    n_clusters: int

    def to_dict(self) -> dict:
        """JSON-ready dictionary; undefined (NaN) scores become None."""
        return json_safe(asdict(self))


@dataclass(frozen=True)
class SizeDistribution:
    """How rows spread over clusters; the statistics are NaN when there is no cluster (all rows noise).

    Attributes
    ----------
    cluster_ids, sizes : tuple
        Cluster ids in ascending order (noise excluded) and the rows in each.
    n_noise : int
        Rows labelled ``NOISE``.
    min_size, max_size, mean_size : float
        Smallest, largest and mean cluster size.
    cv : float
        Coefficient of variation of the sizes (population std / mean); 0 when balanced.
    entropy : float
        Entropy of the size distribution divided by ``log(n_clusters)``: 1 when balanced, 0 for one cluster.
    imbalance_ratio : float
        ``max_size / min_size``.
    """

    cluster_ids: tuple
    sizes: tuple[int, ...]
    n_noise: int
    min_size: float
    max_size: float
    mean_size: float
    cv: float
    entropy: float
    imbalance_ratio: float

    def to_dict(self) -> dict:
        """JSON-ready dictionary; NaN statistics become None."""
        return json_safe(asdict(self))


@dataclass(frozen=True)
class CalibrationReport:
    """Calibration of soft cluster assignments over equal-width confidence bins ``(lower, upper]``.

    Attributes
    ----------
    ece, mce : float
        Expected calibration error ``sum_b (n_b / n) |acc_b - conf_b|`` and maximum calibration error
        ``max_b |acc_b - conf_b|`` over the non-empty bins.
    accuracy : float
        Share of rows whose most probable cluster is matched to their label.
    n_rows : int
        Rows scored.
    bin_lower, bin_upper, bin_count, bin_accuracy, bin_confidence : tuple
        Per bin: edges, rows, accuracy and mean confidence (NaN, None in :meth:`to_dict`, for an empty bin).
    """

    ece: float
    mce: float
    accuracy: float
    n_rows: int
    bin_lower: tuple[float, ...]
    bin_upper: tuple[float, ...]
    bin_count: tuple[int, ...]
    bin_accuracy: tuple[float, ...]
    bin_confidence: tuple[float, ...]

    def to_dict(self) -> dict:
        """JSON-ready dictionary; the statistics of empty bins become None."""
        return json_safe(asdict(self))


@dataclass(frozen=True)
class _Matching:
    """Hungarian matching as codes: ``label_of_cluster[c]`` is the label code of cluster code c, or -1."""

    labels: np.ndarray
    clusters: np.ndarray
    true_codes: np.ndarray
    cluster_codes: np.ndarray  # -1 for noise rows
    label_of_cluster: np.ndarray

    def correct(self) -> np.ndarray:
        """Whether each row's cluster is matched to its own label (False for noise)."""
        return np.append(self.label_of_cluster, -1)[self.cluster_codes] == self.true_codes


def _labels(values: object, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise EmbeddingDataError(f"{name}: expected a non-empty 1-D sequence of labels, got shape {array.shape}.")
    return array


def _encode(array: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct values, each entry's code (int64) and each value's count."""
    try:
        values, codes, counts = np.unique(array, return_inverse=True, return_counts=True)
    except TypeError as err:
        raise EmbeddingDataError(f"{name}: the labels cannot be compared ({err}); use one type (str or int).") from err
    return values, codes.ravel().astype(np.int64), counts


def _noise_mask(labels: np.ndarray) -> np.ndarray:
    if labels.dtype.kind in "USV":  # string labels hold no noise marker
        return np.zeros(labels.size, dtype=bool)
    return np.asarray(labels == NOISE, dtype=bool)


def _match(y_true: object, y_pred: object) -> _Matching:
    """Hungarian matching on the (clusters x labels) contingency table of the non-noise rows."""
    true, pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if true.size != pred.size:
        raise EmbeddingDataError(f"y_true has {true.size} labels but y_pred has {pred.size}; give one of each per row.")
    labels, true_codes, _ = _encode(true, "y_true")
    noise = _noise_mask(pred)
    clusters, kept_codes, _ = _encode(pred[~noise], "y_pred")
    cluster_codes = np.full(pred.size, -1, dtype=np.int64)
    cluster_codes[~noise] = kept_codes
    cells = kept_codes * labels.size + true_codes[~noise]
    table = np.bincount(cells, minlength=clusters.size * labels.size).reshape(clusters.size, labels.size)
    rows, cols = linear_sum_assignment(table, maximize=True)
    shared = table[rows, cols] > 0
    label_of_cluster = np.full(clusters.size, -1, dtype=np.int64)
    label_of_cluster[rows[shared]] = cols[shared]
    return _Matching(labels, clusters, true_codes, cluster_codes, label_of_cluster)


def match_clusters(y_true: object, y_pred: object) -> dict:
    """Match each predicted cluster to at most one label, maximising the rows they share (Hungarian method).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference labels (str or int, one comparable type).
    y_pred : array-like of shape (n,)
        Predicted clusters; ``NOISE`` (-1) rows are never matched.

    Returns
    -------
    dict
        ``{cluster: label}`` in ascending cluster order, as plain Python values. With more clusters than labels
        some clusters are left out, with fewer some labels are; a cluster sharing no row with any label still
        free is left out too.

    Raises
    ------
    EmbeddingDataError
        If the lengths differ (both are named), a sequence is empty or not 1-D, or labels cannot be compared.

    References
    ----------
    Kuhn (1955), "The Hungarian method for the assignment problem", Naval Research Logistics Quarterly 2, 83-97.

    Examples
    --------
    >>> match_clusters(["a", "a", "b", "b", "b"], [7, 7, 3, 3, -1])
    {3: 'b', 7: 'a'}
    """
    m = _match(y_true, y_pred)
    return {
        plain(m.clusters[c]): plain(m.labels[m.label_of_cluster[c]])
        for c in range(m.clusters.size)
        if m.label_of_cluster[c] >= 0
    }


def hungarian_accuracy(y_true: object, y_pred: object) -> float:
    """Clustering accuracy: share of rows whose cluster is matched to their own label by :func:`match_clusters`.

    Rows of unmatched clusters and ``NOISE`` rows count as wrong. Parameters and errors as in
    :func:`match_clusters`.

    Returns
    -------
    float
        In [0, 1]; invariant to renaming the clusters.

    References
    ----------
    Xie, Girshick and Farhadi (2016), "Unsupervised deep embedding for clustering analysis", ICML.

    Examples
    --------
    >>> hungarian_accuracy([0, 0, 1, 1, 2, 2], [5, 5, 9, 9, 9, 9])
    0.6666666666666666
    """
    return float(_match(y_true, y_pred).correct().mean())


def external_scores(y_true: object, y_pred: object) -> ExternalScores:
    """Hungarian accuracy, NMI and ARI of a clustering against reference labels.

    ``NOISE`` (-1) rows count as wrong for the accuracy and as one extra cluster for NMI and ARI (as
    scikit-learn would see them). Parameters and errors as in :func:`match_clusters`.

    Returns
    -------
    ExternalScores

    References
    ----------
    Strehl and Ghosh (2002), "Cluster ensembles: a knowledge reuse framework for combining multiple
    partitions", JMLR 3, 583-617.
    Hubert and Arabie (1985), "Comparing partitions", Journal of Classification 2, 193-218.

    Examples
    --------
    >>> s = external_scores(["a", "a", "b", "b"], [1, 1, 0, -1])
    >>> s.accuracy, s.n_clusters, s.noise_fraction
    (0.75, 2, 0.25)
    """
    m = _match(y_true, y_pred)
    pred_codes = m.cluster_codes  # noise keeps code -1: one extra cluster for NMI and ARI
    scores = ExternalScores(
        accuracy=float(m.correct().mean()),
        nmi=float(normalized_mutual_info_score(m.true_codes, pred_codes, average_method="arithmetic")),
        ari=float(adjusted_rand_score(m.true_codes, pred_codes)),
        n_clusters=int(m.clusters.size),
        n_labels=int(m.labels.size),
        noise_fraction=float((pred_codes < 0).mean()),
    )
    logger.debug("external scores: %s", scores)
    return scores


def internal_scores(
    X: np.ndarray,
    labels: object,
    *,
    metric: ClusterMetric = "cosine",
    sample: int = 10_000,
    random_state: int | np.random.Generator | None = 0,
) -> InternalScores:
    """Silhouette, Davies-Bouldin and Calinski-Harabasz scores of a clustering, ``NOISE`` rows left out.

    The silhouette is computed on a seeded uniform sample of at most ``sample`` non-noise rows, with the
    pairwise distances chunked to a 16 MB working memory. Davies-Bouldin and Calinski-Harabasz use every
    non-noise row; for ``metric="cosine"`` they are computed on the unit-normalised rows (their centroids are
    Euclidean means). A score that is undefined (fewer than 2 clusters, or every cluster a single row) is NaN.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
        Vectors, assumed validated (float32, finite, no zero rows for cosine).
    labels : array-like of shape (n,)
        Cluster of each row; ``NOISE`` (-1) rows are excluded.
    metric : {"cosine", "l2"}, default="cosine"
        Distance for the silhouette (cosine distance or Euclidean).
    sample : int, default=10000
        Most rows in the silhouette sample; every non-noise row is used when there are no more.
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the sample.

    Returns
    -------
    InternalScores

    Raises
    ------
    EmbeddingDataError
        If ``labels`` does not have one entry per row of ``X`` (both counts are named).
    ConfigurationError
        If ``metric`` is unknown or ``sample < 2``.

    References
    ----------
    Rousseeuw (1987), "Silhouettes: a graphical aid to the interpretation and validation of cluster analysis",
    Journal of Computational and Applied Mathematics 20, 53-65.
    Davies and Bouldin (1979), "A cluster separation measure", IEEE TPAMI 1(2), 224-227.
    Calinski and Harabasz (1974), "A dendrite method for cluster analysis", Communications in Statistics 3(1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 10].astype(np.float32)
    >>> s = internal_scores(X, np.repeat([0, 1], 50), metric="l2")
    >>> s.silhouette > 0.8, s.n_sampled, s.n_clusters
    (True, 100, 2)
    """
    check_choice(metric, "metric", ("cosine", "l2"))
    sample = check_int(sample, "sample", 2)
    vectors = np.asarray(X)
    array = _labels(labels, "labels")
    if array.size != vectors.shape[0]:
        raise EmbeddingDataError(f"labels: {array.size} labels for {vectors.shape[0]} rows of X; give one per row.")
    kept = np.flatnonzero(~_noise_mask(array))
    _, codes, counts = _encode(array[kept], "labels")
    n_clusters = int(counts.size)

    pick = np.arange(kept.size)
    if kept.size > sample:
        pick = np.sort(np.random.default_rng(random_state).choice(kept.size, size=sample, replace=False))
    silhouette = davies_bouldin = calinski_harabasz = math.nan  # defined for 2 <= clusters < rows
    if 2 <= np.unique(codes[pick]).size < pick.size:
        distance = "cosine" if metric == "cosine" else "euclidean"
        with config_context(working_memory=_SILHOUETTE_WORKING_MB):
            silhouette = float(silhouette_score(vectors[kept[pick]].astype(np.float64), codes[pick], metric=distance))
    if 2 <= n_clusters < kept.size:
        points = vectors if kept.size == vectors.shape[0] else vectors[kept]
        points = unit_rows(np.asarray(points, dtype=np.float32)) if metric == "cosine" else points
        davies_bouldin = float(davies_bouldin_score(points, codes))
        calinski_harabasz = float(calinski_harabasz_score(points, codes))
    scores = InternalScores(
        silhouette=silhouette,
        davies_bouldin=davies_bouldin,
        calinski_harabasz=calinski_harabasz,
        metric=metric,
        n_rows=int(array.size),
        n_sampled=int(pick.size),
        n_noise=int(array.size - kept.size),
        n_clusters=n_clusters,
    )
    logger.debug("internal scores: %s", scores)
    return scores


def size_distribution(labels: object) -> SizeDistribution:
    """Cluster sizes and how balanced they are; ``NOISE`` (-1) rows are counted apart.

    Parameters
    ----------
    labels : array-like of shape (n,)
        Cluster of each row.

    Returns
    -------
    SizeDistribution

    Raises
    ------
    EmbeddingDataError
        If ``labels`` is empty, not 1-D, or mixes incomparable types.

    Examples
    --------
    >>> s = size_distribution([0, 0, 1, 1, 2, 2, -1])
    >>> s.sizes, s.n_noise, round(s.entropy, 12), s.cv
    ((2, 2, 2), 1, 1.0, 0.0)
    """
    array = _labels(labels, "labels")
    noise = _noise_mask(array)
    ids, _, counts = _encode(array[~noise], "labels")
    stats = dict.fromkeys(("min_size", "max_size", "mean_size", "cv", "entropy", "imbalance_ratio"), math.nan)
    if counts.size:
        p = counts / counts.sum()
        stats = {
            "min_size": float(counts.min()),
            "max_size": float(counts.max()),
            "mean_size": float(counts.mean()),
            "cv": float(counts.std() / counts.mean()),
            "entropy": float(-(p * np.log(p)).sum() / math.log(counts.size)) if counts.size > 1 else 0.0,
            "imbalance_ratio": float(counts.max() / counts.min()),
        }
    return SizeDistribution(
        cluster_ids=tuple(plain(v) for v in ids),
        sizes=tuple(int(c) for c in counts),
        n_noise=int(noise.sum()),
        **stats,
    )


def _check_rows(bad: np.ndarray, problem: str) -> None:
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(str(r) for r in rows[:_SHOWN_ROWS]) + (", ..." if rows.size > _SHOWN_ROWS else "")
        raise EmbeddingDataError(
            f"proba: {rows.size} of {bad.size} rows have {problem} (rows {shown}). Pass probabilities: "
            "non-negative rows summing to 1, for example a softmax of the logits."
        )


def _check_proba(proba: object) -> np.ndarray:
    """``proba`` as a float64 (n, k) matrix of finite, non-negative rows summing to 1."""
    try:
        array = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise EmbeddingDataError(f"proba: not a numeric matrix ({err}).") from err
    if array.ndim != 2 or 0 in array.shape:
        raise EmbeddingDataError(
            f"proba: expected a 2-D array of shape (n_rows, n_clusters), non-empty, got shape {array.shape}."
        )
    _check_rows(~np.isfinite(array).all(axis=1), "NaN or Inf values")
    _check_rows((array < 0).any(axis=1), "negative values")
    _check_rows(np.abs(array.sum(axis=1) - 1.0) > _PROBA_TOLERANCE, f"sums further than {_PROBA_TOLERANCE} from 1")
    return array


def _bin_means(which: np.ndarray, values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Mean of ``values`` in each bin, NaN in an empty bin."""
    sums = np.bincount(which, weights=values, minlength=count.size)
    return np.divide(sums, count, out=np.full(count.size, math.nan), where=count > 0)


def calibration_error(proba: object, y_true: object, *, n_bins: int = 15) -> CalibrationReport:
    """Expected and maximum calibration error of soft cluster assignments.

    Each row's confidence is its largest probability and its prediction the column holding it; the prediction
    is correct when the Hungarian matching of the predicted columns to ``y_true`` (:func:`match_clusters`)
    maps that column to the row's label. Rows fall into ``n_bins`` equal-width bins ``(lower, upper]``.

    Parameters
    ----------
    proba : array-like of shape (n, k)
        Cluster probabilities: finite, non-negative, each row summing to 1 within 1e-4.
    y_true : array-like of shape (n,)
        Reference labels.
    n_bins : int, default=15
        Confidence bins over [0, 1].

    Returns
    -------
    CalibrationReport

    Raises
    ------
    EmbeddingDataError
        If ``proba`` is not a non-empty 2-D matrix, has rows that are not probabilities (the first offending
        rows are named), or does not have one row per label.
    ConfigurationError
        If ``n_bins < 1``.

    References
    ----------
    Guo, Pleiss, Sun and Weinberger (2017), "On calibration of modern neural networks", ICML.
    Naeini, Cooper and Hauskrecht (2015), "Obtaining well calibrated probabilities using Bayesian binning", AAAI.

    Examples
    --------
    >>> report = calibration_error([[0.9, 0.1], [0.25, 0.75], [0.7, 0.3]], ["a", "b", "b"], n_bins=5)
    >>> round(report.ece, 4), report.bin_count, report.accuracy
    (0.1833, (0, 0, 0, 2, 1), 0.6666666666666666)
    """
    n_bins = check_int(n_bins, "n_bins")
    array = _check_proba(proba)
    labels = _labels(y_true, "y_true")
    if labels.size != array.shape[0]:
        raise EmbeddingDataError(f"proba has {array.shape[0]} rows but y_true has {labels.size} labels.")
    confidence = array.max(axis=1)
    correct = _match(labels, array.argmax(axis=1)).correct()
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], confidence, side="left")
    count = np.bincount(which, minlength=n_bins)
    full = count > 0
    accuracy, mean_confidence = _bin_means(which, correct, count), _bin_means(which, confidence, count)
    gap = np.abs(accuracy[full] - mean_confidence[full])
    return CalibrationReport(
        ece=float((gap * count[full]).sum() / labels.size),
        mce=float(gap.max()),
        accuracy=float(correct.mean()),
        n_rows=int(labels.size),
        bin_lower=tuple(float(v) for v in edges[:-1]),
        bin_upper=tuple(float(v) for v in edges[1:]),
        bin_count=tuple(int(v) for v in count),
        bin_accuracy=tuple(float(v) for v in accuracy),
        bin_confidence=tuple(float(v) for v in mean_confidence),
    )
