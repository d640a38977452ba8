"""Density and model-based clustering: HDBSCAN and Gaussian mixtures on a reduced space (PCA or UMAP), and
Ward's agglomerative clustering for small sets."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import HDBSCAN, AgglomerativeClustering
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from embedlab._checks import check_choice, check_int
from embedlab._optional import import_optional
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster._kmeans import _METRICS, ClusterMetric
from embedlab.exceptions import ConfigurationError
from embedlab.io.validation import check_vectors, fit_rows, new_rows, prepare
from embedlab.neighbors import knn

__all__ = [
    "WARD_MAX_ROWS",
    "GaussianMixtureClusterer",
    "HDBSCANClusterer",
    "WardClusterer",
    "gmm_bic_curve",
    "reduce_dimensions",
]

logger = logging.getLogger(__name__)

Reduction = Literal["pca", "umap"]
CovarianceType = Literal["full", "tied", "diag", "spherical"]
_REDUCTIONS = ("pca", "umap")
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_SELECTION_METHODS = ("eom", "leaf")
#: Dimensions kept by default: 32 principal components, or 10 UMAP components.
_DEFAULT_COMPONENTS = {"pca": 32, "umap": 10}
#: Neighbours of UMAP's fuzzy graph (umap-learn's default).
_UMAP_NEIGHBORS = 15
#: Ward keeps a condensed float64 distance matrix: n (n - 1) / 2 x 8 bytes, 1.6 GB at 20,000 rows.
WARD_MAX_ROWS = 20_000
_SEED_BOUND = np.iinfo(np.int32).max
#: What bounds a count of rows (``why`` of :func:`embedlab._checks.check_int`).
_ROWS_OF_X = "the rows of X"


def _umap(rows: np.ndarray, n_components: int, metric: str, seed: int | None) -> np.ndarray:
    """UMAP of validated rows, on the kNN graph of embedlab's engine (self prepended, as umap-learn expects)."""
    umap = import_optional("umap", "deep", purpose="UMAP dimensionality reduction")
    n = rows.shape[0]
    if n <= _UMAP_NEIGHBORS:
        raise ConfigurationError(
            f"UMAP needs more than {_UMAP_NEIGHBORS} rows (its n_neighbors), got {n}; use method='pca'."
        )
    graph = knn(rows, _UMAP_NEIGHBORS - 1, metric=metric, random_state=seed)
    indices = np.c_[np.arange(n), graph.indices]
    distances = np.c_[np.zeros(n, dtype=np.float32), graph.distances]
    reducer = umap.UMAP(
        n_neighbors=_UMAP_NEIGHBORS,
        n_components=n_components,
        metric="cosine" if metric == "cosine" else "euclidean",
        random_state=seed,
        n_jobs=-1 if seed is None else 1,
        precomputed_knn=(indices, distances),
    )
    with warnings.catch_warnings():
        # Without umap-learn's own search index it cannot transform new rows; nothing here asks it to.
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
        embedding = reducer.fit_transform(rows)
    return np.ascontiguousarray(embedding, dtype=np.float32)


def _reduce(
    rows: np.ndarray, method: Reduction | None, n_components: int | None, metric: str, seed: int | None
) -> tuple[PCA | None, np.ndarray]:
    """The fitted PCA (None otherwise) and the reduced rows of validated input; ``method=None`` keeps them."""
    if method is None:
        return None, rows
    wanted = _DEFAULT_COMPONENTS[method] if n_components is None else check_int(n_components, "n_components")
    n, d = rows.shape
    dims = min(wanted, d, n) if method == "pca" else min(wanted, d)
    if dims < wanted:
        logger.debug("%s: n_components capped at %d for %d rows of dimension %d", method, dims, n, d)
    if method == "umap":
        return None, _umap(rows, dims, metric, seed)
    pca = PCA(n_components=dims, random_state=seed)
    return pca, np.ascontiguousarray(pca.fit_transform(rows), dtype=np.float32)


