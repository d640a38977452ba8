"""Choosing the number of clusters: stability, silhouette, gap and BIC curves over candidate k, and a rule
that combines them and can answer "no clear k"."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from embedlab._checks import check_choice, check_int
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster._density import gmm_bic_curve, reduce_dimensions
from embedlab.cluster._kmeans import ClusterMetric, KMeans
from embedlab.cluster._stability import STABLE_JACCARD, _best_jaccard, _nanmean
from embedlab.cluster.metrics import internal_scores
from embedlab.exceptions import ConfigurationError
from embedlab.io.validation import prepare

__all__ = [
    "CRITERIA",
    "DEFAULT_K_VALUES",
    "FLAT_SILHOUETTE",
    "MIN_STABILITY",
    "Granularity",
    "KCurve",
    "KSelection",
    "select_k",
]

logger = logging.getLogger(__name__)

Criterion = Literal["auto", "stability", "silhouette", "gap", "bic"]
#: The criteria ``criterion="auto"`` computes and combines.
CRITERIA = ("stability", "silhouette", "gap", "bic")
#: Candidate k when none are given: dense at small k, sparser beyond.
DEFAULT_K_VALUES = (2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100)
#: Normalised stability at or above which a granularity counts as supported (1: every resample agrees, 0: no
#: more agreement than randomly relabelled clusters).
MIN_STABILITY = 0.8
#: A silhouette curve whose highest and lowest values differ by less than this prefers no k.
FLAT_SILHOUETTE = 0.05
#: Refinement adds candidates between the chosen k and its neighbours at about this ratio.
_REFINE_RATIO = 1.05
_REFINE_SIDE = 10
_OFFERED = 3
_SUBSAMPLE = 0.8
#: Restarts of every fit: one k-means++ start in ten or so merges two well-separated clusters and splits a
#: third, and the criteria should measure the data, not that.
_N_INIT = 2
_MAX_ITER = 50


@dataclass(frozen=True)
class KCurve:
    """One criterion's score at each candidate k, and where it peaks.

    Attributes
    ----------
    criterion : str
    k_values : list of int
        The gap statistic's curve starts at k = 1 (one cluster), the others at the first candidate.
    scores : list of float
    spread : list of float
        Standard deviation over resample pairs (stability) or the gap's simulation error ``s_k``; 0 otherwise.
    best_k : int
        The criterion's own pick: highest stability or silhouette, Tibshirani's rule for the gap, lowest BIC.
    peak : str
        ``"interior"`` (inside the range), ``"lower_edge"`` or ``"upper_edge"`` (at its first or last candidate:
        the best k may lie outside), ``"flat"`` (no preference) or ``"one_cluster"`` (the gap statistic finds no
        clusters).
    """

    criterion: str
    k_values: list[int]
    scores: list[float]
    spread: list[float]
    best_k: int
    peak: str

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "k_values": self.k_values,
            "scores": self.scores,
            "spread": self.spread,
            "best_k": self.best_k,
            "peak": self.peak,
        }


@dataclass(frozen=True)
class Granularity:
    """A candidate k where the stability curve has a local maximum, or the finest k of a run of supported ones.

    Attributes
    ----------
    k : int
    stability : float
        Normalised stability at k (see :func:`select_k`).
    stable_clusters : int
        Clusters of the k-means fit on the evaluation rows whose mean Jaccard with their best match in the
        resampled fits is at least :data:`~embedlab.cluster.STABLE_JACCARD` (Hennig 2007).
    supported : bool
        ``stability >= MIN_STABILITY``.
    agreeing : list of str
        The other criteria whose own pick is this k.
    local_maximum : bool
        True at a local maximum of the stability curve. False for the largest k of a run of consecutive
        supported candidates that does not end at a peak (stability 0.98, 0.97, 0.95 at k = 2, 3, 4: k = 4 is
        the finest split the resamples still reproduce); such a k is offered, never chosen.
    """

    k: int
    stability: float
    stable_clusters: int
    supported: bool
    agreeing: list[str]
    local_maximum: bool = True

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "k": self.k,
            "stability": self.stability,
            "stable_clusters": self.stable_clusters,
            "supported": self.supported,
            "agreeing": self.agreeing,
            "local_maximum": self.local_maximum,
        }


@dataclass(frozen=True)
class KSelection:
    """The curves behind a choice of k, the choice, and whether the data support it.

    Attributes
    ----------
    criterion : str
        ``"auto"`` (the combined rule) or the single criterion asked for.
    k_values : list of int
        Every candidate scored, refinement included.
    best_k : int
        The k to cluster with. When ``clear`` is false it is only the most defensible choice for a display
        (the most stable granularity), not a property of the data.
    clear : bool
        Whether the data support ``best_k``.
    reason : str
        One sentence a reader can act on: why ``best_k``, or why there is no clear k.
    curves : dict of str to KCurve
    granularities : list of Granularity
        Local maxima of the stability curve, ascending in k (empty when stability was not computed).
    sample_size : int
        Evaluation rows behind every score.
    """

    criterion: str
    k_values: list[int]
    best_k: int
    clear: bool
    reason: str
    curves: dict[str, KCurve]
    granularities: list[Granularity]
    sample_size: int

    @property
    def supported(self) -> list[int]:
        """The granularities the data support, ascending."""
        return [g.k for g in self.granularities if g.supported]

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "criterion": self.criterion,
            "k_values": self.k_values,
            "best_k": self.best_k,
            "clear": self.clear,
            "reason": self.reason,
            "supported": self.supported,
            "granularities": [g.to_dict() for g in self.granularities],
            "curves": {name: curve.to_dict() for name, curve in self.curves.items()},
            "min_stability": MIN_STABILITY,
            "sample_size": self.sample_size,
        }


def _candidates(k_values: Sequence[int] | None, n: int) -> list[int]:
    limit = n // 2
    values = sorted({int(k) for k in (DEFAULT_K_VALUES if k_values is None else k_values) if 2 <= int(k) <= limit})
    if not values:
        raise ConfigurationError(f"no candidate k between 2 and {limit} (half the rows); give other k_values.")
    return values


def _seed(seed: int, k: int, stream: int) -> int:
    """A seed per (criterion, k): a candidate scores the same whatever else is scored (refinement)."""
    return int(np.random.SeedSequence([seed, k, stream]).generate_state(1)[0])


def _kmeans(k: int, metric: ClusterMetric, seed: int) -> KMeans:
    return KMeans(k, metric=metric, n_init=_N_INIT, max_iter=_MAX_ITER, random_state=seed)


def _disagreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows on which two labellings disagree after the best one-to-one matching of their clusters."""
    _, a_codes = np.unique(a, return_inverse=True)
    _, b_codes = np.unique(b, return_inverse=True)
    counts = np.zeros((a_codes.max() + 1, b_codes.max() + 1))
    np.add.at(counts, (a_codes, b_codes), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return 1.0 - counts[rows, cols].sum() / a.size


@dataclass(frozen=True)
class _Fits:
    """What one candidate k's k-means fits give every criterion."""

    silhouette: float
    stability: float
    stability_spread: float
    stable_clusters: int
    dispersion: float


def _within_dispersion(X: np.ndarray, labels: np.ndarray) -> float:
    """Tibshirani's W_k: the pooled within-cluster sum of squared distances to the cluster means."""
    k = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, labels, X)
    squares = float(np.einsum("ij,ij->", X, X, dtype=np.float64))
    return max(squares - float(np.sum(np.einsum("ij,ij->i", sums, sums) / np.maximum(counts, 1))), 1e-12)


