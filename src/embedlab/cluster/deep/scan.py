"""SCAN: train a classification head on frozen embeddings so that each point agrees with its nearest neighbours."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import numpy as np
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int, check_positive
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster._kmeans import ClusterMetric
from embedlab.cluster.deep._base import DeepClusterMixin, mine_neighbours
from embedlab.cluster.deep._torch import (
    apply_in_batches,
    batches,
    head_stack,
    heads_forward,
    require_torch,
    seeded_torch,
    select_head,
)
from embedlab.cluster.deep.sinkhorn import knn_affinity, partial_sinkhorn, progressive_mass, semantic_sinkhorn, sinkhorn

if TYPE_CHECKING:
    import torch

__all__ = ["SCAN"]

logger = logging.getLogger(__name__)

Balancing = Literal["sinkhorn", "partial", "semantic"]
#: Floor of the mean prediction inside the entropy term (SCAN's code uses the same 1e-8).
_ENTROPY_FLOOR = 1e-8
#: Scaling iterations of the pseudo-labels of the balanced self-labelling step, computed once per epoch.
_SINKHORN_ITER = 50
#: Transported mass at the first self-labelling epoch with ``balanced="partial"`` or "semantic"; it grows linearly to 1.
_PARTIAL_START_MASS = 0.1


def _scan_losses(log_p: torch.Tensor, log_p_neighbours: torch.Tensor, entropy_weight: float) -> torch.Tensor:
    """SCAN loss of each head from log-probabilities of shape (heads, batch, k): one value per head.

    ``-mean log <p_i, p_j>`` over the (anchor, neighbour) pairs plus ``entropy_weight`` times the negative
    entropy of the mean prediction of the anchors.
    """
    consistency = -(log_p + log_p_neighbours).logsumexp(dim=2).mean(dim=1)
    mean_p = log_p.exp().mean(dim=1)
    negative_entropy = (mean_p * mean_p.clamp_min(_ENTROPY_FLOOR).log()).sum(dim=1)
    return consistency + entropy_weight * negative_entropy


def _class_balanced_weights(targets: np.ndarray, confident: np.ndarray, n_clusters: int) -> np.ndarray:
    """Weight n_confident / count(class) for confident rows, 0 for the others (SCAN's class balancing)."""
    counts = np.bincount(targets[confident], minlength=n_clusters)
    weights = confident.sum() / np.maximum(counts, 1)
    return np.where(confident, weights[targets], 0.0).astype(np.float32)


class SCAN(DeepClusterMixin):
    """SCAN clustering head on frozen embeddings: neighbours should share a cluster, clusters should be used.

    1. The ``n_neighbors`` nearest neighbours of each row are mined with embedlab's kNN engine.
    2. ``n_heads`` heads (linear, or a one-hidden-layer MLP) with a softmax over ``n_clusters`` are trained
       with the SCAN loss: ``-mean log <p_i, p_j>`` over pairs of a row and one of its neighbours drawn at
       random each epoch, plus ``entropy_weight`` times the negative entropy of the mean prediction (which
       keeps all clusters in use). The head of lowest SCAN loss over all neighbour pairs is kept.
    3. Optionally (``selflabel_epochs > 0``) the kept head is fine-tuned by self-labelling: cross-entropy on
       its own predictions for rows predicted with probability above ``confidence_threshold``, each class
       weighted by the inverse of its share of those rows. With ``balanced`` the targets are instead
       Sinkhorn pseudo-labels of all rows (see :func:`sinkhorn`, :func:`partial_sinkhorn`,
       :func:`semantic_sinkhorn`).

    The paper trains the backbone too and enforces consistency between augmentations of an image; on frozen
    embeddings there are no augmentations, so the consistency is over neighbours only and self-labelling
    trains on the same inputs it labels (the targets are refreshed once per epoch).

    Parameters
    ----------
    n_clusters : int, default=10
    n_neighbors : int, default=20
        Neighbours mined per row (the paper's 20).
    metric : {"cosine", "l2"}, default="cosine"
        Of the neighbour search; with cosine the heads also see unit-normalised rows.
    head : {"linear", "mlp"}, default="linear"
    hidden_dim : int, default=512
        Width of the MLP head's hidden layer.
    n_heads : int, default=10
        Heads trained side by side (the paper's 10).
    epochs : int, default=50
    batch_size : int, default=128
    learning_rate : float, default=1e-4
        Adam's step size (the paper's); on frozen embeddings larger steps (1e-3) converge in fewer epochs.
    weight_decay : float, default=1e-4
    entropy_weight : float, default=5.0
        The paper's lambda.
    selflabel_epochs : int, default=0
        Self-labelling epochs (0: none; the paper runs 200 with augmentations).
    confidence_threshold : float, default=0.99
        Rows above it are self-labelled (``balanced=None`` only).
    balanced : {"sinkhorn", "partial", "semantic"} or None, default=None
        Self-labelling targets: None, confident predictions (SCAN); ``"sinkhorn"``, balanced Sinkhorn
        pseudo-labels of all rows (SeLa); ``"partial"``, P2OT pseudo-labels whose transported mass grows
        linearly from 0.1 to 1 over the epochs, each row weighted by its transported share; ``"semantic"``,
        the same with SP2OT's pull of the mined neighbours towards the same clusters (weight 1, 3 steps).
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    confidence_ : ndarray of shape (n,), float32
        Largest predicted probability of each row.
    neighbors_ : ndarray of shape (n, n_neighbors), int64
        The mined neighbours.
    head_ : torch.nn.ParameterDict
        The kept head's weights (a one-head stack, see ``_torch.head_stack``).
    best_head_ : int
    head_losses_ : ndarray of shape (n_heads,)
        SCAN loss of each head over all neighbour pairs after training.
    history_ : ndarray of shape (epochs,)
        Mean training SCAN loss of the kept head per epoch.
    selflabel_history_ : ndarray of shape (selflabel epochs run,)
        Mean self-labelling cross-entropy per epoch.
    n_iter_ : int
        Epochs run, both phases.
    n_features_in_ : int

    References
    ----------
    Van Gansbeke, Vandenhende, Georgoulis, Proesmans and Van Gool (2020), "SCAN: learning to classify images
    without labels", ECCV.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(3, 8) * 5, 60, axis=0) + rng.normal(size=(180, 8))
    >>> scan = SCAN(3, n_neighbors=5, n_heads=2, epochs=10, batch_size=64, learning_rate=5e-2, random_state=0)
    >>> scan = scan.fit(X)
    >>> sorted(np.bincount(scan.labels_).tolist())
    [60, 60, 60]
    """

    def __init__(
        self,
        n_clusters: int = 10,
        *,
        n_neighbors: int = 20,
        metric: ClusterMetric = "cosine",
        head: Literal["linear", "mlp"] = "linear",
        hidden_dim: int = 512,
        n_heads: int = 10,
        epochs: int = 50,
        batch_size: int = 128,
        learning_rate: float = 1e-4,
        weight_decay: float = 1e-4,
        entropy_weight: float = 5.0,
        selflabel_epochs: int = 0,
        confidence_threshold: float = 0.99,
        balanced: Balancing | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.head = head
        self.hidden_dim = hidden_dim
        self.n_heads = n_heads
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.entropy_weight = entropy_weight
        self.selflabel_epochs = selflabel_epochs
        self.confidence_threshold = confidence_threshold
        self.balanced = balanced
        self.random_state = random_state

    @property
    def _input_metric(self) -> str:
        return self.metric

    def _check_params(self) -> None:
        check_choice(self.metric, "metric", ("cosine", "l2"))
        check_choice(self.head, "head", ("linear", "mlp"))
        check_choice(self.balanced, "balanced", ("sinkhorn", "partial", "semantic", None))
        for name in ("hidden_dim", "n_heads", "batch_size"):
            check_int(getattr(self, name), name)
        for name in ("epochs", "selflabel_epochs"):
            check_int(getattr(self, name), name, minimum=0)
        check_positive(self.learning_rate, "learning_rate")
        check_positive(self.confidence_threshold, "confidence_threshold", upper=1.0)
        for name in ("weight_decay", "entropy_weight"):
            if getattr(self, name) != 0:
                check_positive(getattr(self, name), name)

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> SCAN:
        """Mine neighbours, train the heads and optionally self-label; ``progress`` gets one step per epoch.

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
        require_torch("SCAN")
        rng = check_random_state(self.random_state)
        self.neighbors_ = mine_neighbours(rows, self.n_neighbors, self.metric, rng)
        widths = (
            [rows.shape[1], self.n_clusters]
            if self.head == "linear"
            else [rows.shape[1], self.hidden_dim, self.n_clusters]
        )
        with seeded_torch(rng):
            heads = head_stack(self.n_heads, widths)
        with progress.task("SCAN: clustering heads", self.epochs) as advance:
            history = self._train_heads(heads, rows, rng, advance)
        self.head_losses_ = np.array([self._evaluate(select_head(heads, h), rows) for h in range(self.n_heads)])
        self.best_head_ = int(np.argmin(self.head_losses_))
        self.head_ = select_head(heads, self.best_head_)
        self.history_ = history[:, self.best_head_]
        with progress.task("SCAN: self-labelling", self.selflabel_epochs) as advance:
            self.selflabel_history_ = self._self_label(rows, rng, advance)
        self.n_iter_ = len(self.history_) + len(self.selflabel_history_)
        self._set_assignments(self._proba(rows))
        logger.info("SCAN: kept head %d of %d, SCAN loss %.4f", self.best_head_, self.n_heads, self.head_losses_.min())
        return self

    def _train_heads(
        self, heads: torch.nn.ParameterDict, rows: np.ndarray, rng: np.random.RandomState, advance: Advance
    ) -> np.ndarray:
        """The SCAN phase; returns the mean loss of each head per epoch, shape (epochs, n_heads)."""
        import torch

        optimiser = torch.optim.Adam(heads.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        data = torch.from_numpy(rows)
        history = np.zeros((self.epochs, self.n_heads))
        for epoch in range(self.epochs):
            for anchors in batches(len(rows), self.batch_size, rng):
                picked = self.neighbors_[anchors, rng.randint(self.neighbors_.shape[1], size=len(anchors))]
                log_p = heads_forward(heads, data[anchors]).log_softmax(dim=2)
                log_p_neighbours = heads_forward(heads, data[picked]).log_softmax(dim=2)
                losses = _scan_losses(log_p, log_p_neighbours, self.entropy_weight)
                optimiser.zero_grad()
                losses.sum().backward()
                optimiser.step()
                history[epoch] += losses.detach().numpy() * len(anchors) / len(rows)
            advance(1)
        return history

    def _evaluate(self, head: torch.nn.ParameterDict, rows: np.ndarray) -> float:
        """SCAN loss of one head over every (row, mined neighbour) pair, the entropy over all rows."""
        import torch

        log_p = torch.from_numpy(apply_in_batches(lambda x: heads_forward(head, x)[0].log_softmax(dim=1), rows))
        losses = [
            _scan_losses(log_p[None], log_p[torch.from_numpy(column)][None], self.entropy_weight)
            for column in self.neighbors_.T
        ]
        return float(torch.cat(losses).mean())

    def _targets(self, log_p: torch.Tensor, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Self-labelling targets of all rows and their weights in the cross-entropy."""
        if self.balanced == "sinkhorn":
            plan = sinkhorn(log_p, n_iter=_SINKHORN_ITER)
        elif self.balanced == "partial":
            mass = progressive_mass(epoch, self.selflabel_epochs, start=_PARTIAL_START_MASS)
            plan = partial_sinkhorn(log_p, mass=mass, n_iter=_SINKHORN_ITER)
        elif self.balanced == "semantic":
            mass = progressive_mass(epoch, self.selflabel_epochs, start=_PARTIAL_START_MASS)
            plan = semantic_sinkhorn(log_p, knn_affinity(self.neighbors_), mass=mass, n_iter=_SINKHORN_ITER)
        else:
            probabilities = log_p.exp().numpy()
            targets = probabilities.argmax(axis=1)
            confident = probabilities.max(axis=1) > self.confidence_threshold
            return targets, _class_balanced_weights(targets, confident, self.n_clusters)
        return plan.argmax(dim=1).numpy(), plan.sum(dim=1).numpy().astype(np.float32)

    def _self_label(self, rows: np.ndarray, rng: np.random.RandomState, advance: Advance) -> np.ndarray:
        """Fine-tune the kept head on its own (or Sinkhorn) labels; returns the mean loss of each epoch run."""
        import torch

        optimiser = torch.optim.Adam(self.head_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        data = torch.from_numpy(rows)
        history: list[float] = []
        for epoch in range(self.selflabel_epochs):
            log_p = torch.from_numpy(apply_in_batches(self._log_proba, rows))
            targets, weights = (torch.from_numpy(array) for array in self._targets(log_p, epoch))
            if not weights.any():
                logger.info(
                    "SCAN: no row is predicted with probability > %g; self-labelling stops", self.confidence_threshold
                )
                break
            total = 0.0
            for batch in batches(len(rows), self.batch_size, rng):
                batch_weights = weights[batch]
                if not batch_weights.any():
                    continue
                cross_entropy = torch.nn.functional.cross_entropy(
                    heads_forward(self.head_, data[batch])[0], targets[batch], reduction="none"
                )
                loss = (batch_weights * cross_entropy).sum() / batch_weights.sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * float(batch_weights.sum())
            history.append(total / float(weights.sum()))
            advance(1)
        return np.asarray(history)

    def _log_proba(self, x: torch.Tensor) -> torch.Tensor:
        return heads_forward(self.head_, x)[0].log_softmax(dim=1)

    def _proba(self, rows: np.ndarray) -> np.ndarray:
        return np.exp(apply_in_batches(self._log_proba, rows))
