"""ClAM: clustering with a dense associative memory whose memories are the prototypes, trained through its
unrolled attractor dynamics to complete masked rows."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int, check_positive
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster._kmeans import ClusterMetric, KMeans
from embedlab.cluster.deep._base import DeepClusterMixin
from embedlab.cluster.deep._torch import apply_in_batches, batches, require_torch

if TYPE_CHECKING:
    import torch

__all__ = ["ClAM", "attractor", "memory_attention"]

logger = logging.getLogger(__name__)


def memory_attention(x: torch.Tensor, memories: torch.Tensor, beta: float) -> torch.Tensor:
    """``softmax_mu(-beta / 2 ||rho_mu - x||^2)`` of each state, shape (batch, n_memories)."""
    sq_distances = (x * x).sum(dim=1, keepdim=True) - 2.0 * x @ memories.T + (memories * memories).sum(dim=1)
    return (-0.5 * beta * sq_distances).softmax(dim=1)


def attractor(
    x: torch.Tensor, memories: torch.Tensor, beta: float, step_size: float, n_steps: int, free: torch.Tensor
) -> torch.Tensor:
    """``n_steps`` Euler steps of the memory's gradient flow from ``x``, moving only where ``free`` is 1.

    The energy ``E(x) = -1/beta log sum_mu exp(-beta / 2 ||rho_mu - x||^2)`` decreases along
    ``-grad E(x) = sum_mu softmax_mu(-beta / 2 ||rho_mu - x||^2) (rho_mu - x)``; a step adds ``step_size``
    times it (the paper's dt / tau).
    """
    for _ in range(n_steps):
        x = x + step_size * free * (memory_attention(x, memories, beta) @ memories - x)
    return x


class ClAM(DeepClusterMixin):
    """ClAM: clustering by the basins of attraction of a dense associative memory (modern Hopfield network).

    The ``n_clusters`` memories ``rho_mu`` are the prototypes. A state ``x`` descends the energy
    ``E(x) = -1/beta log sum_mu exp(-beta / 2 ||rho_mu - x||^2)`` by ``n_steps`` Euler steps of size
    ``step_size`` (see :func:`attractor`); a row's cluster is the memory nearest the state it reaches, the
    memory whose basin it lies in. As ``beta`` grows every state falls straight to its nearest memory and the
    clusters become k-means' Voronoi cells; a finite ``beta`` makes the assignment, and hence the whole
    clustering, differentiable in the memories.

    Training is the paper's self-supervised pattern completion: in each row a share ``mask_fraction`` of the
    coordinates is replaced by the training mean of that coordinate; only those coordinates evolve under the
    dynamics (the others stay clamped to the row), and the memories minimise, by Adam through the unrolled
    steps, the squared error of the completed coordinates::

        L = mean_i || m_i * (x_i - x_i^T) ||^2

    with ``m_i`` the row's mask and ``x_i^T`` its state after the dynamics. ``predict_proba`` is the memory's
    attention ``softmax_mu(-beta / 2 ||rho_mu - x^T||^2)`` at the state reached from the whole row.

    Deviations from the authors' code, for CPU budgets and embeddings: the memories start at k-means' centres
    (``n_init`` restarts, spherical under cosine; the authors draw them from a Gaussian or by k-means++), so
    training starts from k-means' partition; batches hold 256 rows (their 8) and the learning rate stays
    constant (theirs decays on plateaus, keeping the memories of the lowest-loss epoch). Masked coordinates
    take the training mean (the authors also try the minimum and the maximum), are distinct within a row and
    are drawn afresh for each batch; the authors' code also masks the same coordinates in a whole batch every
    third epoch. ``beta`` is sized for unit rows (squared distances in [0, 4]); the authors standardise
    features, whose larger distances call for a smaller ``beta``.

    Parameters
    ----------
    n_clusters : int, default=10
        Memories.
    metric : {"cosine", "l2"}, default="cosine"
        "cosine" clusters the unit-normalised rows; "l2" the rows as given (scale ``beta`` to their squared
        distances).
    beta : float, default=50.0
        Inverse temperature of the memory's attention.
    n_steps : int, default=10
        Euler steps of the dynamics (the authors' 1 / step_size).
    step_size : float, default=0.1
        The paper's dt / tau (the authors' 0.1).
    mask_fraction : float, default=0.2
        Share of each row's coordinates masked for training (the authors' 0.2).
    epochs : int, default=20
    batch_size : int, default=256
    learning_rate : float, default=1e-3
        Adam's step size (the authors search 1e-3, 1e-2, 1e-1).
    n_init : int, default=1
        k-means restarts for the initial memories.
    random_state : int, RandomState or None, default=None
        Seeds k-means, the batches and the masks.

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    confidence_ : ndarray of shape (n,), float32
        Largest attention weight of each row's final state.
    cluster_centers_ : ndarray of shape (n_clusters, d), float32
        The memories.
    history_ : ndarray of shape (epochs,)
        Mean completion loss per epoch.
    n_iter_ : int
    n_features_in_ : int

    References
    ----------
    Saha, Krotov, Zaki and Ram (2023), "End-to-end differentiable clustering with associative memories", ICML.
    Krotov and Hopfield (2016), "Dense associative memory for pattern recognition", NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(3, 8) * 5, 60, axis=0) + rng.normal(size=(180, 8))
    >>> clam = ClAM(3, epochs=5, batch_size=32, random_state=0).fit(X)
    >>> sorted(np.bincount(clam.labels_).tolist())
    [60, 60, 60]
    """

    def __init__(
        self,
        n_clusters: int = 10,
        *,
        metric: ClusterMetric = "cosine",
        beta: float = 50.0,
        n_steps: int = 10,
        step_size: float = 0.1,
        mask_fraction: float = 0.2,
        epochs: int = 20,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        n_init: int = 1,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.metric = metric
        self.beta = beta
        self.n_steps = n_steps
        self.step_size = step_size
        self.mask_fraction = mask_fraction
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_init = n_init
        self.random_state = random_state

    @property
    def _input_metric(self) -> str:
        return self.metric

    def _check_params(self) -> None:
        check_choice(self.metric, "metric", ("cosine", "l2"))
        for name in ("n_steps", "epochs", "batch_size", "n_init"):
            check_int(getattr(self, name), name)
        for name in ("beta", "learning_rate"):
            check_positive(getattr(self, name), name)
        for name in ("step_size", "mask_fraction"):
            check_positive(getattr(self, name), name, upper=1.0)

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> ClAM:
        """Start the memories at k-means' centres of ``X`` and train them to complete masked rows; one progress
        step per epoch.

        Raises
        ------
        EmbeddingDataError
            On NaN/Inf rows (or zero rows under cosine).
        ConfigurationError
            On bad parameters or ``n_clusters`` larger than the number of rows.
        MissingDependencyError
            When torch is not installed.
        """
        self._check_params()
        rows = self._fit_rows(X)
        torch = require_torch("ClAM")
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        kmeans = KMeans(self.n_clusters, metric=self.metric, n_init=self.n_init, random_state=seed).fit(rows)
        memories = torch.nn.Parameter(torch.from_numpy(kmeans.cluster_centers_.copy()))
        with progress.task("ClAM: memories", self.epochs) as advance:
            self.history_ = self._train(memories, rows, rng, advance)
        self.cluster_centers_ = memories.detach().numpy().copy()
        self.n_iter_ = len(self.history_)
        self._set_assignments(self._proba(rows))
        logger.info(
            "ClAM: %d memories, completion loss %.4g after %d epochs", self.n_clusters, self.history_[-1], self.n_iter_
        )
        return self

    def _masks(self, n_rows: int, dim: int, rng: np.random.RandomState) -> np.ndarray:
        """A float32 mask per row, 1 on ``mask_fraction`` of its coordinates (at least one), drawn at random."""
        n_masked = max(1, round(self.mask_fraction * dim))
        masked = np.argpartition(rng.random_sample((n_rows, dim)), n_masked - 1, axis=1)[:, :n_masked]
        masks = np.zeros((n_rows, dim), dtype=np.float32)
        np.put_along_axis(masks, masked, 1.0, axis=1)
        return masks

    def _train(
        self, memories: torch.nn.Parameter, rows: np.ndarray, rng: np.random.RandomState, advance: Advance
    ) -> np.ndarray:
        """Adam on the memories through the unrolled dynamics; returns the mean completion loss of each epoch."""
        import torch

        optimiser = torch.optim.Adam([memories], lr=self.learning_rate)
        data = torch.from_numpy(rows)
        fill = torch.from_numpy(rows.mean(axis=0))
        history = np.zeros(self.epochs)
        for epoch in range(self.epochs):
            for batch in batches(len(rows), self.batch_size, rng):
                x = data[batch]
                masks = torch.from_numpy(self._masks(len(batch), rows.shape[1], rng))
                probes = torch.where(masks > 0, fill, x)
                final = attractor(probes, memories, self.beta, self.step_size, self.n_steps, masks)
                loss = (masks * (final - x)).pow(2).sum(dim=1).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                history[epoch] += loss.item() * len(batch) / len(rows)
            advance(1)
        return history

    def _proba(self, rows: np.ndarray) -> np.ndarray:
        import torch

        memories = torch.from_numpy(self.cluster_centers_)
        free = torch.ones(())

        def attention(x: torch.Tensor) -> torch.Tensor:
            final = attractor(x, memories, self.beta, self.step_size, self.n_steps, free)
            return memory_attention(final, memories, self.beta)

        return apply_in_batches(attention, rows)
