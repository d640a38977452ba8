"""CPP / MLC: clustering by maximal coding rate reduction on frozen embeddings, with a learnt doubly stochastic
membership."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
from sklearn.cluster import SpectralClustering
from sklearn.utils import check_random_state

from embedlab._checks import check_int, check_positive
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster.deep._base import DeepClusterMixin
from embedlab.cluster.deep._torch import apply_in_batches, batches, require_torch, seeded_torch

if TYPE_CHECKING:
    import torch

__all__ = ["CPP", "coding_rate", "membership"]

logger = logging.getLogger(__name__)

#: Share of a cluster's squared feature norms its subspace keeps (the nearest-subspace assignment).
_SUBSPACE_ENERGY = 0.9


def coding_rate(Z: torch.Tensor, eps: float) -> torch.Tensor:
    """``R(Z) = 1/2 logdet(I + p / (m eps) Z^T Z)`` of m features of dimension p (rows of ``Z``)."""
    import torch

    m, p = Z.shape
    gram = Z.T @ Z
    return 0.5 * torch.logdet(torch.eye(p, dtype=Z.dtype) + (p / (m * eps)) * gram)


def compressed_coding_rate(Z: torch.Tensor, Pi: torch.Tensor, eps: float) -> torch.Tensor:
    """``R_c(Z, Pi) = sum_i tr(Pi_i) / (2m) logdet(I + p / (tr(Pi_i) eps) Z^T diag(Pi_i) Z)``.

    ``Pi`` is an (m, m) membership: row i weighs the features that share a group with feature i.
    """
    import torch

    m, p = Z.shape
    weights = Pi.sum(dim=1) + 1e-8
    covariances = torch.einsum("ij,jp,jq->ipq", Pi, Z, Z)
    scale = (p / (weights * eps))[:, None, None]
    logdets = torch.logdet(torch.eye(p, dtype=Z.dtype) + scale * covariances)
    return (weights * logdets).sum() / (2 * m)


def membership(C: torch.Tensor, eta: float, n_iter: int) -> torch.Tensor:
    """Doubly stochastic membership ``m Pi`` of rows of unit features ``C``: entropic transport of ``|C C^T|``.

    Log-domain Sinkhorn with uniform marginals ``1/m`` at temperature ``eta``; differentiable through the row
    potentials (the column potentials are detached, as in the authors' code).
    """
    import torch

    m = C.shape[0]
    scores = (C @ C.T).abs() / eta
    log_marginal = -math.log(m)
    u = torch.zeros(m, dtype=C.dtype)
    v = torch.zeros(m, dtype=C.dtype)
    for i in range(n_iter):
        if i % 2 == 0:
            u = log_marginal - torch.logsumexp(scores + v[None, :], dim=1)
        else:
            v = (log_marginal - torch.logsumexp(scores + u[:, None], dim=0)).detach()
    return m * torch.exp(scores + u[:, None] + v[None, :])


class CPP(DeepClusterMixin):
    """CPP clustering on frozen embeddings: features and a membership learnt by maximal coding rate reduction.

    An MLP ``d - hidden_dim - hidden_dim`` (batch norm and ReLU, as in the paper) feeds two linear heads to
    unit vectors of dimension ``z_dim``: the features Z and the cluster features C. On each batch of m rows
    the membership ``Pi`` is the doubly stochastic matrix of entropic optimal transport between the rows
    under the affinity ``|C C^T|`` (temperature ``eta``, ``sinkhorn_iter`` iterations), and both heads
    minimise::

        - R(Z) + gamma R_c(Z, Pi) + pi_weight / 2 ||Pi||_F^2

    (MLC's objective): expand the whole batch's features, compress each row's group, and keep the membership
    from collapsing onto the identity. SGD with momentum, one learning rate for the features and one (with
    its own weight decay) for the cluster head, as in the authors' code. The features of different clusters
    become near-orthogonal subspaces.

    Clusters: spectral clustering (scikit-learn) of the membership of a seeded sample of ``spectral_sample``
    rows, as the paper clusters a batch's membership; every row then goes to the cluster whose subspace (the
    principal directions of its sampled features keeping 90% of their energy) holds most of its feature
    (nearest subspace, the classifier rate-reduction features are built for). ``predict_proba`` is a softmax
    of those captured energies at temperature ``eps``.

    Parameters
    ----------
    n_clusters : int, default=10
    hidden_dim : int, default=1024
        Width of the MLP (the paper's 4096 on GPUs).
    z_dim : int, default=64
        Dimension of Z and C (the paper's 128; the compression term costs m^2 z_dim^2 per batch).
    epochs : int, default=10
    batch_size : int, default=256
        Rows per membership (the paper's 2,000 on GPUs).
    learning_rate : float, default=3e-3
        Of the MLP and the feature head (the paper's 3e-3).
    cluster_learning_rate : float, default=2e-3
    momentum : float, default=0.9
    weight_decay : float, default=1e-4
    cluster_weight_decay : float, default=5e-3
    eps : float, default=0.1
        Distortion of the coding rates (the authors' 0.1).
    gamma : float, default=1.0
        Weight of the compression term.
    eta : float, default=0.175
        Sinkhorn temperature of the membership (the authors' 0.175).
    sinkhorn_iter : int, default=5
    pi_weight : float, default=0.05
        Weight of ``||Pi||^2 / 2`` (the authors' 0.05).
    spectral_sample : int, default=4000
        Rows whose membership is clustered spectrally.
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    confidence_ : ndarray of shape (n,), float32
    network_ : torch.nn.ModuleDict
        ``body``, ``features`` and ``clusters``.
    subspaces_ : list of ndarray
        Orthonormal bases (r_j, z_dim) of the clusters' feature subspaces.
    history_ : ndarray of shape (epochs, 3)
        Mean ``R(Z)``, ``R_c(Z, Pi)`` and loss per epoch.
    n_iter_ : int
    n_features_in_ : int

    References
    ----------
    Chu, Tong, Ding, Dai, Haeffele, Vidal and Ma (2024), "Image clustering via the principle of rate
    reduction in the age of pretrained models", ICLR.
    Ding, Tong, Chan, Dai, Ma and Haeffele (2023), "Unsupervised manifold linearizing and clustering", ICCV.
    Yu, Chan, You, Song and Ma (2020), "Learning diverse and discriminative representations via the
    principle of maximal coding rate reduction", NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(3, 16) * 4, 100, axis=0) + 0.5 * rng.normal(size=(300, 16))
    >>> cpp = CPP(3, hidden_dim=64, z_dim=16, epochs=20, batch_size=100, random_state=0).fit(X)
    >>> sorted(np.bincount(cpp.labels_, minlength=3).tolist())
    [100, 100, 100]
    """

    _input_metric = "cosine"

    def __init__(
        self,
        n_clusters: int = 10,
        *,
        hidden_dim: int = 1024,
        z_dim: int = 64,
        epochs: int = 10,
        batch_size: int = 256,
        learning_rate: float = 3e-3,
        cluster_learning_rate: float = 2e-3,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        cluster_weight_decay: float = 5e-3,
        eps: float = 0.1,
        gamma: float = 1.0,
        eta: float = 0.175,
        sinkhorn_iter: int = 5,
        pi_weight: float = 0.05,
        spectral_sample: int = 4000,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.hidden_dim = hidden_dim
        self.z_dim = z_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.cluster_learning_rate = cluster_learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.cluster_weight_decay = cluster_weight_decay
        self.eps = eps
        self.gamma = gamma
        self.eta = eta
        self.sinkhorn_iter = sinkhorn_iter
        self.pi_weight = pi_weight
        self.spectral_sample = spectral_sample
        self.random_state = random_state

    def _check_params(self) -> None:
        for name in ("hidden_dim", "z_dim", "epochs", "sinkhorn_iter"):
            check_int(getattr(self, name), name)
        check_int(self.batch_size, "batch_size", 2)
        check_int(self.spectral_sample, "spectral_sample", 2)
        for name in ("learning_rate", "cluster_learning_rate", "eps", "gamma", "eta"):
            check_positive(getattr(self, name), name)
        check_positive(self.momentum, "momentum", upper=1.0)
        for name in ("weight_decay", "cluster_weight_decay", "pi_weight"):
            if getattr(self, name) != 0:
                check_positive(getattr(self, name), name)

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> CPP:
        """Train the network, cluster a sample's membership, assign every row; one progress step per epoch.

        Raises
        ------
        EmbeddingDataError
            On NaN/Inf or zero rows.
        ConfigurationError
            On bad parameters or ``n_clusters`` larger than the number of rows.
        MissingDependencyError
            When torch is not installed.
        """
        self._check_params()
        rows = self._fit_rows(X)
        torch = require_torch("CPP")
        rng = check_random_state(self.random_state)
        with seeded_torch(rng):
            self.network_ = self._network(rows.shape[1])
        with progress.task("CPP: rate reduction", self.epochs) as advance:
            self.history_ = self._train(rows, rng, advance)
        self.n_iter_ = len(self.history_)
        self.network_.eval()
        features = self._features(rows)
        sample = np.sort(rng.choice(rows.shape[0], min(rows.shape[0], self.spectral_sample), replace=False))
        with torch.no_grad():
            clusters = apply_in_batches(lambda x: self._heads(x)[1], rows[sample])
            affinity = membership(torch.from_numpy(clusters).double(), self.eta, self.sinkhorn_iter).numpy()
        spectral = SpectralClustering(
            self.n_clusters, affinity="precomputed", random_state=int(rng.randint(np.iinfo(np.int32).max))
        )
        sample_labels = spectral.fit_predict(0.5 * (affinity + affinity.T))
        members = features[sample]
        self.subspaces_ = [_subspace(members[sample_labels == c], self.z_dim) for c in range(self.n_clusters)]
        self._set_assignments(self._subspace_proba(features))
        logger.info("CPP: %d epochs, final loss %.4f", self.n_iter_, self.history_[-1, 2])
        return self

    def _network(self, n_features: int) -> torch.nn.ModuleDict:
        import torch

        body = torch.nn.Sequential(
            torch.nn.Linear(n_features, self.hidden_dim),
            torch.nn.BatchNorm1d(self.hidden_dim),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden_dim, self.hidden_dim),
            torch.nn.ReLU(),
        )
        return torch.nn.ModuleDict(
            {
                "body": body,
                "features": torch.nn.Linear(self.hidden_dim, self.z_dim),
                "clusters": torch.nn.Linear(self.hidden_dim, self.z_dim),
            }
        )

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch.nn.functional as F

        hidden = self.network_["body"](x)
        features = F.normalize(self.network_["features"](hidden), dim=1)
        return features, F.normalize(self.network_["clusters"](hidden), dim=1)

    def _train(self, rows: np.ndarray, rng: np.random.RandomState, advance: Advance) -> np.ndarray:
        import torch

        net = self.network_
        optimiser = torch.optim.SGD(
            [
                {"params": [*net["body"].parameters(), *net["features"].parameters()]},
                {
                    "params": net["clusters"].parameters(),
                    "lr": self.cluster_learning_rate,
                    "weight_decay": self.cluster_weight_decay,
                },
            ],
            lr=self.learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )
        data = torch.from_numpy(rows)
        history = np.zeros((self.epochs, 3))
        net.train()
        for epoch in range(self.epochs):
            n_batches = 0
            for batch in batches(len(rows), self.batch_size, rng):
                if batch.size < 2:  # batch norm needs two rows
                    continue
                Z, C = self._heads(data[batch])
                Pi = membership(C, self.eta, self.sinkhorn_iter)
                expand = coding_rate(Z, self.eps)
                compress = compressed_coding_rate(Z, Pi, self.eps)
                loss = -expand + self.gamma * compress + 0.5 * self.pi_weight * Pi.pow(2).sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                history[epoch] += (expand.item(), compress.item(), loss.item())
                n_batches += 1
            history[epoch] /= max(n_batches, 1)
            advance(1)
        return history

    def _features(self, rows: np.ndarray) -> np.ndarray:
        return apply_in_batches(lambda x: self._heads(x)[0], rows)

    def _subspace_proba(self, features: np.ndarray) -> np.ndarray:
        energies = np.stack([np.sum((features @ basis.T) ** 2, axis=1) for basis in self.subspaces_], axis=1)
        logits = energies / self.eps
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return (proba / proba.sum(axis=1, keepdims=True)).astype(np.float32)

    def _proba(self, rows: np.ndarray) -> np.ndarray:
        return self._subspace_proba(self._features(rows))


def _subspace(features: np.ndarray, dim: int) -> np.ndarray:
    """Orthonormal basis of the principal directions keeping ``_SUBSPACE_ENERGY`` of the features' energy."""
    if features.shape[0] == 0:
        return np.zeros((0, dim), dtype=np.float32)
    _, singular, axes = np.linalg.svd(features.astype(np.float64), full_matrices=False)
    energy = np.cumsum(singular**2) / max(float(np.sum(singular**2)), 1e-12)
    rank = int(np.searchsorted(energy, _SUBSPACE_ENERGY)) + 1
    return axes[:rank].astype(np.float32)
