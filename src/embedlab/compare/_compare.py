"""``compare_spaces``: is model B's space like model A's on my data? Every score of :mod:`._scores` with a
permutation null, a plain-language reading, and a per-cluster breakdown of where the spaces disagree."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from embedlab._checks import check_int
from embedlab._json import json_safe
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster import KMeans
from embedlab.compare._scores import (
    _CKNNA,
    _SVCCA,
    _LinearCKA,
    _NeighbourOverlap,
    _Procrustes,
    _RbfCKA,
    _SimilarityRank,
    cosine_neighbours,
    overlap_counts,
)
from embedlab.exceptions import ConfigurationError
from embedlab.io import EmbeddingSet, pair_by_id

__all__ = ["ClusterAgreement", "Comparison", "ScoreResult", "compare_spaces"]

logger = logging.getLogger(__name__)

#: Fewest pairs a comparison accepts.
MIN_PAIRS = 10
#: Rows per cluster for the default number of clusters, and the most clusters by default.
ROWS_PER_CLUSTER, MAX_DEFAULT_CLUSTERS = 50, 10
#: Agreement levels (on a 0-1 scale) and their words, highest first.
_LEVELS = ((0.9, "near-identical"), (0.7, "high"), (0.4, "moderate"), (0.2, "low"), (-np.inf, "very low"))
#: p-value below which a score is called distinguishable from a random pairing.
_ALPHA = 0.05


class _Scorer(Protocol):
    def score(self, perm: np.ndarray | None = None) -> float: ...


@dataclass(frozen=True)
class ScoreResult:
    """One score, its permutation null and how it was computed.

    Attributes
    ----------
    name : str
    value : float
    null_mean, null_std : float
        Of the score over ``n_permutations`` random re-pairings of the rows (NaN without permutations).
    p_value : float
        ``(1 + #{null at least as similar as value}) / (1 + n_permutations)``; the smallest possible value is
        ``1 / (1 + n_permutations)``.
    higher_is_similar : bool
        False for distances (Procrustes), where "at least as similar" means "at most as large".
    n_rows : int
        Paired rows the score was computed on.
    method : str
        How it was computed, with its reference.
    reading : str
        A plain-language reading of value and null.
    """

    name: str
    value: float
    null_mean: float
    null_std: float
    p_value: float
    higher_is_similar: bool
    n_rows: int
    method: str
    reading: str

    @property
    def z(self) -> float:
        """Standard deviations of the null between its mean and the value (NaN when undefined)."""
        if not self.null_std > 0:
            return float("nan")
        return (self.value - self.null_mean) / self.null_std

    def to_dict(self) -> dict[str, Any]:
        return json_safe({**asdict(self), "z": self.z})


@dataclass(frozen=True)
class ClusterAgreement:
    """How well the two spaces agree on the rows of one k-means cluster of A (neighbours from the full sets)."""

    cluster: int
    size: int
    mutual_knn: float
    retrieval_overlap: float

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare_spaces`.

    Attributes
    ----------
    n_pairs : int
        Rows paired by id.
    n_only_a, n_only_b : int
        Rows of each set without a partner (left out).
    dim_a, dim_b : int
    scores : tuple of ScoreResult
    clusters : tuple of ClusterAgreement
        Sorted by mutual kNN alignment, lowest (most disagreement) first; empty when not computed.
    parameters : dict
        Everything the scores depend on: k, n_permutations, sample sizes, clusters, random_state.
    seconds : float
    """

    n_pairs: int
    n_only_a: int
    n_only_b: int
    dim_a: int
    dim_b: int
    scores: tuple[ScoreResult, ...]
    clusters: tuple[ClusterAgreement, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def score(self, name: str) -> ScoreResult:
        """The score called ``name`` (for example ``"linear_cka"``)."""
        for result in self.scores:
            if result.name == name:
                return result
        raise KeyError(f"no score {name!r}; available: {', '.join(s.name for s in self.scores)}")

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "n_pairs": self.n_pairs,
                "n_only_a": self.n_only_a,
                "n_only_b": self.n_only_b,
                "dim_a": self.dim_a,
                "dim_b": self.dim_b,
                "parameters": self.parameters,
                "scores": {s.name: s.to_dict() for s in self.scores},
                "clusters": [c.to_dict() for c in self.clusters],
                "timings": {"seconds": self.seconds},
            }
        )


def _reading(value: float, p_value: float, null_mean: float, agreement: float, n_permutations: int) -> str:
    if not np.isfinite(value):
        return "undefined on these data"
    level = next(word for threshold, word in _LEVELS if agreement >= threshold)
    if n_permutations == 0:
        return f"{level} agreement (no permutation null computed)"
    if p_value * (1 + n_permutations) == 1:
        return f"{level} agreement, above all {n_permutations} random pairings (null mean {null_mean:.3f})"
    if p_value > _ALPHA:
        return f"{level} agreement, no better than a random pairing (p = {p_value:.2f})"
    return f"{level} agreement, above a random pairing (null mean {null_mean:.3f}, p = {p_value:.3f})"


