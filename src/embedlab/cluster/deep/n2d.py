"""N2D: (not too) deep clustering — an autoencoder, UMAP of its codes, then a Gaussian mixture."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from embedlab._checks import check_choice, check_int, check_positive
from embedlab._optional import import_optional
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster.deep._base import DeepClusterMixin
from embedlab.cluster.deep._torch import (
    DEC_HIDDEN_DIMS,
    apply_in_batches,
    fit_autoencoder,
    require_torch,
    seeded_torch,
)
from embedlab.io.validation import check_k

__all__ = ["N2D"]

logger = logging.getLogger(__name__)

CovarianceType = Literal["full", "tied", "diag", "spherical"]


class N2D(TransformerMixin, DeepClusterMixin):
    """N2D: cluster the local manifold of an autoencoded embedding.

    1. A fully connected autoencoder ``d - 500 - 500 - 2000 - latent_dim`` is pretrained on the rows (mean
       squared error, Adam), as in DEC; the code size defaults to the number of clusters, as in the paper.
    2. UMAP maps the codes to ``n_clusters`` dimensions with ``n_neighbors`` neighbours and ``min_dist=0``,
       which favours dense, separated groups over a faithful global layout.
    3. A Gaussian mixture with ``n_clusters`` components clusters the UMAP coordinates.

    ``predict`` and ``predict_proba`` send new rows through the encoder, the fitted UMAP's ``transform`` and
    the mixture; ``transform`` returns the encoder's codes. UMAP (``umap-learn``) and torch are optional
    dependencies, imported when fitting.

    Parameters
    ----------
    n_clusters : int, default=10
    hidden_dims : sequence of int, default=(500, 500, 2000)
    latent_dim : int, optional
        Code size; ``n_clusters`` by default (the paper's choice).
    pretrain_epochs : int, default=1000
        Autoencoder epochs (the paper's code pretrains for 1000); fewer suffice for small, simple sets.
    batch_size : int, default=256
    learning_rate : float, default=1e-3
    n_neighbors : int, default=20
        UMAP neighbours (the paper's 20).
    min_dist : float, default=0.0
    umap_metric : str, default="euclidean"
        Metric of UMAP on the codes.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Of the Gaussian mixture.
    random_state : int, RandomState or None, default=None
        Seeds the autoencoder, UMAP (which then runs single-threaded) and the mixture.

    Attributes
    ----------
    labels_ : ndarray of shape (n,), int64
    confidence_ : ndarray of shape (n,), float32
        Largest mixture responsibility of each row.
    autoencoder_ : torch.nn.ModuleDict
        ``"encoder"`` and ``"decoder"``.
    umap_ : umap.UMAP
        Fitted on the codes.
    mixture_ : sklearn.mixture.GaussianMixture
        Fitted on the UMAP coordinates.
    embedding_ : ndarray of shape (n, n_clusters), float32
        UMAP coordinates of the training rows.
    history_ : ndarray of shape (pretrain_epochs,)
        Mean reconstruction loss per epoch.
    n_iter_ : int
        Pretraining epochs run.
    n_features_in_ : int

    References
    ----------
    McConville, Santos-Rodriguez, Piechocki and Craddock (2021), "N2D: (not too) deep clustering via
    clustering the local manifold of an autoencoded embedding", ICPR 2020.
    McInnes, Healy and Melville (2018), "UMAP: uniform manifold approximation and projection for dimension
    reduction", arXiv:1802.03426.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(100, 8)) + 3, rng.normal(size=(100, 8)) - 3].astype(np.float32)
    >>> n2d = N2D(2, hidden_dims=(32,), pretrain_epochs=10, random_state=0).fit(X)  # doctest: +SKIP
    >>> sorted(np.bincount(n2d.labels_).tolist())  # doctest: +SKIP
    [100, 100]
    """

    def __init__(
        self,
        n_clusters: int = 10,
        *,
        hidden_dims: Sequence[int] = DEC_HIDDEN_DIMS,
        latent_dim: int | None = None,
        pretrain_epochs: int = 1000,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        n_neighbors: int = 20,
        min_dist: float = 0.0,
        umap_metric: str = "euclidean",
        covariance_type: CovarianceType = "full",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.pretrain_epochs = pretrain_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.umap_metric = umap_metric
        self.covariance_type = covariance_type
        self.random_state = random_state

    def _check_params(self) -> None:
        check_int(self.batch_size, "batch_size")
        check_int(self.pretrain_epochs, "pretrain_epochs", minimum=0)
        if self.latent_dim is not None:
            check_int(self.latent_dim, "latent_dim")
        for width in self.hidden_dims:
            check_int(width, "hidden_dims entries")
        check_positive(self.learning_rate, "learning_rate")
        if self.min_dist != 0:
            check_positive(self.min_dist, "min_dist")
        check_choice(self.covariance_type, "covariance_type", ("full", "tied", "diag", "spherical"))

    def fit(self, X: object, y: object = None, *, progress: ProgressReporter = NULL_PROGRESS) -> N2D:
        """Pretrain the autoencoder, embed its codes with UMAP and fit the mixture; one progress step per epoch.

        Raises
        ------
        EmbeddingDataError
            On NaN/Inf rows.
        ConfigurationError
            On bad parameters, ``n_clusters`` larger than the number of rows or ``n_neighbors`` not below it.
        MissingDependencyError
            When torch or umap-learn is not installed.
        """
        self._check_params()
        rows = self._fit_rows(X)
        n_neighbors = check_k(self.n_neighbors, rows.shape[0], name="n_neighbors")
        require_torch("N2D")
        umap = import_optional("umap", "deep", purpose="N2D")
        rng = check_random_state(self.random_state)
        latent_dim = self.n_clusters if self.latent_dim is None else self.latent_dim
        with seeded_torch(rng):
            network, self.history_ = fit_autoencoder(
                rows,
                self.hidden_dims,
                latent_dim,
                epochs=self.pretrain_epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                rng=rng,
                progress=progress,
                label="N2D",
            )
        self.autoencoder_ = network
        codes = apply_in_batches(network["encoder"], rows)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        self.umap_ = umap.UMAP(
            n_components=self.n_clusters,
            n_neighbors=n_neighbors,
            min_dist=self.min_dist,
            metric=self.umap_metric,
            random_state=seed,
            n_jobs=1,
        )
        self.embedding_ = self.umap_.fit_transform(codes).astype(np.float32)
        self.mixture_ = GaussianMixture(self.n_clusters, covariance_type=self.covariance_type, random_state=seed)
        self.mixture_.fit(self.embedding_)
        self.n_iter_ = len(self.history_)
        self._set_assignments(self.mixture_.predict_proba(self.embedding_))
        logger.info("N2D: %d clusters after %d pretraining epochs", self.n_clusters, self.n_iter_)
        return self

    def transform(self, X: object) -> np.ndarray:
        """The autoencoder's codes of the rows of ``X``, shape (n, latent dimension), float32: the embedding
        the UMAP step starts from, for another head to cluster.

        Raises
        ------
        EmbeddingDataError
            On invalid rows or a dimension other than the training data's.
        """
        check_is_fitted(self, "autoencoder_")
        return apply_in_batches(self.autoencoder_["encoder"], self._check_new(X))

    def _proba(self, rows: np.ndarray) -> np.ndarray:
        codes = apply_in_batches(self.autoencoder_["encoder"], rows)
        return self.mixture_.predict_proba(self.umap_.transform(codes))