def reduce_dimensions(
    X: object,
    *,
    method: Reduction = "pca",
    n_components: int | None = None,
    metric: ClusterMetric = "cosine",
    random_state: int | None = 0,
) -> np.ndarray:
    """Project the rows of ``X`` to a few dimensions where density and mixture models work well.

    PCA (scikit-learn) runs on unit-normalised rows for cosine, so that Euclidean geometry in the reduced
    space follows the angles. UMAP (umap-learn, the ``deep`` extra) builds its fuzzy graph from embedlab's
    kNN engine (15 neighbours, the metric given) and optimises a layout of it. With an integer
    ``random_state`` UMAP runs single-threaded and is deterministic; ``None`` lets it use every core, and
    results then vary from run to run.

    Parameters
    ----------
    X : array-like of shape (n, d)
    method : {"pca", "umap"}, default="pca"
    n_components : int, optional
        Dimensions kept, 32 for PCA and 10 for UMAP by default; capped at ``d`` (and at ``n`` for PCA).
    metric : {"cosine", "l2"}, default="cosine"
    random_state : int or None, default=0

    Returns
    -------
    ndarray of shape (n, n_components), float32

    Raises
    ------
    EmbeddingDataError
        On invalid rows (NaN/Inf, zero rows under cosine) or fewer than 2 rows.
    ConfigurationError
        On an unknown method or metric, or UMAP on 15 rows or fewer.
    MissingDependencyError
        For UMAP without umap-learn.

    References
    ----------
    Pearson (1901), "On lines and planes of closest fit to systems of points in space", Philosophical Magazine.
    McInnes, Healy and Melville (2018), "UMAP: Uniform Manifold Approximation and Projection for dimension
    reduction", arXiv:1802.03426.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 64))
    >>> reduce_dimensions(X, n_components=8).shape
    (100, 8)
    """
    check_choice(method, "method", _REDUCTIONS)
    check_choice(metric, "metric", _METRICS)
    rows = prepare(X, metric, min_rows=2).vectors
    return _reduce(rows, method, n_components, metric, random_state)[1]


def _draw_seed(random_state: int | np.random.RandomState | None) -> int:
    """One integer seed from an estimator's ``random_state``, for the reduction and the model."""
    return int(check_random_state(random_state).randint(_SEED_BOUND))


def _check_reduction(reduction: object, metric: object) -> None:
    check_choice(metric, "metric", _METRICS)
    if reduction is not None:
        check_choice(reduction, "reduction", _REDUCTIONS)