def _fit_k(
    X: np.ndarray, k: int, metric: ClusterMetric, n_boot: int, seed: int, want: frozenset[str], sample: int
) -> _Fits:
    """The reference fit on every evaluation row, and ``n_boot`` pairs of fits on random subsamples."""
    if not want & {"stability", "silhouette", "gap"}:
        return _Fits(np.nan, np.nan, np.nan, 0, np.nan)
    reference = _kmeans(k, metric, _seed(seed, k, 0)).fit(X).labels_
    silhouette = np.nan
    if "silhouette" in want:
        silhouette = internal_scores(X, reference, metric=metric, sample=sample, random_state=seed).silhouette
    stability = spread = np.nan
    stable = 0
    if "stability" in want:
        rng = np.random.default_rng(_seed(seed, k, 1))
        drawn = max(int(_SUBSAMPLE * X.shape[0]), k)
        observed, null, jaccard = [], [], []
        clusters = np.arange(k)
        for _ in range(n_boot):
            labellings = []
            for _ in range(2):
                part = np.sort(rng.choice(X.shape[0], drawn, replace=False))
                model = _kmeans(k, metric, int(rng.integers(2**31 - 1))).fit(X[part])
                jaccard.append(_best_jaccard(reference[part], model.labels_, clusters))
                labellings.append(model.predict(X))
            observed.append(_disagreement(*labellings))
            null.append(_disagreement(labellings[0], rng.permutation(labellings[1])))
        ratios = 1.0 - np.asarray(observed) / np.maximum(null, 1e-12)
        stability = float(1.0 - np.mean(observed) / max(float(np.mean(null)), 1e-12))
        spread = float(np.std(ratios))
        stable = int(np.sum(_nanmean(np.asarray(jaccard)) >= STABLE_JACCARD))
    return _Fits(float(silhouette), stability, spread, stable, _within_dispersion(X, reference))


