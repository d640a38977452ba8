"""TELL: k-means written as a neural network, its centres the weights of a linear layer on unit features."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils import check_random_state

from embedlab._checks import check_int, check_positive
from embedlab._progress import NULL_PROGRESS, Advance, ProgressReporter
from embedlab.cluster._kmeans import KMeans
from embedlab.cluster.deep._base import DeepClusterMixin
from embedlab.cluster.deep._torch import (
    DEC_HIDDEN_DIMS,
    apply_in_batches,
    batches,
    fit_autoencoder,
    require_torch,
    seeded_torch,
)

if TYPE_CHECKING:
    import torch

__all__ = ["TELL", "kmeans_layer_loss"]

logger = logging.getLogger(__name__)


def kmeans_layer_loss(logits: torch.Tensor) -> torch.Tensor:
    """k-means loss ``||z_i - Omega_c||^2 = 2 - 2 <Omega_c, z_i>`` of each row from the cluster layer's outputs.

    ``logits`` holds ``<Omega_j, z_i>`` for unit features and centres, shape (batch, n_clusters); ``c`` is the
    arg-max of each row, chosen without gradient, so the loss pulls only the winning centre and feature.
    """
    winners = logits.detach().argmax(dim=1, keepdim=True)
    return 2.0 - 2.0 * logits.gather(1, winners).squeeze(1)


class TELL(DeepClusterMixin):
    """TELL (interpretable neural clustering): k-means as a network trained by gradient on its own loss.

    Features ``z`` and centres ``Omega_j`` lie on the unit sphere, so ``||z - Omega_j||^2 = 2 - 2 <Omega_j, z>``
    and the nearest centre is the arg-max of a bias-free linear layer whose weights are the centres: the
    cluster layer. Each mini-batch takes a gradient step on the k-means loss of that layer::

        L_clu = mean_i ||z_i - Omega_c(i)||^2,    c(i) = argmax_j <Omega_j, z_i>

    with the assignment ``c(i)`` held fixed (no gradient), so a step moves each centre towards the batch rows
    it wins, and the centres are projected back onto the sphere after every step (as the authors' code
    renormalises the layer). With ``latent_dim=None`` (the default) the layer sits on the unit-normalised
    embeddings and training is an online spherical k-means by stochastic gradient. With an integer
    ``latent_dim`` a feature extractor is learnt as in the paper: an autoencoder ``d - hidden_dims -
    latent_dim`` whose normalised code is ``z``, trained on ``L_rec + cluster_weight / n_clusters * L_clu``
    (``L_rec`` the mean squared reconstruction error; the authors' code averages the clustering term over the
    layer's ``n_clusters`` outputs), alternating by epoch as the authors' code does: even epochs move the
    centres (the clustering loss does not reach the encoder), odd epochs move the encoder towards fixed
    centres.

    Deviations from the paper, for CPU budgets: the authors train their autoencoder and random centres from
    scratch for 3,000 epochs; here the autoencoder is pretrained for ``pretrain_epochs`` (mean squared error,
    Adam, as for DEC) and the centres start at spherical k-means' on the features (``n_init`` restarts), so no
    centre starts without rows. The centres take plain SGD steps of ``cluster_learning_rate`` (the authors'
    code rescales each centre's gradient to a fixed length and steps with Adadelta), the autoencoder Adam's.
    The autoencoder has no dropout and a linear output (the authors' ends in a sigmoid, for pixels).

    Parameters
    ----------
    n_clusters : int, default=10
    latent_dim : int, optional
        Code size of the autoencoder (the paper's 10); None (default) clusters the embeddings themselves.
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Encoder widths (the paper's); the decoder mirrors them. Used with ``latent_dim`` only.
    pretrain_epochs : int, default=10
        Autoencoder epochs before the clustering phase; 0 skips them. Used with ``latent_dim`` only.
    epochs : int, default=20
        Clustering-phase epochs.
    batch_size : int, default=256
        The authors' 256.
    learning_rate : float, default=1e-3
        Adam's step size for the autoencoder, in both phases. Used with ``latent_dim`` only.
    cluster_learning_rate : float, default=0.5
        SGD step size of the centres: a step adds ``2 p cluster_learning_rate`` times the mean of the rows a
        centre wins (a share ``p`` of the batch) to the centre before it is renormalised, about 1/45 of the
        way towards them for 45 equal clusters.
    cluster_weight : float, default=0.01
        The authors' weight of the clustering loss against the reconstruction loss in the encoder's epochs.
        Used with ``latent_dim`` only.
    temperature : float, default=0.1
        Of the soft assignments ``softmax_j(2 <Omega_j, z> / temperature)`` of ``predict_proba`` (the
        arg-max, the nearest centre, does not depend on it).
    n_init : int, default=1
        k-means restarts for the initial centres.
    random_state : int, RandomState or None, default=None
        Seeds torch's initialisation, the batches and k-means.

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    confidence_ : ndarray of shape (n,), float32
        Largest soft assignment of each row.
    cluster_centers_ : ndarray of shape (n_clusters, latent_dim or d), float32
        The unit centres, the cluster layer's weights (in the embeddings' space when ``latent_dim`` is None).
    autoencoder_ : torch.nn.ModuleDict or None
        ``"encoder"`` and ``"decoder"``; None without ``latent_dim``.
    pretrain_history_ : ndarray of shape (pretrain epochs run,)
        Mean reconstruction loss per pretraining epoch (empty without ``latent_dim``).
    history_ : ndarray of shape (epochs, 2)
        Per clustering epoch: mean k-means loss ``L_clu`` and mean reconstruction loss (0 without
        ``latent_dim``).
    inertia_ : float
        Sum over the rows of ``||z_i - Omega_c(i)||^2`` after training.
    n_iter_ : int
        Clustering epochs run.
    n_features_in_ : int

    References
    ----------
    Peng, Li, Tsang, Zhu, Lv and Zhou (2022), "XAI beyond classification: interpretable neural clustering",
    Journal of Machine Learning Research 23.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(3, 8) * 5, 60, axis=0) + rng.normal(size=(180, 8))
    >>> tell = TELL(3, epochs=5, batch_size=32, random_state=0).fit(X)
    >>> sorted(np.bincount(tell.labels_).tolist())
    [60, 60, 60]
    """

    _input_metric = "cosine"

    def __init__(
        self,
        n_clusters: int = 10,
        *,
        latent_dim: int | None = None,
        hidden_dims: Sequence[int] = DEC_HIDDEN_DIMS,
        pretrain_epochs: int = 10,
        epochs: int = 20,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        cluster_learning_rate: float = 0.5,
        cluster_weight: float = 0.01,
        temperature: float = 0.1,
        n_init: int = 1,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.cluster_learning_rate = cluster_learning_rate
        self.cluster_weight = cluster_weight
        self.temperature = temperature
        self.n_init = n_init
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.latent_dim is not None:
            check_int(self.latent_dim, "latent_dim")
        for width in self.hidden_dims:
            check_int(width, "hidden_dims entries")
        check_int(self.pretrain_epochs, "pretrain_epochs", 0)
        check_int(self.epochs, "epochs")
        check_int(self.batch_size, "batch_size")
        check_int(self.n_init, "n_init")
        for name in ("learning_rate", "cluster_learning_rate", "cluster_weight", "temperature"):
            check_positive(getattr(self, name), name)

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> TELL:
        """Start the centres at k-means' on the (learnt) features of ``X`` and train; one progress step per epoch.

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
        torch = require_torch("TELL")
        rng = check_random_state(self.random_state)
        self.autoencoder_, self.pretrain_history_ = None, np.empty(0)
        with seeded_torch(rng):
            if self.latent_dim is not None:
                self.autoencoder_, self.pretrain_history_ = fit_autoencoder(
                    rows,
                    self.hidden_dims,
                    self.latent_dim,
                    epochs=self.pretrain_epochs,
                    batch_size=self.batch_size,
                    learning_rate=self.learning_rate,
                    rng=rng,
                    progress=progress,
                    label="TELL",
                )
            seed = int(rng.randint(np.iinfo(np.int32).max))
            kmeans = KMeans(self.n_clusters, n_init=self.n_init, random_state=seed).fit(self._features(rows))
            centres = torch.nn.Parameter(torch.from_numpy(kmeans.cluster_centers_.copy()))
            with progress.task("TELL: clustering", self.epochs) as advance:
                self.history_ = self._train(centres, rows, rng, advance)
        self.cluster_centers_ = centres.detach().numpy().copy()
        self.n_iter_ = len(self.history_)
        logits = self._logits(rows)
        self.inertia_ = float(kmeans_layer_loss(torch.from_numpy(logits)).sum())
        self._set_assignments(self._softmax(logits))
        logger.info("TELL: %d clusters, inertia %.6g after %d epochs", self.n_clusters, self.inertia_, self.n_iter_)
        return self

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unit features of validated (unit) rows: the rows themselves, or their normalised codes."""
        import torch.nn.functional as F

        return x if self.autoencoder_ is None else F.normalize(self.autoencoder_["encoder"](x), dim=1)

    def _features(self, rows: np.ndarray) -> np.ndarray:
        return rows if self.autoencoder_ is None else apply_in_batches(self._encode, rows)

    def _train(
        self, centres: torch.nn.Parameter, rows: np.ndarray, rng: np.random.RandomState, advance: Advance
    ) -> np.ndarray:
        """The clustering phase; returns the mean k-means and reconstruction losses of each epoch."""
        import torch
        import torch.nn.functional as F

        optimisers = [torch.optim.SGD([centres], lr=self.cluster_learning_rate)]
        if self.autoencoder_ is not None:
            optimisers.append(torch.optim.Adam(self.autoencoder_.parameters(), lr=self.learning_rate))
        encoder_weight = self.cluster_weight / self.n_clusters
        data = torch.from_numpy(rows)
        history = np.zeros((self.epochs, 2))
        for epoch in range(self.epochs):
            move_centres = self.autoencoder_ is None or epoch % 2 == 0
            for batch in batches(len(rows), self.batch_size, rng):
                x = data[batch]
                z = self._encode(x)
                if move_centres:  # the clustering loss reaches the centres only
                    clustering = kmeans_layer_loss(z.detach() @ centres.T).mean()
                    loss = clustering
                else:  # and here the encoder only
                    clustering = kmeans_layer_loss(z @ centres.detach().T).mean()
                    loss = encoder_weight * clustering
                reconstruction = torch.zeros(())
                if self.autoencoder_ is not None:
                    reconstruction = F.mse_loss(self.autoencoder_["decoder"](z), x)
                    loss = loss + reconstruction
                for optimiser in optimisers:
                    optimiser.zero_grad()
                loss.backward()
                for optimiser in optimisers:
                    optimiser.step()
                with torch.no_grad():
                    centres.copy_(F.normalize(centres, dim=1))
                history[epoch] += np.array([clustering.item(), reconstruction.item()]) * len(batch) / len(rows)
            advance(1)
        return history

    def _logits(self, rows: np.ndarray) -> np.ndarray:
        """``<Omega_j, z_i>`` of validated rows, shape (n, n_clusters)."""
        import torch

        centres = torch.from_numpy(self.cluster_centers_)
        return apply_in_batches(lambda x: self._encode(x) @ centres.T, rows)

    def _softmax(self, logits: np.ndarray) -> np.ndarray:
        scaled = 2.0 * logits / self.temperature
        scaled -= scaled.max(axis=1, keepdims=True)
        proba = np.exp(scaled)
        return (proba / proba.sum(axis=1, keepdims=True)).astype(np.float32)

    def _proba(self, rows: np.ndarray) -> np.ndarray:
        return self._softmax(self._logits(rows))
