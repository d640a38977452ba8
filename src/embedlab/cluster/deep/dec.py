"""DEC and IDEC: cluster in the latent space of an autoencoder, sharpening Student-t soft assignments."""

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

__all__ = ["DEC", "IDEC"]

logger = logging.getLogger(__name__)


def _soft_assignment(z: torch.Tensor, centres: torch.Tensor, alpha: float) -> torch.Tensor:
    """Student-t kernel q_ij ∝ (1 + |z_i - mu_j|^2 / alpha)^(-(alpha + 1) / 2), rows normalised."""
    sq_distances = (z[:, None, :] - centres[None, :, :]).pow(2).sum(dim=2)
    kernel = (1.0 + sq_distances / alpha).pow(-(alpha + 1.0) / 2.0)
    return kernel / kernel.sum(dim=1, keepdim=True)


def _target_distribution(q: np.ndarray) -> np.ndarray:
    """DEC's auxiliary target p_ij ∝ q_ij^2 / f_j with f_j = sum_i q_ij, rows normalised."""
    weight = q**2 / q.sum(axis=0)
    return (weight / weight.sum(axis=1, keepdims=True)).astype(np.float32)


class DEC(DeepClusterMixin):
    """Deep Embedded Clustering: an autoencoder's encoder fine-tuned to sharpen its own cluster assignments.

    1. A fully connected autoencoder ``d - 500 - 500 - 2000 - latent_dim`` (by default) is pretrained end to
       end on the rows with the mean squared error and Adam (the paper pretrains greedily layer by layer with
       denoising, then fine-tunes the stack; the end-to-end pretraining follows the IDEC code).
    2. k-means (embedlab's, ``n_init`` restarts) in the latent space gives the initial centres ``mu_j``.
    3. The encoder and the centres then minimise ``KL(P || Q)`` by mini-batch Adam, where ``q_ij`` is the
       Student-t similarity (``alpha = 1``) of code ``z_i`` to centre ``mu_j`` and the target
       ``p_ij ∝ q_ij^2 / sum_i q_ij`` is recomputed on all rows every ``update_interval`` mini-batches.
       Training stops at such an update when fewer than a share ``tol`` of the rows changed cluster since
       the last one, or after ``epochs`` epochs.

    Fit it on raw vectors scaled to a common range (pixels in [0, 1], standardised features).

    Parameters
    ----------
    n_clusters : int, default=10
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Encoder widths; the decoder mirrors them.
    latent_dim : int, default=10
        Dimension of the code space (the paper's 10).
    pretrain_epochs : int, default=200
        Autoencoder epochs (IDEC's setting); 0 skips pretraining.
    epochs : int, default=100
        Most epochs of the clustering phase.
    batch_size : int, default=256
    learning_rate : float, default=1e-3
        Adam's step size in both phases (IDEC's; the DEC paper used SGD for the clustering phase).
    update_interval : int, default=140
        Mini-batches between target updates (IDEC's value for MNIST).
    tol : float, default=1e-3
        Stop when fewer than this share of the rows changed cluster between two target updates (0.1%).
    alpha : float, default=1.0
        Degrees of freedom of the Student-t kernel.
    n_init : int, default=20
        k-means restarts for the initial centres (the paper's 20).
    random_state : int, RandomState or None, default=None
        Seeds the batches, k-means and torch's initialisation.

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    confidence_ : ndarray of shape (n,), float32
        Largest soft assignment of each row.
    cluster_centers_ : ndarray of shape (n_clusters, latent_dim), float32
        Centres in the latent space.
    autoencoder_ : torch.nn.ModuleDict
        ``"encoder"`` and ``"decoder"`` (DEC fine-tunes only the encoder).
    pretrain_history_ : ndarray of shape (pretrain_epochs,)
        Mean reconstruction loss per pretraining epoch.
    history_ : ndarray of shape (n_iter_,)
        Mean clustering-phase loss per epoch (KL for DEC; reconstruction + gamma KL for IDEC).
    n_iter_ : int
        Clustering epochs run.
    n_features_in_ : int

    References
    ----------
    Xie, Girshick and Farhadi (2016), "Unsupervised deep embedding for clustering analysis", ICML.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(100, 8)) + 3, rng.normal(size=(100, 8)) - 3].astype(np.float32)
    >>> dec = DEC(2, hidden_dims=(32,), latent_dim=2, pretrain_epochs=5, epochs=2, batch_size=64,
    ...           random_state=0).fit(X)
    >>> sorted(np.bincount(dec.labels_).tolist())
    [100, 100]
    """

    def __init__(
        self,
        n_clusters: int = 10,
        *,
        hidden_dims: Sequence[int] = DEC_HIDDEN_DIMS,
        latent_dim: int = 10,
        pretrain_epochs: int = 200,
        epochs: int = 100,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        update_interval: int = 140,
        tol: float = 1e-3,
        alpha: float = 1.0,
        n_init: int = 20,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.update_interval = update_interval
        self.tol = tol
        self.alpha = alpha
        self.n_init = n_init
        self.random_state = random_state

    def _loss_weights(self) -> tuple[float, float]:
        """Weights of the reconstruction and clustering losses in the clustering phase."""
        return 0.0, 1.0

    def _check_params(self) -> None:
        for name in ("latent_dim", "batch_size", "update_interval", "n_init"):
            check_int(getattr(self, name), name)
        for name in ("pretrain_epochs", "epochs"):
            check_int(getattr(self, name), name, minimum=0)
        for width in self.hidden_dims:
            check_int(width, "hidden_dims entries")
        check_positive(self.learning_rate, "learning_rate")
        check_positive(self.alpha, "alpha")
        check_positive(self.tol, "tol", upper=1.0)

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> DEC:
        """Pretrain the autoencoder on the rows of ``X`` and cluster them; ``progress`` gets one step per epoch.

        Raises
        ------
        EmbeddingDataError
            On NaN/Inf rows.
        ConfigurationError
            On bad parameters or ``n_clusters`` larger than the number of rows.
        MissingDependencyError
            When torch is not installed.
        """
        self._check_params()
        rows = self._fit_rows(X)
        name = type(self).__name__
        torch = require_torch(name)
        rng = check_random_state(self.random_state)
        with seeded_torch(rng):
            network, self.pretrain_history_ = fit_autoencoder(
                rows,
                self.hidden_dims,
                self.latent_dim,
                epochs=self.pretrain_epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                rng=rng,
                progress=progress,
                label=name,
            )
            codes = apply_in_batches(network["encoder"], rows)
            seed = int(rng.randint(np.iinfo(np.int32).max))
            kmeans = KMeans(self.n_clusters, metric="l2", n_init=self.n_init, random_state=seed).fit(codes)
            centres = torch.nn.Parameter(torch.from_numpy(kmeans.cluster_centers_.copy()))
            with progress.task(f"{name}: clustering", self.epochs) as advance:
                self.history_ = self._cluster(network, centres, rows, rng, advance)
        self.autoencoder_ = network
        self.cluster_centers_ = centres.detach().numpy().copy()
        self.n_iter_ = len(self.history_)
        self._set_assignments(self._proba(rows))
        logger.info("%s: %d clusters after %d clustering epochs", name, self.n_clusters, self.n_iter_)
        return self

    def _cluster(
        self,
        network: torch.nn.ModuleDict,
        centres: torch.nn.Parameter,
        rows: np.ndarray,
        rng: np.random.RandomState,
        advance: Advance,
    ) -> np.ndarray:
        """The clustering phase; returns the mean loss of each epoch run."""
        import torch

        recon_weight, cluster_weight = self._loss_weights()
        parameters = [*network["encoder"].parameters(), centres]
        if recon_weight > 0:
            parameters += list(network["decoder"].parameters())
        optimiser = torch.optim.Adam(parameters, lr=self.learning_rate)
        data = torch.from_numpy(rows)
        history: list[float] = []
        step, labels, target, converged = 0, None, None, False
        for _ in range(self.epochs):
            total = 0.0
            for batch_rows in batches(len(rows), self.batch_size, rng):
                if step % self.update_interval == 0:
                    q = self._assignments(network["encoder"], centres, rows)
                    changed = 1.0 if labels is None else float(np.mean(q.argmax(axis=1) != labels))
                    labels, target = q.argmax(axis=1), torch.from_numpy(_target_distribution(q))
                    if changed < self.tol:
                        converged = True
                        logger.info("%s: %.4f%% of labels changed; converged", type(self).__name__, 100 * changed)
                        break
                batch = data[batch_rows]
                z = network["encoder"](batch)
                q_batch = _soft_assignment(z, centres, self.alpha)
                loss = cluster_weight * torch.nn.functional.kl_div(
                    q_batch.log(), target[batch_rows], reduction="batchmean"
                )
                if recon_weight > 0:
                    loss = loss + recon_weight * torch.nn.functional.mse_loss(network["decoder"](z), batch)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch_rows)
                step += 1
            if converged:
                break
            history.append(total / len(rows))
            advance(1)
        return np.asarray(history)

    def _assignments(self, encoder: torch.nn.Module, centres: torch.Tensor, rows: np.ndarray) -> np.ndarray:
        """Soft assignments of all rows, without gradients."""
        return apply_in_batches(lambda x: _soft_assignment(encoder(x), centres, self.alpha), rows)

    def _proba(self, rows: np.ndarray) -> np.ndarray:
        import torch

        return self._assignments(self.autoencoder_["encoder"], torch.from_numpy(self.cluster_centers_), rows)