def _gap_references(X: np.ndarray, metric: ClusterMetric, n_references: int, seed: int) -> list[np.ndarray]:
    """Tibshirani et al.'s reference sets (b): uniform over the box aligned with the rows' principal axes.

    Under cosine the reference rows are then unit-normalised, so that they lie where the rows lie.
    """
    rng = np.random.default_rng(_seed(seed, 0, 2))
    mean = X.mean(axis=0)
    _, _, axes = np.linalg.svd(X - mean, full_matrices=False)
    projected = (X - mean) @ axes.T
    low, high = projected.min(axis=0), projected.max(axis=0)
    references = []
    for _ in range(n_references):
        reference = (rng.uniform(low, high, size=projected.shape) @ axes + mean).astype(np.float32)
        if metric == "cosine":
            reference /= np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
        references.append(reference)
    return references


def _reference_dispersion(references: list[np.ndarray], k: int, metric: ClusterMetric, seed: int) -> np.ndarray:
    if k == 1:
        return np.array([_within_dispersion(r, np.zeros(r.shape[0], dtype=np.int64)) for r in references])
    fits = (_kmeans(k, metric, _seed(seed, k, 3)).fit(r).labels_ for r in references)
    return np.array([_within_dispersion(r, labels) for r, labels in zip(references, fits, strict=True)])


def _peak(ks: list[int], best: int) -> str:
    if len(ks) == 1:
        return "flat"
    if best == ks[-1]:
        return "upper_edge"
    return "lower_edge" if best == ks[0] else "interior"