def _evaluate(
    name: str,
    scorer: _Scorer,
    *,
    n_rows: int,
    method: str,
    higher_is_similar: bool,
    n_permutations: int,
    rng: np.random.Generator,
    advance: Any,
) -> ScoreResult:
    started = time.perf_counter()
    value = scorer.score()
    null = np.array([scorer.score(rng.permutation(n_rows)) for _ in range(n_permutations)])
    advance(1)
    if n_permutations:
        as_similar = null >= value if higher_is_similar else null <= value
        p_value = (1 + int(np.sum(as_similar))) / (1 + n_permutations)
        null_mean, null_std = float(null.mean()), float(null.std(ddof=1)) if n_permutations > 1 else float("nan")
    else:
        p_value = null_mean = null_std = float("nan")
    agreement = value if higher_is_similar else 1.0 - value**2 / 2.0  # Procrustes: back to |X^T Y|_*
    logger.info("%s = %.4f on %d rows (%.2f s with its null)", name, value, n_rows, time.perf_counter() - started)
    return ScoreResult(
        name=name,
        value=value,
        null_mean=null_mean,
        null_std=null_std,
        p_value=p_value,
        higher_is_similar=higher_is_similar,
        n_rows=n_rows,
        method=method,
        reading=_reading(value, p_value, null_mean, agreement, n_permutations),
    )


def _cluster_breakdown(
    X: np.ndarray, counts: np.ndarray, k: int, n_clusters: int, random_state: int | None
) -> tuple[ClusterAgreement, ...]:
    labels = KMeans(n_clusters=n_clusters, metric="cosine", random_state=random_state).fit(X).labels_
    rows = []
    for cluster in np.unique(labels):
        members = counts[labels == cluster]
        rows.append(
            ClusterAgreement(
                cluster=int(cluster),
                size=int(members.size),
                mutual_knn=float(np.mean(members / k)),
                retrieval_overlap=float(np.mean(members / (2 * k - members))),
            )
        )
    return tuple(sorted(rows, key=lambda row: (row.mutual_knn, row.cluster)))


