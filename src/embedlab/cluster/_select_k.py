"""Choosing the number of clusters: silhouette, bootstrap stability and BIC curves over candidate k."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.metrics import adjusted_rand_score

from embedlab._checks import check_choice
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster._density import gmm_bic_curve, reduce_dimensions
from embedlab.cluster._kmeans import ClusterMetric, KMeans
from embedlab.cluster.metrics import internal_scores
from embedlab.exceptions import ConfigurationError
from embedlab.io.validation import prepare

__all__ = ["DEFAULT_K_VALUES", "KSelection", "select_k"]

logger = logging.getLogger(__name__)

Criterion = Literal["silhouette", "stability", "bic"]
#: Candidate k when none are given: dense at small k, sparser beyond.
DEFAULT_K_VALUES = (2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50)


@dataclass(frozen=True)
class KSelection:
    """The curve of a k-selection criterion and its pick.

    Attributes
    ----------
    criterion : str
    k_values : list of int
    scores : list of float
        Silhouette and stability: higher is better; BIC: lower is better.
    spread : list of float
        Standard deviation of the score over bootstrap pairs (stability); 0 for the other criteria.
    best_k : int
    sample_size : int
        Rows behind each score.
    """

    criterion: str
    k_values: list[int]
    scores: list[float]
    spread: list[float]
    best_k: int
    sample_size: int

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "criterion": self.criterion,
            "k_values": self.k_values,
            "scores": self.scores,
            "spread": self.spread,
            "best_k": self.best_k,
            "sample_size": self.sample_size,
        }


def _candidates(k_values: Sequence[int] | None, n: int) -> list[int]:
    values = sorted({int(k) for k in (DEFAULT_K_VALUES if k_values is None else k_values) if 2 <= int(k) < n})
    if not values:
        raise ConfigurationError(f"no candidate k between 2 and {n - 1} (the rows minus one); give other k_values.")
    return values


def _silhouette_curve(
    X: np.ndarray, ks: list[int], metric: ClusterMetric, sample: int, seed: int, advance: Advance
) -> tuple[list[float], list[float]]:
    scores = []
    for k in ks:
        labels = KMeans(k, metric=metric, random_state=seed).fit(X).labels_
        scores.append(internal_scores(X, labels, metric=metric, sample=sample, random_state=seed).silhouette)
        advance(1)
    return scores, [0.0] * len(ks)


def _stability_curve(
    X: np.ndarray, ks: list[int], metric: ClusterMetric, sample: int, n_boot: int, seed: int, advance: Advance
) -> tuple[list[float], list[float]]:
    """Mean and std over bootstrap pairs of the ARI between two k-means fits on overlapping subsamples.

    Each pair fits k-means on two random 80% subsamples of the evaluation rows and compares their labels of
    all evaluation rows (Ben-Hur, Elisseeff and Guyon 2002; Lange, Roth, Braun and Buhmann 2004).
    """
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    rows = np.sort(rng.choice(n, min(n, sample), replace=False))
    evaluated = X[rows]
    fraction = max(int(0.8 * rows.size), 2)
    means, stds = [], []
    for k in ks:
        agreements = []
        for _ in range(n_boot):
            labelings = []
            for _ in range(2):
                part = evaluated[np.sort(rng.choice(rows.size, fraction, replace=False))]
                model = KMeans(min(k, fraction), metric=metric, random_state=int(rng.integers(2**31 - 1))).fit(part)
                labelings.append(model.predict(evaluated))
            agreements.append(adjusted_rand_score(*labelings))
        means.append(float(np.mean(agreements)))
        stds.append(float(np.std(agreements)))
        advance(1)
    return means, stds


def _bic_curve(X: np.ndarray, ks: list[int], metric: ClusterMetric, seed: int, advance: Advance) -> list[float]:
    reduced = reduce_dimensions(X, method="pca", metric=metric, random_state=seed)
    scores = gmm_bic_curve(reduced, ks, random_state=seed)
    advance(len(ks))
    return [float(s) for s in scores]


def select_k(
    X: object,
    k_values: Sequence[int] | None = None,
    *,
    criterion: Criterion = "silhouette",
    metric: ClusterMetric = "cosine",
    sample: int = 10_000,
    n_boot: int = 5,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> KSelection:
    """Score each candidate number of clusters and pick one; the whole curve is returned.

    - ``"silhouette"``: k-means on all rows for each k, mean silhouette on a seeded sample of ``sample`` rows
      (Rousseeuw 1987); the highest wins.
    - ``"stability"``: mean adjusted Rand index between k-means fits on pairs of random 80% subsamples of
      ``sample`` rows, over ``n_boot`` pairs (Ben-Hur et al. 2002; Lange et al. 2004); the highest wins.
      Small k are often trivially stable: read the curve, not only the pick.
    - ``"bic"``: Bayesian information criterion of a diagonal Gaussian mixture on a PCA reduction of the rows
      (Schwarz 1978); the lowest wins.

    Parameters
    ----------
    X : array-like of shape (n, d)
    k_values : sequence of int, optional
        Candidates (default :data:`DEFAULT_K_VALUES`); values outside ``2 .. n - 1`` are skipped.
    criterion : {"silhouette", "stability", "bic"}, default="silhouette"
    metric : {"cosine", "l2"}, default="cosine"
    sample : int, default=10000
    n_boot : int, default=5
    random_state : int or None, default=0
    progress : ProgressReporter, optional

    Returns
    -------
    KSelection

    Raises
    ------
    ConfigurationError
        On an unknown criterion or no usable candidate.

    References
    ----------
    Rousseeuw (1987), "Silhouettes: a graphical aid to the interpretation and validation of cluster analysis",
    Journal of Computational and Applied Mathematics 20.
    Ben-Hur, Elisseeff and Guyon (2002), "A stability based method for discovering structure in clustered
    data", Pacific Symposium on Biocomputing.
    Lange, Roth, Braun and Buhmann (2004), "Stability-based validation of clustering solutions", Neural
    Computation 16(6).
    Schwarz (1978), "Estimating the dimension of a model", Annals of Statistics 6(2).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(60, 5)) + 10 * c for c in np.eye(5)[:4]]).astype(np.float32)
    >>> select_k(X, range(2, 8), metric="l2").best_k
    4
    """
    check_choice(criterion, "criterion", ("silhouette", "stability", "bic"))
    rows = prepare(X, metric, min_rows=3).vectors
    ks = _candidates(k_values, rows.shape[0])
    seed = 0 if random_state is None else int(random_state)
    with progress.task(f"Choosing k ({criterion})", len(ks)) as advance:
        if criterion == "silhouette":
            scores, spread = _silhouette_curve(rows, ks, metric, sample, seed, advance)
        elif criterion == "stability":
            scores, spread = _stability_curve(rows, ks, metric, sample, n_boot, seed, advance)
        else:
            scores, spread = _bic_curve(rows, ks, metric, seed, advance), [0.0] * len(ks)
    finite = np.where(np.isfinite(scores), scores, -np.inf if criterion != "bic" else np.inf)
    best = int(np.argmin(finite) if criterion == "bic" else np.argmax(finite))
    logger.info("k selection by %s: k=%d among %s", criterion, ks[best], ks)
    return KSelection(criterion, ks, scores, spread, ks[best], min(rows.shape[0], sample))