class _Curves:
    """Per-k results of the criteria, kept by k so that refinement can add candidates."""

    def __init__(
        self, X: np.ndarray, metric: ClusterMetric, want: frozenset[str], n_boot: int, n_references: int, seed: int
    ):
        self.X, self.metric, self.want, self.n_boot, self.seed = X, metric, want, n_boot, seed
        self.fits: dict[int, _Fits] = {}
        self.reference_logs: dict[int, np.ndarray] = {}
        self.bic: dict[int, float] = {}
        self.references = _gap_references(X, metric, n_references, seed) if "gap" in want else []
        self.reduced = reduce_dimensions(X, method="pca", metric=metric, random_state=seed) if "bic" in want else None

    def add(self, ks: list[int], sample: int, advance: Advance) -> None:
        for k in ks:
            self.fits[k] = _fit_k(self.X, k, self.metric, self.n_boot, self.seed, self.want, sample)
            if self.references:
                self.reference_logs[k] = np.log(_reference_dispersion(self.references, k, self.metric, self.seed))
            if self.reduced is not None:
                self.bic[k] = float(gmm_bic_curve(self.reduced, [k], random_state=_seed(self.seed, k, 4))[0])
            advance(1)

    def curves(self) -> dict[str, KCurve]:
        ks = sorted(self.fits)
        curves = {}
        if "stability" in self.want:
            scores = [self.fits[k].stability for k in ks]
            best = ks[int(np.argmax(scores))]
            curves["stability"] = KCurve(
                "stability", ks, scores, [self.fits[k].stability_spread for k in ks], best, _peak(ks, best)
            )
        if "silhouette" in self.want:
            scores = [self.fits[k].silhouette for k in ks]
            finite = np.nan_to_num(scores, nan=-np.inf)
            best = ks[int(np.argmax(finite))]
            flat = np.ptp(np.asarray(scores)[np.isfinite(scores)]) < FLAT_SILHOUETTE
            curves["silhouette"] = KCurve(
                "silhouette", ks, scores, [0.0] * len(ks), best, "flat" if flat else _peak(ks, best)
            )
        if "gap" in self.want:
            curves["gap"] = self._gap_curve(ks)
        if "bic" in self.want:
            scores = [self.bic[k] for k in ks]
            best = ks[int(np.argmin(scores))]
            curves["bic"] = KCurve("bic", ks, scores, [0.0] * len(ks), best, _peak(ks, best))
        return curves

    def _gap_curve(self, ks: list[int]) -> KCurve:
        """Gap(k) = E*[log W_k] - log W_k; the smallest k with Gap(k) >= Gap(k') - s_k' for the next k'."""
        if 1 not in self.reference_logs:
            self.reference_logs[1] = np.log(_reference_dispersion(self.references, 1, self.metric, self.seed))
        values = [1, *ks]
        data_logs = {1: np.log(_within_dispersion(self.X, np.zeros(self.X.shape[0], dtype=np.int64)))}
        data_logs.update({k: np.log(self.fits[k].dispersion) for k in ks})
        b = len(self.references)
        gaps = [float(self.reference_logs[k].mean() - data_logs[k]) for k in values]
        errors = [float(self.reference_logs[k].std() * np.sqrt(1 + 1 / b)) for k in values]
        best = values[-1]
        for i in range(len(values) - 1):
            if gaps[i] >= gaps[i + 1] - errors[i + 1]:
                best = values[i]
                break
        peak = "one_cluster" if best == 1 else _peak(values, best)
        return KCurve("gap", values, gaps, errors, best, peak)


def _granularities(curves: dict[str, KCurve], fits: dict[int, _Fits]) -> list[Granularity]:
    stability = curves["stability"]
    scores = np.asarray(stability.scores)
    supported = scores >= MIN_STABILITY
    found = []
    for i, k in enumerate(stability.k_values):
        left = scores[i - 1] if i > 0 else -np.inf
        right = scores[i + 1] if i + 1 < scores.size else -np.inf
        peak = bool(scores[i] >= left and scores[i] >= right)
        run_end = bool(supported[i] and (i + 1 == scores.size or not supported[i + 1]))
        if peak or run_end:
            agreeing = [name for name, curve in curves.items() if name != "stability" and curve.best_k == k]
            found.append(Granularity(k, float(scores[i]), fits[k].stable_clusters, bool(supported[i]), agreeing, peak))
    return found


def _decide(curves: dict[str, KCurve], granularities: list[Granularity], ks: list[int]) -> tuple[int, bool, str]:
    """The combined rule (docs/cluster.md, "How k is chosen")."""
    supported = [g for g in granularities if g.supported]
    if supported:
        best = max(
            (g for g in supported if g.local_maximum),
            key=lambda g: (g.stable_clusters, round(g.stability, 2), len(g.agreeing), -g.k),
        )
        others = [g.k for g in supported if g.k != best.k]
        also = f"; also supported: k = {', '.join(map(str, others))}" if others else ""
        agree = f", and {' and '.join(best.agreeing)} peak there too" if best.agreeing else ""
        if best.k == ks[-1]:
            return (
                best.k,
                False,
                f"no clear k within {ks[0]}-{ks[-1]}: k-means is reproducible at the largest candidate, k = {best.k} "
                f"(stability {best.stability:.2f}), so the data may support more clusters; try larger k_values{also}.",
            )
        return (
            best.k,
            True,
            f"k = {best.k}: k-means clusterings of resamples agree (stability {best.stability:.2f} >= "
            f"{MIN_STABILITY}, {best.stable_clusters} of {best.k} clusters individually stable){agree}{also}.",
        )
    best = max(granularities, key=lambda g: (g.stability, -g.k))
    notes = []
    if curves["gap"].peak == "one_cluster":
        notes.append("the gap statistic prefers a single cluster")
    silhouette = curves["silhouette"]
    if silhouette.peak == "flat":
        notes.append(f"the silhouette is flat ({min(silhouette.scores):.3f}-{max(silhouette.scores):.3f})")
    elif silhouette.peak == "upper_edge":
        notes.append("the silhouette rises to the end of the range")
    tail = f"; {'; '.join(notes)}" if notes else ""
    partial = sorted((g for g in granularities if g.stable_clusters), key=lambda g: -g.stability)[:_OFFERED]
    if partial:
        offered = ", ".join(f"k = {g.k} ({g.stable_clusters} of {g.k} clusters stable)" for g in partial)
        offer = f"The most reproducible granularities: {offered}."
    else:
        offer = f"Not one cluster is stable at any k (Hennig's Jaccard >= {STABLE_JACCARD})."
    return (
        best.k,
        False,
        f"no clear k within {ks[0]}-{ks[-1]}: no k-means clustering is reproduced on resamples (stability below "
        f"{MIN_STABILITY} at every k, best {best.stability:.2f} at k = {best.k}){tail}. {offer}",
    )