def compare_spaces(
    A: EmbeddingSet | object,
    B: EmbeddingSet | object,
    *,
    k: int = 10,
    n_permutations: int = 20,
    sample: int | None = 5000,
    clusters: int | None = None,
    rbf_sample: int = 2000,
    cknna_sample: int = 1024,
    n_rank_pairs: int = 100_000,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> Comparison:
    """Compare two embedding spaces of the same items: nine similarity scores, each against a permutation null,
    and the clusters of A where the spaces agree least.

    Rows are paired by id with :func:`embedlab.io.pair_by_id` (arrays by position); the dimensions may differ.
    The null re-pairs the rows at random (permutes B's rows) ``n_permutations`` times and recomputes each score
    on the same rows; neighbour lists are searched once per space and permuted, not searched again.

    Parameters
    ----------
    A, B : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        The two sets.
    k : int, default=10
        Neighbours per row for mutual kNN, retrieval overlap and CKNNA (cosine, self excluded).
    n_permutations : int, default=20
        Random re-pairings for the null; 0 skips the null (p-values NaN).
    sample : int or None, default=5000
        Rows (a seeded random sample) on which the matrix scores -- linear CKA, debiased CKA, SVCCA and
        Procrustes -- and their nulls are computed; None for all rows. Neighbour scores use every row.
    clusters : int or None, default=None
        k-means clusters of A for the breakdown; default ``min(10, n // 50)``; 0 or 1 for no breakdown.
    rbf_sample, cknna_sample : int, default=2000 and 1024
        Rows of the explicit-kernel scores (RBF CKA, CKNNA), taken from the same sample.
    n_rank_pairs : int, default=100000
        Row pairs of the similarity rank correlation (over all rows).
    random_state : int or None, default=0
        Seed of the samples, the permutations, the pairs, k-means and the neighbour searches.
    progress : ProgressReporter, optional
        Receives one step per score (its null included).

    Returns
    -------
    Comparison

    Raises
    ------
    EmbeddingDataError
        When the sets share no id, share fewer than 10, or hold invalid rows (NaN, Inf, zero vectors).
    ConfigurationError
        On a ``k`` too large for the pairs, or a negative count.

    References
    ----------
    Kornblith et al. (2019); Huh et al. (2024); Raghu et al. (2017); Williams et al. (2021); Caspari et al.
    (2024) -- see each score's function in :mod:`embedlab.compare`. The permutation p-value follows Phipson
    and Smyth (2010), "Permutation p-values should never be zero", Statistical Applications in Genetics and
    Molecular Biology 9(1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> A = rng.normal(size=(120, 16))
    >>> rotation = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    >>> result = compare_spaces(A, A @ rotation, n_permutations=5, clusters=0)
    >>> round(result.score("linear_cka").value, 4), result.score("mutual_knn").p_value
    (1.0, 0.16666666666666666)
    """
    started = time.perf_counter()
    n_permutations = check_int(n_permutations, "n_permutations", 0)
    sample = None if sample is None else check_int(sample, "sample", MIN_PAIRS)
    clusters = None if clusters is None else check_int(clusters, "clusters", 0)
    rbf_sample = check_int(rbf_sample, "rbf_sample", MIN_PAIRS)
    cknna_sample = check_int(cknna_sample, "cknna_sample", MIN_PAIRS)
    pairs = pair_by_id(A, B, min_pairs=MIN_PAIRS, names=("A", "B"))
    X, Y, n = pairs.first, pairs.second, len(pairs)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n)
    rows = np.sort(order[: n if sample is None else min(sample, n)])
    rbf_rows = np.sort(order[: min(rbf_sample, rows.size)])
    cknna_rows = np.sort(order[: min(cknna_sample, rows.size)])
    n_clusters = min(MAX_DEFAULT_CLUSTERS, n // ROWS_PER_CLUSTER) if clusters is None else clusters
    if n_clusters > n:
        raise ConfigurationError(f"clusters={n_clusters} but only {n} pairs; use fewer clusters.")

    neighbours_x, neighbours_y = cosine_neighbours(X, Y, k, random_state=random_state)
    k_cknna = min(k, cknna_rows.size - 1)
    xs, ys = X[rows], Y[rows]
    specs: list[tuple[str, Any, int, str, bool]] = [
        ("linear_cka", lambda: _LinearCKA(xs, ys, debiased=False), rows.size, "linear CKA, biased HSIC "
         "(Kornblith et al. 2019)", True),
        ("linear_cka_debiased", lambda: _LinearCKA(xs, ys, debiased=True), rows.size, "linear CKA, unbiased HSIC "
         "(Song et al. 2012; Nguyen et al. 2021)", True),
        ("rbf_cka", lambda: _RbfCKA(X[rbf_rows], Y[rbf_rows], sigma_fraction=0.8), rbf_rows.size, "RBF-kernel CKA, "
         "bandwidth 0.8 x median distance (Kornblith et al. 2019)", True),
        ("mutual_knn", lambda: _NeighbourOverlap(neighbours_x, neighbours_y, jaccard=False), n, f"mutual {k}-NN "
         "alignment, cosine, all rows (Huh et al. 2024)", True),
        ("cknna", lambda: _CKNNA(X[cknna_rows], Y[cknna_rows], k=k_cknna, random_state=random_state),
         cknna_rows.size, f"CKNNA, cosine kernels, {k_cknna}-NN within the sample (Huh et al. 2024)", True),
        ("retrieval_overlap", lambda: _NeighbourOverlap(neighbours_x, neighbours_y, jaccard=True), n, f"Jaccard of "
         f"top-{k} cosine neighbours, all rows (Caspari et al. 2024)", True),
        ("svcca", lambda: _SVCCA(xs, ys, keep=0.99), rows.size, "SVCCA, 99% of variance kept, mean canonical "
         "correlation (Raghu et al. 2017)", True),
        ("procrustes_distance", lambda: _Procrustes(xs, ys), rows.size, "orthogonal Procrustes distance "
         "sqrt(2 - 2 |X^T Y|_*) (Williams et al. 2021)", False),
        ("similarity_rank_correlation", lambda: _SimilarityRank(X, Y, n_pairs=n_rank_pairs, rng=rng), n,
         f"Spearman correlation of cosine similarities of {n_rank_pairs:,} random pairs", True),
    ]  # fmt: skip
    results = []
    with progress.task("comparing spaces", len(specs)) as advance:
        for name, build, n_rows, method, higher_is_similar in specs:
            results.append(
                _evaluate(
                    name,
                    build(),
                    n_rows=n_rows,
                    method=method,
                    higher_is_similar=higher_is_similar,
                    n_permutations=n_permutations,
                    rng=rng,
                    advance=advance,
                )
            )
    breakdown: tuple[ClusterAgreement, ...] = ()
    if n_clusters >= 2:
        counts = overlap_counts(neighbours_x, neighbours_y)
        breakdown = _cluster_breakdown(X, counts, k, n_clusters, random_state)
    return Comparison(
        n_pairs=n,
        n_only_a=pairs.n_only_first,
        n_only_b=pairs.n_only_second,
        dim_a=X.shape[1],
        dim_b=Y.shape[1],
        scores=tuple(results),
        clusters=breakdown,
        parameters={
            "k": k,
            "n_permutations": n_permutations,
            "sample": int(rows.size),
            "rbf_sample": int(rbf_rows.size),
            "cknna_sample": int(cknna_rows.size),
            "n_rank_pairs": n_rank_pairs,
            "clusters": n_clusters if n_clusters >= 2 else 0,
            "metric": "cosine",
            "random_state": random_state,
        },
        seconds=time.perf_counter() - started,
    )
