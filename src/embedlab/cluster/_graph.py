"""Graph clustering: Leiden communities of the symmetrised kNN graph, optionally tuned to a requested number
of clusters."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from types import ModuleType

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int, check_positive
from embedlab._optional import import_optional
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster._kmeans import _METRICS, ClusterMetric
from embedlab.exceptions import ConfigurationError
from embedlab.io.validation import check_k, fit_rows
from embedlab.neighbors import KnnResult, knn

__all__ = ["LeidenClusterer"]

logger = logging.getLogger(__name__)

#: Leiden runs at most spent searching the resolution that gives ``target_clusters``.
_RESOLUTION_TRIES = 16
#: Factor by which the resolution grows or shrinks until the target is bracketed.
_RESOLUTION_STEP = 4.0
_SEED_BOUND = np.iinfo(np.int32).max


def _edge_weights(graph: KnnResult) -> np.ndarray:
    """Similarity of each row to each of its neighbours, shape (n, k), float64; 0 where a neighbour is missing.

    Cosine: ``max(cos, 0) = max(1 - distance, 0)``. L2: ``exp(-d_ij^2 / (sigma_i sigma_j))`` with ``sigma_i``
    the distance from row i to its farthest (k-th) neighbour, the self-tuning kernel of Zelnik-Manor and
    Perona (2004), which adapts to the local density.
    """
    found = graph.indices >= 0
    d = np.where(found, graph.distances, 0.0).astype(np.float64)
    if graph.metric == "cosine":
        return np.where(found, np.clip(1.0 - d, 0.0, None), 0.0)
    sigma = d.max(axis=1)
    scale = sigma[:, None] * sigma[np.maximum(graph.indices, 0)]
    # A zero scale comes from duplicates: d = 0 gives weight 1; d > 0 (a neighbour whose k nearest are all its
    # duplicates) gives weight 0.
    weights = np.exp(-(d**2) / np.maximum(scale, np.finfo(np.float64).tiny))
    return np.where(found, weights, 0.0)


def _symmetric_edges(graph: KnnResult) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges ``(m, 2)`` with ``i < j`` and their weights: an edge wherever either row is among the
    other's neighbours, with positive weight."""
    n, k = graph.indices.shape
    weights = _edge_weights(graph).ravel()
    rows = np.repeat(np.arange(n), k)
    cols = graph.indices.ravel()
    keep = (cols >= 0) & (weights > 0)
    directed = sparse.csr_matrix((weights[keep], (rows[keep], cols[keep])), shape=(n, n))
    upper = sparse.triu(directed.maximum(directed.T), k=1).tocoo()
    return np.column_stack([upper.row, upper.col]).astype(np.int64), upper.data


def _n_components(edges: np.ndarray, n: int) -> int:
    """Connected components of the undirected graph on ``n`` nodes with these edges."""
    adjacency = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return int(csgraph.connected_components(adjacency, directed=False)[0])