class HDBSCANClusterer(ClusterMixin, BaseEstimator):
    """HDBSCAN on a reduced space: clusters of any shape and number, and noise, from density alone.

    The rows are reduced first (PCA to 32 dimensions by default: density estimates degrade and the core
    distance search slows down in hundreds of dimensions), then clustered by scikit-learn's
    :class:`~sklearn.cluster.HDBSCAN` with Euclidean distance. There is no ``predict``: HDBSCAN defines no
    assignment of new rows; refit on the enlarged set, or train a classifier on ``labels_``.

    Parameters
    ----------
    min_cluster_size : int, default=5
        Smallest group of rows counted as a cluster (at least 2).
    min_samples : int, optional
        Neighbours (the row itself included) whose distance defines a row's core distance; larger values
        declare more rows noise. Defaults to ``min_cluster_size``.
    cluster_selection_method : {"eom", "leaf"}, default="eom"
        Excess of mass favours a few large clusters; ``"leaf"`` takes the leaves of the cluster tree, many
        small homogeneous ones.
    reduction : {"pca", "umap"} or None, default="pca"
        None clusters the (for cosine, unit-normalised) rows themselves.
    n_components : int, optional
        Dimensions of the reduced space (see :func:`reduce_dimensions`).
    metric : {"cosine", "l2"}, default="cosine"
    random_state : int, RandomState or None, default=None
        Seeds the reduction (HDBSCAN itself is deterministic).

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
        Cluster of each row, -1 for noise.
    probabilities_ : ndarray of shape (n,), float32
        Strength of each row's membership in its cluster, in [0, 1]; 0 for noise.
    n_clusters_ : int
    n_noise_ : int
        Rows labelled -1.

    References
    ----------
    Campello, Moulavi and Sander (2013), "Density-based clustering based on hierarchical density estimates",
    PAKDD, Lecture Notes in Computer Science 7819.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(50, 4)) + 8, rng.normal(size=(50, 4)) - 8]
    >>> hdb = HDBSCANClusterer(min_cluster_size=10, metric="l2", reduction=None).fit(X)
    >>> hdb.n_clusters_, sorted(np.bincount(hdb.labels_[hdb.labels_ >= 0]).tolist())
    (2, [50, 50])
    """

    def __init__(
        self,
        *,
        min_cluster_size: int = 5,
        min_samples: int | None = None,
        cluster_selection_method: Literal["eom", "leaf"] = "eom",
        reduction: Reduction | None = "pca",
        n_components: int | None = None,
        metric: ClusterMetric = "cosine",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_method = cluster_selection_method
        self.reduction = reduction
        self.n_components = n_components
        self.metric = metric
        self.random_state = random_state

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> HDBSCANClusterer:
        """Reduce and cluster the rows of ``X``; ``progress`` receives the two steps.

        Raises
        ------
        EmbeddingDataError
            On invalid rows (NaN/Inf, zero rows under cosine) or fewer than 2 rows.
        ConfigurationError
            On bad parameters, or ``min_cluster_size`` or ``min_samples`` larger than the number of rows.
        """
        _check_reduction(self.reduction, self.metric)
        check_choice(self.cluster_selection_method, "cluster_selection_method", _SELECTION_METHODS)
        seed = _draw_seed(self.random_state)
        rows = fit_rows(self, X, self.metric, min_rows=2).vectors
        n = rows.shape[0]
        min_cluster_size = check_int(self.min_cluster_size, "min_cluster_size", 2, maximum=n, why=_ROWS_OF_X)
        min_samples = None
        if self.min_samples is not None:
            min_samples = check_int(self.min_samples, "min_samples", maximum=n, why=_ROWS_OF_X)
        with progress.task("HDBSCAN", 2) as advance:
            _, reduced = _reduce(rows, self.reduction, self.n_components, self.metric, seed)
            advance(1)
            model = HDBSCAN(
                min_cluster_size=min_cluster_size,
                min_samples=min_samples,
                cluster_selection_method=self.cluster_selection_method,
                copy=False,
            ).fit(reduced)
            advance(1)
        self.labels_ = model.labels_.astype(np.int64)
        self.probabilities_ = model.probabilities_.astype(np.float32)
        self.n_clusters_ = int(self.labels_.max()) + 1
        self.n_noise_ = int((self.labels_ < 0).sum())
        logger.info("HDBSCAN: %d clusters, %d of %d rows noise", self.n_clusters_, self.n_noise_, rows.shape[0])
        return self


def _mixture(n_clusters: int, covariance_type: str, n_init: int, seed: int | None) -> GaussianMixture:
    return GaussianMixture(n_components=n_clusters, covariance_type=covariance_type, n_init=n_init, random_state=seed)


def gmm_bic_curve(
    X_reduced: object,
    k_values: Sequence[int],
    *,
    covariance_type: CovarianceType = "diag",
    random_state: int | None = 0,
) -> list[float]:
    """Bayesian information criterion of a Gaussian mixture with each number of components in ``k_values``.

    The smallest value marks the preferred k. Fit on a reduced space (:func:`reduce_dimensions`): in hundreds
    of dimensions the parameter count dominates the criterion.

    Parameters
    ----------
    X_reduced : array-like of shape (n, p)
    k_values : sequence of int
        Numbers of components to try, each at most ``n``.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="diag"
    random_state : int or None, default=0

    Returns
    -------
    list of float
        One BIC per entry of ``k_values``, in order (lower is better).

    Raises
    ------
    ConfigurationError
        On a k below 1 or above ``n``, or an unknown covariance type.

    References
    ----------
    Schwarz (1978), "Estimating the dimension of a model", The Annals of Statistics 6(2).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(100, 2)) + 10, rng.normal(size=(100, 2)) - 10]
    >>> bic = gmm_bic_curve(X, [1, 2, 3])
    >>> int(np.argmin(bic)) + 1
    2
    """
    check_choice(covariance_type, "covariance_type", _COVARIANCE_TYPES)
    X = check_vectors(X_reduced, name="X_reduced", allow_zero=True, min_rows=2)[0].astype(np.float64)
    ks = [check_int(k, "k", maximum=X.shape[0], why="the rows of X_reduced") for k in k_values]
    return [float(_mixture(k, covariance_type, 1, random_state).fit(X).bic(X)) for k in ks]


class GaussianMixtureClusterer(ClusterMixin, BaseEstimator):
    """A Gaussian mixture fitted by EM on a reduced space: soft assignments and a likelihood-based score.

    Embeddings have hundreds of dimensions and far fewer rows per cluster than a covariance needs, so the rows
    are reduced first (PCA to 32 dimensions by default) and the components are diagonal by default.

    Parameters
    ----------
    n_clusters : int, default=8
        Mixture components (scikit-learn's ``n_components``; here ``n_components`` sizes the reduced space).
    covariance_type : {"full", "tied", "diag", "spherical"}, default="diag"
    reduction : {"pca", "umap"} or None, default="pca"
        ``predict`` needs ``"pca"`` or None: the UMAP layout has no map for new rows.
    n_components : int, optional
        Dimensions of the reduced space (see :func:`reduce_dimensions`).
    metric : {"cosine", "l2"}, default="cosine"
    n_init : int, default=1
        EM runs from different k-means starts; the most likely is kept.
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
        Most probable component of each row.
    confidence_ : ndarray of shape (n,), float32
        The posterior probability of that component.
    bic_ : float
        Bayesian information criterion of the fitted model on the reduced rows (lower is better).
    converged_ : bool
    n_features_in_ : int

    References
    ----------
    Dempster, Laird and Rubin (1977), "Maximum likelihood from incomplete data via the EM algorithm", Journal
    of the Royal Statistical Society B 39(1).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(50, 4)) + 8, rng.normal(size=(50, 4)) - 8]
    >>> gmm = GaussianMixtureClusterer(n_clusters=2, metric="l2", random_state=0).fit(X)
    >>> sorted(np.bincount(gmm.labels_).tolist()), gmm.predict_proba(X[:2]).sum(axis=1).round(6).tolist()
    ([50, 50], [1.0, 1.0])
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        covariance_type: CovarianceType = "diag",
        reduction: Reduction | None = "pca",
        n_components: int | None = None,
        metric: ClusterMetric = "cosine",
        n_init: int = 1,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.covariance_type = covariance_type
        self.reduction = reduction
        self.n_components = n_components
        self.metric = metric
        self.n_init = n_init
        self.random_state = random_state

    def fit(
        self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS
    ) -> GaussianMixtureClusterer:
        """Reduce the rows of ``X`` and fit the mixture; ``progress`` receives the two steps.

        Raises
        ------
        EmbeddingDataError
            On invalid rows (NaN/Inf, zero rows under cosine) or fewer than 2 rows.
        ConfigurationError
            On bad parameters, or ``n_clusters`` larger than the number of rows.
        """
        _check_reduction(self.reduction, self.metric)
        check_choice(self.covariance_type, "covariance_type", _COVARIANCE_TYPES)
        n_init = check_int(self.n_init, "n_init")
        seed = _draw_seed(self.random_state)
        rows = fit_rows(self, X, self.metric, min_rows=2).vectors
        k = check_int(self.n_clusters, "n_clusters", maximum=rows.shape[0], why=_ROWS_OF_X)
        with progress.task(f"Gaussian mixture, k={k}", 2) as advance:
            self._pca, reduced = _reduce(rows, self.reduction, self.n_components, self.metric, seed)
            advance(1)
            reduced = reduced.astype(np.float64)
            self._model = _mixture(k, self.covariance_type, n_init, seed).fit(reduced)
            advance(1)
        self.converged_ = bool(self._model.converged_)
        self.bic_ = float(self._model.bic(reduced))
        posterior = self._model.predict_proba(reduced)
        self.labels_ = np.argmax(posterior, axis=1).astype(np.int64)
        self.confidence_ = posterior.max(axis=1).astype(np.float32)
        if not self.converged_:
            logger.info("Gaussian mixture: EM stopped at max_iter before converging")
        logger.info("Gaussian mixture: k=%d, BIC %.6g", k, self.bic_)
        return self

    def predict(self, X: object) -> np.ndarray:
        """Most probable component of each row of ``X``, int64 of shape (m,)."""
        return np.argmax(self.predict_proba(X), axis=1).astype(np.int64)

    def predict_proba(self, X: object) -> np.ndarray:
        """Posterior probability of each component for each row of ``X``, shape (m, n_clusters); rows sum to 1.

        Raises
        ------
        ConfigurationError
            When the model was fitted on a UMAP reduction.
        EmbeddingDataError
            On invalid rows or a dimension other than the fitted one.
        """
        check_is_fitted(self, "labels_")
        if self.reduction == "umap":
            raise ConfigurationError(
                "predict needs reduction='pca' or None: the UMAP layout has no map for new rows. "
                "Use labels_ for the fitted rows, or refit with reduction='pca'."
            )
        rows = new_rows(self, X, self.metric).vectors
        reduced = rows if self._pca is None else self._pca.transform(rows)
        return self._model.predict_proba(reduced.astype(np.float64))


class WardClusterer(ClusterMixin, BaseEstimator):
    """Ward's agglomerative clustering (scikit-learn) for small sets: the merge tree of least variance increase.

    Exact and deterministic (hence no ``random_state``), but quadratic in memory: it is refused above
    ``WARD_MAX_ROWS`` (20,000) rows, where :class:`KMeans` or :class:`HierarchicalKMeans` should be used.
    Under cosine the rows are unit-normalised first. There is no ``predict``: the tree does not place new rows.

    Parameters
    ----------
    n_clusters : int, default=8
    metric : {"cosine", "l2"}, default="cosine"

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    children_ : ndarray of shape (n - 1, 2), int64
        The merges, in scikit-learn's convention (indices >= n are earlier merges).

    References
    ----------
    Ward (1963), "Hierarchical grouping to optimize an objective function", Journal of the American
    Statistical Association 58(301).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(30, 4)) + 8, rng.normal(size=(30, 4)) - 8]
    >>> sorted(np.bincount(WardClusterer(n_clusters=2, metric="l2").fit(X).labels_).tolist())
    [30, 30]
    """

    def __init__(self, n_clusters: int = 8, *, metric: ClusterMetric = "cosine") -> None:
        self.n_clusters = n_clusters
        self.metric = metric

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> WardClusterer:
        """Build the merge tree of the rows of ``X`` and cut it at ``n_clusters``.

        Raises
        ------
        EmbeddingDataError
            On invalid rows (NaN/Inf, zero rows under cosine) or fewer than 2 rows.
        ConfigurationError
            On bad parameters, ``n_clusters`` larger than the number of rows, or more than ``WARD_MAX_ROWS``
            rows.
        """
        check_choice(self.metric, "metric", _METRICS)
        rows = fit_rows(self, X, self.metric, min_rows=2).vectors
        n = rows.shape[0]
        if n > WARD_MAX_ROWS:
            raise ConfigurationError(
                f"Ward clustering is limited to {WARD_MAX_ROWS} rows (its distance matrix grows as n^2, "
                f"1.6 GB at the limit), got {n}; use KMeans or HierarchicalKMeans."
            )
        k = check_int(self.n_clusters, "n_clusters", maximum=n, why=_ROWS_OF_X)
        with progress.task(f"Ward, k={k}", 1) as advance:
            model = AgglomerativeClustering(n_clusters=k, linkage="ward").fit(rows)
            advance(1)
        self.labels_ = model.labels_.astype(np.int64)
        self.children_ = model.children_.astype(np.int64)
        logger.info("Ward: k=%d on %d rows", k, n)
        return self
