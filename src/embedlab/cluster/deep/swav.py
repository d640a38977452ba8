"""SwAV: swapped prediction of optimal-transport codes against learnt prototypes, on frozen embeddings."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import numpy as np
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int, check_positive
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster._kmeans import ClusterMetric, KMeans
from embedlab.cluster.deep._base import DeepClusterMixin, mine_neighbours
from embedlab.cluster.deep._torch import apply_in_batches, batches, mlp, require_torch, seeded_torch
from embedlab.cluster.deep.sinkhorn import knn_affinity, partial_sinkhorn, progressive_mass, semantic_sinkhorn, sinkhorn

if TYPE_CHECKING:
    import torch

__all__ = ["SwAV"]

logger = logging.getLogger(__name__)

Codes = Literal["sinkhorn", "p2ot", "sp2ot"]
#: Transported mass of the partial codes at the first epoch; it grows linearly to 1 (P2OT's curriculum).
_START_MASS = 0.1
#: Scaling iterations of the partial codes, whose relaxed marginal converges more slowly than the balanced one: on
#: a batch of 256 the transported mass is then within 25% of its target at 0.1 and within 1% from 0.5 on.
_PARTIAL_ITER = 100


class SwAV(DeepClusterMixin):
    """SwAV's swapped prediction on frozen embeddings, with balanced, partial (P2OT) or semantic (SP2OT) codes.

    A projection MLP ``d - hidden_dim - projection_dim`` maps each row to the unit sphere, where ``n_clusters``
    unit prototypes score it by cosine. The two views of a row are the row and one of its ``n_neighbors``
    nearest neighbours (redrawn every epoch: frozen embeddings have no image augmentations). For each batch
    the scores of each view are turned into codes by entropic optimal transport, without gradients, and each
    view predicts the *other* view's codes::

        loss = - 1/2 sum_c (q_2(c) log p_1(c) + q_1(c) log p_2(c)),   p_v = softmax(z_v C^T / temperature)

    ``codes`` chooses the transport problem:

    - ``"sinkhorn"`` (SwAV): clusters of equal size in every batch, ``sinkhorn_iter`` iterations at
      ``epsilon`` (:func:`sinkhorn`);
    - ``"p2ot"`` (Zhang et al. 2024): a KL-relaxed cluster marginal and a transported mass growing from 0.1
      to 1 over the epochs, the least confident rows left out (:func:`partial_sinkhorn` of the cost
      ``-log p`` of the predictions, as in P2OT; each row's loss weighted by its transported share);
    - ``"sp2ot"``: P2OT plus the semantic term pulling each row's code towards those of its
      ``semantic_neighbors`` nearest rows of the batch, by cosine of the frozen inputs
      (:func:`semantic_sinkhorn`, weight ``semantic_weight``).

    The prototypes start at the spherical k-means centres of the initial projections (``prototype_init``), are
    renormalised after every step and are frozen for the first epoch (as in SwAV). Predictions
    are the softmax of the scores; ``labels_`` their argmax.

    Parameters
    ----------
    n_clusters : int, default=10
        Prototypes, one per cluster.
    n_neighbors : int, default=20
        Neighbours the second view is drawn from.
    metric : {"cosine", "l2"}, default="cosine"
        Of the neighbour search; with cosine the network also sees unit-normalised rows.
    hidden_dim : int, default=512
    projection_dim : int, default=128
        SwAV's projection head (2048-128 on ResNet-50 features; smaller here for CPUs).
    epochs : int, default=20
    batch_size : int, default=256
    learning_rate : float, default=1e-3
        Of Adam.
    weight_decay : float, default=1e-6
        SwAV's.
    temperature : float, default=0.1
        Of the predictions (SwAV's 0.1).
    epsilon : float or None, default=None
        Entropic regularisation of the codes; None takes the paper's: SwAV's 0.05 on the scores for
        ``"sinkhorn"``, P2OT's 0.1 on the cost ``-log p`` for the partial codes.
    sinkhorn_iter : int, default=3
        Scaling iterations of the balanced codes (SwAV's 3); the partial codes run 100.
    codes : {"sinkhorn", "p2ot", "sp2ot"}, default="sinkhorn"
    marginal_weight : float, default=1.0
        Weight of the KL penalty on the cluster marginal of the partial codes.
    semantic_weight : float, default=1.0
        Weight of the semantic term of ``codes="sp2ot"``.
    semantic_neighbors : int, default=10
        In-batch neighbours of the semantic graph.
    prototype_init : {"kmeans", "random"}, default="kmeans"
        Start the prototypes at the spherical k-means centres of the initial projections, or at random unit
        vectors (SwAV). From random prototypes the partial codes, which do not force clusters apart, can keep
        two groups under one prototype; k-means' start avoids that at the cost of one k-means fit.
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    confidence_ : ndarray of shape (n,), float32
    neighbors_ : ndarray of shape (n, n_neighbors), int64
    network_ : torch.nn.ModuleDict
        ``"projection"`` (the MLP) and ``"prototypes"`` (a bias-free linear layer of unit rows).
    history_ : ndarray of shape (epochs,)
        Mean swapped-prediction loss of each epoch.
    n_iter_ : int
    n_features_in_ : int

    References
    ----------
    Caron, Misra, Mairal, Goyal, Bojanowski and Joulin (2020), "Unsupervised learning of visual features by
    contrasting cluster assignments", NeurIPS (SwAV).
    Zhang, Ren and He (2024), "P2OT: Progressive partial optimal transport for deep imbalanced clustering",
    ICLR.
    Zhang, Ren and He (2024), "SP2OT: Semantic-regularized progressive partial optimal transport for
    imbalanced clustering", arXiv:2404.03446.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(3, 8) * 5, 60, axis=0) + rng.normal(size=(180, 8))
    >>> swav = SwAV(3, n_neighbors=5, hidden_dim=32, projection_dim=16, epochs=15, batch_size=60,
    ...             learning_rate=1e-2, random_state=0).fit(X)
    >>> sorted(np.bincount(swav.labels_).tolist())
    [60, 60, 60]
    """

    def __init__(
        self,
        n_clusters: int = 10,
        *,
        n_neighbors: int = 20,
        metric: ClusterMetric = "cosine",
        hidden_dim: int = 512,
        projection_dim: int = 128,
        epochs: int = 20,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-6,
        temperature: float = 0.1,
        epsilon: float | None = None,
        sinkhorn_iter: int = 3,
        codes: Codes = "sinkhorn",
        marginal_weight: float = 1.0,
        semantic_weight: float = 1.0,
        semantic_neighbors: int = 10,
        prototype_init: Literal["kmeans", "random"] = "kmeans",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.hidden_dim = hidden_dim
        self.projection_dim = projection_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.epsilon = epsilon
        self.sinkhorn_iter = sinkhorn_iter
        self.codes = codes
        self.marginal_weight = marginal_weight
        self.semantic_weight = semantic_weight
        self.semantic_neighbors = semantic_neighbors
        self.prototype_init = prototype_init
        self.random_state = random_state

    @property
    def _input_metric(self) -> str:
        return self.metric

    def _check_params(self) -> None:
        check_choice(self.metric, "metric", ("cosine", "l2"))
        check_choice(self.codes, "codes", ("sinkhorn", "p2ot", "sp2ot"))
        check_choice(self.prototype_init, "prototype_init", ("kmeans", "random"))
        for name in ("hidden_dim", "projection_dim", "epochs", "batch_size", "sinkhorn_iter", "semantic_neighbors"):
            check_int(getattr(self, name), name)
        for name in ("learning_rate", "temperature", "marginal_weight"):
            check_positive(getattr(self, name), name)
        if self.epsilon is not None:
            check_positive(self.epsilon, "epsilon")
        for name in ("weight_decay", "semantic_weight"):
            if getattr(self, name) != 0:
                check_positive(getattr(self, name), name)

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> SwAV:
        """Mine neighbours and train the projection and the prototypes; ``progress`` gets one step per epoch.

        Raises
        ------
        EmbeddingDataError
            On NaN/Inf rows (or zero rows under cosine).
        ConfigurationError
            On bad parameters, ``n_clusters`` larger than the number of rows or ``n_neighbors`` not below it.
        MissingDependencyError
            When torch is not installed.
        """
        self._check_params()
        rows = self._fit_rows(X)
        torch = require_torch("SwAV")
        rng = check_random_state(self.random_state)
        self.neighbors_ = mine_neighbours(rows, self.n_neighbors, self.metric, rng)
        with seeded_torch(rng):
            self.network_ = torch.nn.ModuleDict(
                {
                    "projection": mlp([rows.shape[1], self.hidden_dim, self.projection_dim]),
                    "prototypes": torch.nn.Linear(self.projection_dim, self.n_clusters, bias=False),
                }
            )
        if self.prototype_init == "kmeans":
            self._kmeans_prototypes(rows, rng)
        self._normalise_prototypes()
        with progress.task("SwAV: projection and prototypes", self.epochs) as advance:
            self.history_ = self._train(rows, rng, advance)
        self.n_iter_ = self.epochs
        self._set_assignments(self._proba(rows))
        logger.info("SwAV (%s codes): final loss %.4f", self.codes, self.history_[-1])
        return self

    def _kmeans_prototypes(self, rows: np.ndarray, rng: np.random.RandomState) -> None:
        """Prototypes at the spherical k-means centres of the rows' initial projections."""
        import torch

        projected = apply_in_batches(self.network_["projection"], rows)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        centres = KMeans(self.n_clusters, metric="cosine", random_state=seed).fit(projected).cluster_centers_
        with torch.no_grad():
            self.network_["prototypes"].weight.copy_(torch.from_numpy(np.ascontiguousarray(centres)))

    def _normalise_prototypes(self) -> None:
        import torch

        with torch.no_grad():
            weight = self.network_["prototypes"].weight
            weight.copy_(torch.nn.functional.normalize(weight, dim=1))

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        """Cosine of each row's projection to each prototype, shape (batch, n_clusters)."""
        import torch

        return self.network_["prototypes"](torch.nn.functional.normalize(self.network_["projection"](x), dim=1))

    def _epsilon(self) -> float:
        """The entropic regularisation of the codes: given, or the paper's default for ``codes``."""
        if self.epsilon is not None:
            return float(self.epsilon)
        return 0.05 if self.codes == "sinkhorn" else 0.1

    def _codes(self, scores: torch.Tensor, inputs: torch.Tensor, epoch: int) -> torch.Tensor:
        """The transport plan of one view's scores (rows summing to each row's transported share), float32."""
        if self.codes == "sinkhorn":
            return sinkhorn(scores, n_iter=self.sinkhorn_iter, epsilon=self._epsilon()).float()
        log_p = (scores.double() / self.temperature).log_softmax(dim=1)
        options = {
            "mass": progressive_mass(epoch, self.epochs, start=_START_MASS),
            "marginal_weight": self.marginal_weight,
            "n_iter": _PARTIAL_ITER,
            "epsilon": self._epsilon(),
        }
        if self.codes == "p2ot" or len(inputs) < 2:
            return partial_sinkhorn(log_p, **options).float()
        affinity = knn_affinity(_batch_neighbours(inputs, self.semantic_neighbors))
        return semantic_sinkhorn(log_p, affinity, semantic_weight=self.semantic_weight, **options).float()

    def _train(self, rows: np.ndarray, rng: np.random.RandomState, advance: Advance) -> np.ndarray:
        """The swapped-prediction epochs; returns the mean loss of each."""
        import torch

        optimiser = torch.optim.Adam(self.network_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        data = torch.from_numpy(rows)
        history = np.zeros(self.epochs)
        for epoch in range(self.epochs):
            self.network_["prototypes"].weight.requires_grad_(epoch > 0)
            for anchors in batches(len(rows), self.batch_size, rng):
                partners = self.neighbors_[anchors, rng.randint(self.neighbors_.shape[1], size=len(anchors))]
                views = (data[anchors], data[partners])
                scores = [self._scores(view) for view in views]
                with torch.no_grad():
                    codes = [self._codes(s.detach(), view, epoch) for s, view in zip(scores, views, strict=True)]
                log_p = [(s / self.temperature).log_softmax(dim=1) for s in scores]
                loss = -0.5 * ((codes[1] * log_p[0]).sum(dim=1) + (codes[0] * log_p[1]).sum(dim=1)).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                self._normalise_prototypes()
                history[epoch] += loss.item() * len(anchors) / len(rows)
            advance(1)
        return history

    def _proba(self, rows: np.ndarray) -> np.ndarray:
        return apply_in_batches(lambda x: (self._scores(x) / self.temperature).softmax(dim=1), rows)


def _batch_neighbours(inputs: torch.Tensor, k: int) -> np.ndarray:
    """Each batch row's ``k`` nearest other rows by cosine (fewer in a batch of at most ``k`` rows)."""
    import torch

    unit = torch.nn.functional.normalize(inputs, dim=1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-torch.inf)
    return similarity.topk(min(k, len(inputs) - 1), dim=1).indices.numpy()