def _decide_single(curve: KCurve) -> tuple[int, bool, str]:
    if curve.peak in ("interior", "lower_edge"):
        return curve.best_k, True, f"k = {curve.best_k}: the best {curve.criterion} among the candidates."
    why = {
        "flat": f"the {curve.criterion} curve is flat",
        "upper_edge": f"the {curve.criterion} keeps improving to the end of the range",
        "one_cluster": "the gap statistic prefers a single cluster",
    }[curve.peak]
    return curve.best_k, False, f"no clear k: {why}; k = {curve.best_k} is only the best candidate."


def _refinement(ks: list[int], best: int, limit: int) -> list[int]:
    """The candidates not scored yet between ``best`` and each of its neighbours: every integer on a side with
    at most ``_REFINE_SIDE`` of them, otherwise about 5% apart."""
    i = ks.index(best)
    new: set[int] = set()
    for low, high in ((ks[i - 1] if i > 0 else best, best), (best, ks[i + 1] if i + 1 < len(ks) else best)):
        high = min(high, limit)
        grid = np.arange(low + 1, high)
        if grid.size > _REFINE_SIDE:
            steps = int(np.ceil(np.log(high / low) / np.log(_REFINE_RATIO)))
            grid = np.round(np.geomspace(low, high, min(steps, _REFINE_SIDE) + 1)).astype(int)
        new.update(int(k) for k in grid if k not in ks and low < k < high)
    return sorted(new)


