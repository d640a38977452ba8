"""Cluster-wise stability: how well each cluster of a k-means clustering survives refitting on subsamples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedlab._checks import check_int
from embedlab._json import json_safe
from embedlab.cluster._kmeans import ClusterMetric, KMeans
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.validation import prepare

__all__ = ["STABLE_JACCARD", "ClusterStability", "cluster_stability"]

#: Mean Jaccard at or above which Hennig (2007) calls a cluster stable (at or below 0.5 it "dissolves").
STABLE_JACCARD = 0.75


@dataclass(frozen=True)
class ClusterStability:
    """Per-cluster mean Jaccard similarity to the best-matching cluster of k-means refitted on subsamples.

    Attributes
    ----------
    clusters : list of int
        Cluster ids (noise, -1, left out).
    jaccard : list of float
        Mean over the resamples, one per cluster; NaN for a cluster never drawn.
    n_stable : int
        Clusters with ``jaccard >= STABLE_JACCARD``.
    n_boot, sample_size : int
        Resamples, and rows each resample draws.
    """

    clusters: list[int]
    jaccard: list[float]
    n_stable: int
    n_boot: int
    sample_size: int

    def to_dict(self) -> dict:
        """JSON-ready dictionary (NaN as null)."""
        return json_safe(
            {
                "clusters": self.clusters,
                "jaccard": self.jaccard,
                "n_stable": self.n_stable,
                "threshold": STABLE_JACCARD,
                "n_boot": self.n_boot,
                "sample_size": self.sample_size,
            }
        )


def _best_jaccard(reference: np.ndarray, refitted: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """For each reference cluster, the highest Jaccard index with any refitted cluster (NaN if absent)."""
    ref_codes = np.searchsorted(clusters, reference)
    _, new_codes = np.unique(refitted, return_inverse=True)
    counts = np.zeros((clusters.size, new_codes.max() + 1))
    np.add.at(counts, (ref_codes, new_codes), 1)
    sizes_ref, sizes_new = counts.sum(axis=1, keepdims=True), counts.sum(axis=0, keepdims=True)
    union = sizes_ref + sizes_new - counts
    jaccard = np.divide(counts, union, out=np.zeros_like(counts), where=union > 0).max(axis=1)
    jaccard[sizes_ref[:, 0] == 0] = np.nan
    return jaccard


def cluster_stability(
    X: object,
    labels: object,
    *,
    metric: ClusterMetric = "cosine",
    n_boot: int = 5,
    fraction: float = 0.8,
    sample: int = 20_000,
    random_state: int | None = 0,
) -> ClusterStability:
    """Cluster-wise stability of a k-means clustering by subsetting (Hennig 2007).

    Each of ``n_boot`` resamples draws ``fraction`` of (a seeded sample of at most ``sample``) rows, refits
    k-means with the same number of clusters on them, and scores every original cluster by the Jaccard index
    between its members in the resample and the refitted cluster that matches them best. A cluster whose mean
    is at least 0.75 is *stable*; at 0.5 or below Hennig calls it dissolved: the data do not support it.

    Parameters
    ----------
    X : array-like of shape (n, d)
    labels : array-like of shape (n,)
        The clustering to assess (noise, -1, is left out).
    metric : {"cosine", "l2"}, default="cosine"
    n_boot : int, default=5
    fraction : float, default=0.8
    sample : int, default=20000
    random_state : int or None, default=0

    Returns
    -------
    ClusterStability

    Raises
    ------
    EmbeddingDataError
        When labels and rows differ in number.
    ConfigurationError
        On fewer than 2 clusters or parameters out of range.

    References
    ----------
    Hennig, C. (2007). Cluster-wise assessment of cluster stability. Computational Statistics & Data Analysis
    52(1), 258-271.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(50, 4)) + 8 * e for e in np.eye(4)[:3]])
    >>> cluster_stability(X, np.repeat([0, 1, 2], 50), metric="l2").n_stable
    3
    """
    rows = prepare(X, metric, min_rows=2).vectors
    found = np.asarray(labels)
    if found.shape != (rows.shape[0],):
        raise EmbeddingDataError(f"{found.size} labels for {rows.shape[0]} rows; give one label per row.")
    n_boot = check_int(n_boot, "n_boot")
    if not 0 < fraction < 1:
        raise ConfigurationError(f"fraction must be between 0 and 1, got {fraction!r}.")
    kept = np.flatnonzero(found >= 0)
    clusters = np.unique(found[kept])
    if clusters.size < 2:
        raise ConfigurationError(f"stability needs at least 2 clusters, got {clusters.size}.")
    rng = np.random.default_rng(random_state)
    if kept.size > sample:
        kept = np.sort(rng.choice(kept, sample, replace=False))
    drawn = max(int(fraction * kept.size), clusters.size)
    scores = np.empty((n_boot, clusters.size))
    for b in range(n_boot):
        part = np.sort(rng.choice(kept, drawn, replace=False))
        model = KMeans(clusters.size, metric=metric, random_state=int(rng.integers(2**31 - 1))).fit(rows[part])
        scores[b] = _best_jaccard(found[part], model.labels_, clusters)
    mean = _nanmean(scores)
    return ClusterStability(
        clusters=clusters.tolist(),
        jaccard=[float(v) for v in mean],
        n_stable=int(np.sum(mean >= STABLE_JACCARD)),
        n_boot=n_boot,
        sample_size=int(drawn),
    )


def _nanmean(scores: np.ndarray) -> np.ndarray:
    """Column means ignoring NaN, NaN for an all-NaN column (without numpy's warning)."""
    finite = np.isfinite(scores)
    totals = np.where(finite, scores, 0.0).sum(axis=0)
    counts = finite.sum(axis=0)
    return np.divide(totals, counts, out=np.full(totals.shape, np.nan), where=counts > 0)
