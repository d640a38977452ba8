"""SemDeDup (Abbas et al. 2023): semantic deduplication inside k-means clusters.

The set is partitioned by spherical k-means; inside each cluster the rows are ranked (by the keep policy), and
each row's largest cosine similarity to the rows ranked before it is computed once. A row is removed at a
threshold ``eps`` when that similarity exceeds ``1 - eps``, so the first-ranked row of every group of
duplicates stays. Since the per-row similarity does not depend on ``eps``, the removal curve over any number
of thresholds, or the threshold that removes a target fraction, costs nothing more.

embedlab follows the authors' released code, not the wording of the paper where the two differ: a row is
compared with every row ranked before it, whether that row is itself removed or not. The paper speaks of
groups of duplicates of which one is kept; the code's rule removes a row that is a duplicate of a removed
row too, which makes removal a function of one threshold on one stored similarity (so a single pass serves
every ``eps``), and it is the rule the paper's published numbers came from.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from embedlab._checks import check_choice, check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster import KMeans
from embedlab.exceptions import ConfigurationError
from embedlab.io.validation import prepare

__all__ = ["KEEP_POLICIES", "SemDeDup", "check_eps", "check_fraction"]

KeepPolicy = Literal["hard", "easy", "random"]
#: Which row of a group of duplicates is kept: the farthest from its centroid (the paper's default), the
#: closest, or a random one.
KEEP_POLICIES: tuple[str, ...] = ("hard", "easy", "random")
#: Similarities computed at once: a block of rows against the rows ranked before them (float32 entries).
_BLOCK_ENTRIES = 2**24


def check_eps(eps: float) -> float:
    """``eps`` as a float in (0, 2): a cosine-distance threshold (1 - eps is the similarity above which a row goes)."""
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 2:
        raise ConfigurationError(
            f"eps must be a number in (0, 2) (a cosine distance; rows more similar than 1 - eps go), got {eps!r}."
        )
    return float(eps)


def check_fraction(fraction: float, name: str = "remove_fraction") -> float:
    """``fraction`` as a float in [0, 1)."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
        raise ConfigurationError(f"{name} must be a number in [0, 1), got {fraction!r}.")
    return float(fraction)


def _ranked(members: np.ndarray, distance: np.ndarray, keep: str, rng: np.random.RandomState) -> np.ndarray:
    """The members of one cluster in the order that decides which duplicate stays (the first)."""
    if keep == "random":
        return members[rng.permutation(members.size)]
    # ties by row number, so the order (and the result) does not depend on the sort algorithm
    order = np.lexsort((members, -distance if keep == "hard" else distance))
    return members[order]