def select_k(
    X: object,
    k_values: Sequence[int] | None = None,
    *,
    criterion: Criterion = "auto",
    metric: ClusterMetric = "cosine",
    sample: int = 10_000,
    n_boot: int = 5,
    n_references: int = 5,
    refine: bool = True,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> KSelection:
    """Score candidate numbers of clusters, pick one, and say whether the data support it.

    Every criterion scores k-means fits on the same seeded sample of at most ``sample`` evaluation rows:

    - ``"stability"``: 1 - D / D0, where D is the share of evaluation rows on which two k-means fits, each
      on a random 80% subsample, disagree after the best one-to-one matching of their clusters (both label
      every evaluation row by the nearest centre), and D0 the same after randomly relabelling one of them
      with its cluster sizes kept; means over ``n_boot`` pairs (Ben-Hur et al. 2002; Lange et al. 2004). 1:
      the resamples agree; 0: no more than chance. The same fits give each cluster's Hennig (2007) stability.
    - ``"silhouette"``: mean silhouette of the fit on all evaluation rows (Rousseeuw 1987); highest wins.
    - ``"gap"``: the gap statistic with ``n_references`` uniform reference sets in the principal-axes box,
      Tibshirani's rule (smallest k with Gap(k) >= Gap(k+1) - s(k+1)), k = 1 included so that it can find no
      clusters (Tibshirani, Walther and Hastie 2001).
    - ``"bic"``: BIC of a diagonal Gaussian mixture on a PCA reduction (Schwarz 1978); lowest wins.

    ``"auto"`` computes all four and combines them (docs/cluster.md, "How k is chosen"): the granularities
    are the local maxima of the stability curve, supported when their stability is at least
    :data:`MIN_STABILITY`, and the finest k of each run of supported candidates (offered, never chosen); the
    supported local maximum with the most individually stable clusters is chosen (a split in
    two is reproducible in most data and says little; ties: the more stable, then the one more other criteria
    pick, then the smaller k); with none supported, or the chosen k at the end of the range, the selection is not
    ``clear`` and its reason lists the most reproducible granularities instead. A single criterion is
    ``clear`` when its curve peaks inside the range. With ``refine``, candidates about 5% apart are added
    between the chosen k and its neighbours and scored the same way.

    Parameters
    ----------
    X : array-like of shape (n, d)
    k_values : sequence of int, optional
        Candidates (default :data:`DEFAULT_K_VALUES`); values outside ``2 .. n // 2`` are skipped.
    criterion : {"auto", "stability", "silhouette", "gap", "bic"}, default="auto"
    metric : {"cosine", "l2"}, default="cosine"
    sample : int, default=10000
        Evaluation rows (a seeded sample when there are more).
    n_boot : int, default=5
        Pairs of subsample fits per k (stability).
    n_references : int, default=5
        Reference sets of the gap statistic.
    refine : bool, default=True
    random_state : int or None, default=0
        Reaches every fit and draw; each candidate k is seeded by itself, so adding candidates does not
        change the scores of the others.
    progress : ProgressReporter, optional

    Returns
    -------
    KSelection

    Raises
    ------
    ConfigurationError
        On an unknown criterion, parameters out of range or no usable candidate.

    References
    ----------
    Ben-Hur, Elisseeff and Guyon (2002), "A stability based method for discovering structure in clustered
    data", Pacific Symposium on Biocomputing.
    Lange, Roth, Braun and Buhmann (2004), "Stability-based validation of clustering solutions", Neural
    Computation 16(6).
    Hennig (2007), "Cluster-wise assessment of cluster stability", Computational Statistics & Data Analysis 52.
    Tibshirani, Walther and Hastie (2001), "Estimating the number of clusters in a data set via the gap
    statistic", Journal of the Royal Statistical Society B 63(2).
    Rousseeuw (1987), "Silhouettes: a graphical aid to the interpretation and validation of cluster analysis",
    Journal of Computational and Applied Mathematics 20.
    Schwarz (1978), "Estimating the dimension of a model", Annals of Statistics 6(2).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(60, 5)) + 10 * c for c in np.eye(5)[:4]]).astype(np.float32)
    >>> selection = select_k(X, range(2, 8), metric="l2", n_boot=2, n_references=2)
    >>> selection.best_k, selection.clear
    (4, True)
    """
    check_choice(criterion, "criterion", ("auto", *CRITERIA))
    n_boot = check_int(n_boot, "n_boot")
    n_references = check_int(n_references, "n_references")
    sample = check_int(sample, "sample", 10)
    rows = prepare(X, metric, min_rows=4).vectors
    seed = 0 if random_state is None else int(random_state)
    if rows.shape[0] > sample:
        rows = rows[np.sort(np.random.default_rng(seed).choice(rows.shape[0], sample, replace=False))]
    ks = _candidates(k_values, rows.shape[0])
    want = frozenset(CRITERIA if criterion == "auto" else (criterion,))
    curves_of = _Curves(rows, metric, want, n_boot, n_references, seed)

    def decide(curves: dict[str, KCurve], granularities: list[Granularity]) -> tuple[int, bool, str]:
        if criterion == "auto":
            return _decide(curves, granularities, ks)
        return _decide_single(curves[criterion])

    with progress.task(f"Choosing k ({criterion})", len(ks)) as advance:
        curves_of.add(ks, sample, advance)
    curves = curves_of.curves()
    granularities = _granularities(curves, curves_of.fits) if "stability" in want else []
    best_k, clear, reason = decide(curves, granularities)
    extra = _refinement(ks, best_k, rows.shape[0] // 2) if refine else []
    if extra:
        with progress.task(f"Refining k around {best_k}", len(extra)) as advance:
            curves_of.add(extra, sample, advance)
        curves = curves_of.curves()
        granularities = _granularities(curves, curves_of.fits) if "stability" in want else []
        best_k, clear, reason = decide(curves, granularities)
    scored = sorted(curves_of.fits)
    logger.info("k selection (%s): k=%d among %s; %s", criterion, best_k, scored, reason)
    return KSelection(criterion, scored, best_k, clear, reason, curves, granularities, rows.shape[0])
