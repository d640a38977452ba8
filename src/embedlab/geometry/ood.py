"""Scoring new rows as in or out of the distribution of a labelled set: NECO."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Tags

from embedlab._checks import check_int
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.validation import fit_rows, new_rows

__all__ = ["NecoScore"]


class NecoScore(BaseEstimator):
    """NECO, the neural-collapse out-of-distribution score: the share of a row's norm that lies in the principal
    subspace of the in-distribution rows.

    Under neural collapse the rows of each class gather at their class mean and the means span a subspace of
    about ``n_classes`` dimensions, while rows from elsewhere fall largely outside it. ``fit`` fits a PCA on the
    in-distribution rows; ``score_samples`` is the paper's ``||P_d z|| / ||z||`` (its equation 6) for the centred
    row ``z`` in PCA coordinates and ``P_d`` its first ``d`` components: near 1 in distribution, lower outside.

    Parameters
    ----------
    n_components : int, optional
        ``d``; by default the number of classes of ``y`` (required when ``y`` is not given).
    standardize : bool, default=False
        Scale each dimension to unit variance before the PCA, as the authors' code does. On embeddings that
        are far from collapsed this gives the noise dimensions the weight of the class dimensions.

    Attributes
    ----------
    n_components_ : int
    scaler_ : sklearn.preprocessing.StandardScaler
        Centring, and with ``standardize`` scaling, of the rows.
    pca_ : sklearn.decomposition.PCA
    n_features_in_ : int

    References
    ----------
    Ben Ammar, Belkhir, Popescu, Manzanera and Franchi (2024), "NECO: NEural Collapse Based Out-of-distribution
    Detection", ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> means = 6 * np.eye(16)[:4]
    >>> y = rng.integers(0, 4, 400)
    >>> X = means[y] + rng.normal(size=(400, 16))
    >>> outside = 6 * np.eye(16)[8] + rng.normal(size=(50, 16))
    >>> neco = NecoScore().fit(X, y)
    >>> bool(neco.score_samples(X).mean() > neco.score_samples(outside).mean() + 0.3)
    True
    """

    #: Rows are taken as given: every vector is valid, zero rows included.
    _input_metric = "l2"

    def __init__(self, n_components: int | None = None, *, standardize: bool = False) -> None:
        self.n_components = n_components
        self.standardize = standardize

    def __sklearn_tags__(self) -> Tags:
        """An outlier scorer fitted on in-distribution rows, optionally with their labels."""
        tags = super().__sklearn_tags__()
        tags.estimator_type = "outlier_detector"
        return tags

    def fit(self, X: object, y: object = None) -> NecoScore:
        """Fit the standardisation and the PCA on in-distribution rows ``X`` (with their labels ``y``).

        Raises
        ------
        EmbeddingDataError
            When ``y`` does not give one label per row or has one class.
        ConfigurationError
            When neither ``n_components`` nor ``y`` is given, or ``n_components`` exceeds the rows or dimension.
        """
        rows = fit_rows(self, X, self._input_metric, min_rows=2).vectors.astype(np.float64)
        if self.n_components is not None:
            d = check_int(self.n_components, "n_components", maximum=min(rows.shape))
        elif y is None:
            raise ConfigurationError("give n_components, or the labels y (d is then the number of classes).")
        else:
            labels = np.asarray(y)
            if labels.ndim != 1 or labels.shape[0] != rows.shape[0]:
                raise EmbeddingDataError(f"{labels.shape[0] if labels.ndim else 0} labels for {rows.shape[0]} rows.")
            n_classes = np.unique(labels).size
            if n_classes < 2:
                raise EmbeddingDataError("the labels have one class: NECO's subspace needs two or more.")
            d = min(n_classes, *rows.shape)
        self.scaler_ = StandardScaler(with_std=bool(self.standardize)).fit(rows)
        self.pca_ = PCA().fit(self.scaler_.transform(rows))
        self.n_components_ = d
        return self

    def score_samples(self, X: object) -> np.ndarray:
        """The NECO score of each row: in [0, 1], higher in distribution."""
        rows = new_rows(self, X, self._input_metric).vectors.astype(np.float64)
        z = self.pca_.transform(self.scaler_.transform(rows))
        total = np.linalg.norm(z, axis=1)
        return np.linalg.norm(z[:, : self.n_components_], axis=1) / np.maximum(total, np.finfo(float).tiny)