def max_similarity_to_earlier(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's largest inner product with the rows before it, and the position of that row.

    Parameters
    ----------
    rows : ndarray of shape (m, d), float32
        Unit rows in rank order (assumed validated).

    Returns
    -------
    similarity : ndarray of shape (m,), float32
        -inf for the first row.
    earlier : ndarray of shape (m,), int64
        Position of the most similar earlier row (the first of equals); -1 for the first row.
    """
    m = rows.shape[0]
    similarity = np.full(m, -np.inf, dtype=np.float32)
    earlier = np.full(m, -1, dtype=np.int64)
    step = max(1, _BLOCK_ENTRIES // max(m, 1))
    for start in range(1, m, step):
        stop = min(start + step, m)
        block = rows[start:stop] @ rows[:stop].T  # row i of the block is row start + i
        block[np.arange(stop - start)[:, None] + start <= np.arange(stop)[None, :]] = -np.inf
        earlier[start:stop] = block.argmax(axis=1)
        similarity[start:stop] = block[np.arange(stop - start), earlier[start:stop]]
    return similarity, earlier


class SemDeDup(BaseEstimator):
    """Semantic deduplication inside k-means clusters (SemDeDup).

    Parameters
    ----------
    n_clusters : int, default=100
        k of the spherical k-means partition; the paper uses about one cluster per 10,000 rows or fewer.
        Duplicates split across two clusters are not found, so fewer, larger clusters find more at more cost
        (a cluster of m rows costs m^2 d / 2 multiply-adds).
    keep : {"hard", "easy", "random"}, default="hard"
        Which row of a group of duplicates stays: the farthest from its cluster's centroid (the paper's
        default), the closest, or a random one.
    max_iter : int, default=20
        Lloyd iterations of the k-means.
    random_state : int, RandomState or None, default=0
        Seeds the k-means and the ``random`` policy.

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
        Each row's cluster.
    cluster_centers_ : ndarray of shape (n_clusters, d), float32
    max_similarity_ : ndarray of shape (n,), float32
        Each row's largest cosine similarity to a row ranked before it in its cluster; -inf for the first.
    duplicate_of_ : ndarray of shape (n,), int64
        That earlier row (-1 for the first of a cluster): the evidence for a removal.

    References
    ----------
    Abbas, Tirumala, Simig, Ganguli and Morcos (2023), "SemDeDup: Data-efficient learning at web-scale through
    semantic deduplication", arXiv:2303.09540.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 16)).astype(np.float32)
    >>> X[200:] = X[:100] + 0.001 * rng.normal(size=(100, 16)).astype(np.float32)
    >>> model = SemDeDup(n_clusters=4, random_state=0).fit(X)
    >>> int((~model.keep_mask(eps=0.01)).sum())
    100
    """

    def __init__(
        self,
        n_clusters: int = 100,
        *,
        keep: KeepPolicy = "hard",
        max_iter: int = 20,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.keep = keep
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> SemDeDup:
        """Partition ``X`` by spherical k-means and compute each row's similarity to the rows ranked before it."""
        check_choice(self.keep, "keep", KEEP_POLICIES)
        k = check_int(self.n_clusters, "n_clusters")
        rows = prepare(X, "cosine")
        if rows.n < k:
            raise ConfigurationError(f"n_clusters={k} but X has only {rows.n} rows.")
        rng = check_random_state(self.random_state)
        kmeans = KMeans(k, metric="cosine", max_iter=self.max_iter, random_state=rng).fit(rows)
        self.labels_ = np.asarray(kmeans.labels_, dtype=np.int64)
        self.cluster_centers_ = kmeans.cluster_centers_
        centers = self.cluster_centers_ / np.linalg.norm(self.cluster_centers_, axis=1, keepdims=True)
        distance = 1.0 - np.einsum("ij,ij->i", rows.vectors, centers[self.labels_])
        self.max_similarity_ = np.full(rows.n, -np.inf, dtype=np.float32)
        self.duplicate_of_ = np.full(rows.n, -1, dtype=np.int64)
        by_cluster = np.argsort(self.labels_, kind="stable")
        bounds = np.searchsorted(self.labels_[by_cluster], np.arange(k + 1))
        with progress.task(f"SemDeDup in {k} clusters", rows.n) as advance:
            for c in range(k):
                members = by_cluster[bounds[c] : bounds[c + 1]]
                ranked = _ranked(members, distance[members], self.keep, rng)
                similarity, earlier = max_similarity_to_earlier(rows.vectors[ranked])
                self.max_similarity_[ranked] = similarity
                self.duplicate_of_[ranked] = np.where(earlier >= 0, ranked[np.maximum(earlier, 0)], -1)
                advance(members.size)
        return self

    def keep_mask(self, eps: float | None = None, *, remove_fraction: float | None = None) -> np.ndarray:
        """The rows kept at threshold ``eps``, or at the threshold that removes ``remove_fraction`` of them.

        A row goes when its similarity to a row ranked before it exceeds ``1 - eps``. With ``remove_fraction``
        the rows of highest similarity go, ties to the later-ranked row in row order, so exactly
        ``floor(remove_fraction * n)`` rows go.
        """
        check_is_fitted(self, "max_similarity_")
        if (eps is None) == (remove_fraction is None):
            raise ConfigurationError("give eps or remove_fraction, not both and not neither.")
        if eps is not None:
            return ~(self.max_similarity_ > 1.0 - check_eps(eps))
        n_remove = int(check_fraction(remove_fraction) * self.max_similarity_.size)
        keep = np.ones(self.max_similarity_.size, dtype=bool)
        order = np.lexsort((-np.arange(keep.size), -self.max_similarity_))
        keep[order[:n_remove]] = False
        return keep

    def eps_for_fraction(self, remove_fraction: float) -> float:
        """The largest ``eps`` that removes at most ``remove_fraction`` of the rows, to float rounding: what a
        target fraction means as a threshold (in (0, 2); :meth:`keep_mask` with the fraction is exact)."""
        check_is_fitted(self, "max_similarity_")
        n_remove = int(check_fraction(remove_fraction) * self.max_similarity_.size)
        ranked = np.sort(self.max_similarity_)[::-1]  # n_remove < n: the fraction is below 1
        eps = 1.0 - float(ranked[n_remove])
        return float(np.clip(eps, np.finfo(np.float32).eps, np.nextafter(2.0, 0.0)))

    def removal_curve(self, eps_values: object) -> np.ndarray:
        """The fraction of rows removed at each ``eps`` of ``eps_values``, from the one stored pass."""
        check_is_fitted(self, "max_similarity_")
        eps = np.asarray([check_eps(float(e)) for e in np.ravel(eps_values)])
        ranked = np.sort(self.max_similarity_)
        removed = ranked.size - np.searchsorted(ranked, 1.0 - eps, side="right")
        return removed / max(ranked.size, 1)