class IDEC(DEC):
    """Improved DEC: the clustering phase keeps training the decoder, so the latent space stays faithful.

    Identical to :class:`DEC` except that the clustering phase minimises ``L_r + gamma L_c`` (Guo et al.
    2017, eq. 7): the reconstruction error ``L_r`` of the whole autoencoder plus ``gamma`` times DEC's
    ``KL(P || Q)``, which keeps the encoder from distorting the space it clusters.

    Parameters
    ----------
    gamma : float, default=0.1
        Weight of the clustering loss against the reconstruction loss (the paper's 0.1).
    **others
        As for :class:`DEC`.

    Attributes
    ----------
    As for :class:`DEC`.

    References
    ----------
    Guo, Gao, Liu and Yin (2017), "Improved deep embedded clustering with local structure preservation",
    IJCAI.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(100, 8)) + 3, rng.normal(size=(100, 8)) - 3].astype(np.float32)
    >>> idec = IDEC(2, hidden_dims=(32,), latent_dim=2, pretrain_epochs=5, epochs=2, batch_size=64,
    ...             random_state=0).fit(X)
    >>> sorted(np.bincount(idec.labels_).tolist())
    [100, 100]
    """

    def __init__(
        self,
        n_clusters: int = 10,
        *,
        hidden_dims: Sequence[int] = DEC_HIDDEN_DIMS,
        latent_dim: int = 10,
        pretrain_epochs: int = 200,
        epochs: int = 100,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        update_interval: int = 140,
        tol: float = 1e-3,
        alpha: float = 1.0,
        n_init: int = 20,
        gamma: float = 0.1,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        super().__init__(
            n_clusters,
            hidden_dims=hidden_dims,
            latent_dim=latent_dim,
            pretrain_epochs=pretrain_epochs,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            update_interval=update_interval,
            tol=tol,
            alpha=alpha,
            n_init=n_init,
            random_state=random_state,
        )
        self.gamma = gamma

    def _check_params(self) -> None:
        super()._check_params()
        check_positive(self.gamma, "gamma")

    def _loss_weights(self) -> tuple[float, float]:
        return 1.0, float(self.gamma)