def _by_size(membership: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..k-1 by decreasing cluster size (ties keep the earlier label first)."""
    order = np.argsort(-np.bincount(membership), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[membership].astype(np.int64)


def _search_resolution(
    run: Callable[[float], np.ndarray], start: float, target: int, tries: int, fewest: int
) -> tuple[float, np.ndarray]:
    """The resolution (and labels) whose cluster count is closest to ``target`` within ``tries`` runs.

    The resolution grows (shrinks) by ``_RESOLUTION_STEP`` while too few (many) clusters are found, then is
    bisected geometrically between the last values on either side. The earliest closest run wins. The search
    stops early at ``fewest`` clusters (the graph's connected components) when the target lies below it.
    """
    best: tuple[float, np.ndarray] | None = None
    low = high = None
    resolution = start
    for _ in range(tries):
        labels = run(resolution)
        count = int(labels.max()) + 1
        if best is None or abs(count - target) < abs(int(best[1].max()) + 1 - target):
            best = (resolution, labels)
        if count == target or count == fewest > target:
            break
        if count < target:
            low = resolution
        else:
            high = resolution
        if high is None:
            resolution *= _RESOLUTION_STEP
        elif low is None:
            resolution /= _RESOLUTION_STEP
        else:
            resolution = math.sqrt(low * high)
    return best


def _leiden(leidenalg: ModuleType, network: object, resolution: float, seed: int) -> np.ndarray:
    """Leiden communities (iterated until stable) at one resolution, labelled by decreasing size."""
    partition = leidenalg.find_partition(
        network,
        leidenalg.RBConfigurationVertexPartition,
        weights="weight",
        resolution_parameter=resolution,
        seed=seed,
        n_iterations=-1,
    )
    return _by_size(np.asarray(partition.membership, dtype=np.int64))


class LeidenClusterer(ClusterMixin, BaseEstimator):
    """Leiden community detection on the symmetrised kNN graph of the rows.

    The graph comes from embedlab's kNN engine (or is passed to ``fit`` as ``graph=``, for instance the cached
    ``knn_graph`` of an EmbeddingSet); rows i and j are joined when either is among the other's
    ``n_neighbors`` nearest, with weight ``max(cos, 0)`` under cosine and the self-tuning Gaussian kernel
    ``exp(-d^2 / (sigma_i sigma_j))`` under L2 (``sigma_i`` the distance to row i's k-th neighbour). leidenalg
    then maximises the Reichardt-Bornholdt configuration-model quality (modularity at resolution 1); higher
    ``resolution`` gives more, smaller clusters. The number of clusters follows from the graph, so when
    ``target_clusters`` is set the resolution is searched instead (growing or shrinking fourfold until the
    target is bracketed, then bisecting geometrically, at most 16 Leiden runs) and the run with the closest
    count is kept. Communities never span disconnected parts of the graph, so a target below the number of
    connected components ends the search at that number. There is no ``predict``.

    Parameters
    ----------
    n_neighbors : int, default=15
        Neighbours per row in the graph.
    metric : {"cosine", "l2"}, default="cosine"
    resolution : float, default=1.0
        Resolution of the quality function, and the start of the search when ``target_clusters`` is set.
    target_clusters : int, optional
        Number of clusters wanted; reached exactly on clean data, approximately otherwise.
    random_state : int, RandomState or None, default=None
        Seeds leidenalg's node order (the kNN search is exact on small sets).

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
        Community of each row, numbered 0..k-1 by decreasing size.
    n_clusters_ : int
    resolution_ : float
        The resolution of the kept partition.

    References
    ----------
    Traag, Waltman and van Eck (2019), "From Louvain to Leiden: guaranteeing well-connected communities",
    Scientific Reports 9, 5233.
    Reichardt and Bornholdt (2006), "Statistical mechanics of community detection", Physical Review E 74.
    Zelnik-Manor and Perona (2004), "Self-tuning spectral clustering", NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(50, 4)) + 8, rng.normal(size=(50, 4)) - 8]
    >>> leiden = LeidenClusterer(n_neighbors=10, metric="l2", target_clusters=2, random_state=0).fit(X)
    >>> leiden.n_clusters_, np.bincount(leiden.labels_).tolist()
    (2, [50, 50])
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 15,
        metric: ClusterMetric = "cosine",
        resolution: float = 1.0,
        target_clusters: int | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.resolution = resolution
        self.target_clusters = target_clusters
        self.random_state = random_state

    def fit(
        self,
        X: object,
        y: object = None,
        *,
        graph: KnnResult | None = None,
        progress: ProgressReporter = NULL_PROGRESS,
    ) -> LeidenClusterer:
        """Build the graph of the rows of ``X`` (or take ``graph``) and find its communities.

        Parameters
        ----------
        X : array-like of shape (n, d)
        y : ignored
        graph : KnnResult, optional
            The kNN graph of ``X`` against itself (self excluded) in the same metric, with at least
            ``n_neighbors`` columns; its first ``n_neighbors`` are used and no search is run.
        progress : ProgressReporter, optional
            Receives the kNN search and one step per Leiden run.

        Raises
        ------
        EmbeddingDataError
            On invalid rows (NaN/Inf, zero rows under cosine) or fewer than 2 rows.
        ConfigurationError
            On bad parameters, ``n_neighbors`` or ``target_clusters`` larger than the rows allow, or a
            ``graph`` of another size or metric.
        MissingDependencyError
            Without leidenalg and igraph.
        """
        leidenalg = import_optional("leidenalg", "graph", purpose="Leiden clustering")
        igraph = import_optional("igraph", "graph", purpose="Leiden clustering")
        check_choice(self.metric, "metric", _METRICS)
        resolution = check_positive(self.resolution, "resolution")
        rng = check_random_state(self.random_state)
        rows = fit_rows(self, X, self.metric, min_rows=2)
        n = rows.n
        k = check_k(self.n_neighbors, n, name="n_neighbors")
        target = None
        if self.target_clusters is not None:
            target = check_int(self.target_clusters, "target_clusters", maximum=n, why="the rows of X")
        seed = int(rng.randint(_SEED_BOUND))
        if graph is None:
            graph = knn(rows, k, metric=self.metric, random_state=seed, progress=progress)
        else:
            graph = self._check_graph(graph, n, k)
        edges, weights = _symmetric_edges(graph)
        fewest = _n_components(edges, n)
        network = igraph.Graph(n=n, edges=edges, edge_attrs={"weight": weights.tolist()})
        tries = 1 if target is None else _RESOLUTION_TRIES
        with progress.task("Leiden", tries) as advance:

            def run(resolution: float) -> np.ndarray:
                advance(1)
                return _leiden(leidenalg, network, resolution, seed)

            if target is None:
                self.resolution_, self.labels_ = resolution, run(resolution)
            else:
                self.resolution_, self.labels_ = _search_resolution(run, resolution, target, tries, fewest)
        self.n_clusters_ = int(self.labels_.max()) + 1
        if target is not None and self.n_clusters_ != target:
            logger.info(
                "Leiden: %d clusters at resolution %.4g, the closest to target_clusters=%d found "
                "(the graph has %d connected components, which are never merged)",
                self.n_clusters_,
                self.resolution_,
                target,
                fewest,
            )
        logger.info("Leiden: %d clusters on %d rows, %d edges", self.n_clusters_, n, len(weights))
        return self

    def _check_graph(self, graph: KnnResult, n: int, k: int) -> KnnResult:
        if not isinstance(graph, KnnResult):
            raise ConfigurationError(f"graph must be a KnnResult, got {type(graph).__name__}.")
        if len(graph) != n or graph.metric != self.metric:
            raise ConfigurationError(
                f"graph holds {len(graph)} rows in metric {graph.metric!r}, but X has {n} rows and "
                f"metric={self.metric!r}; pass the kNN graph of X in that metric."
            )
        if graph.k < k:
            raise ConfigurationError(
                f"graph has {graph.k} neighbours per row but n_neighbors={k}; use n_neighbors <= {graph.k}."
            )
        return graph.head(k) if graph.k > k else graph
