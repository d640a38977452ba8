"""What the deep clustering estimators share: neighbour mining, input validation and soft assignments."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from embedlab._checks import check_int
from embedlab.exceptions import ConfigurationError
from embedlab.io.validation import check_k, fit_rows, new_rows
from embedlab.neighbors import knn

__all__ = ["DeepClusterMixin", "mine_neighbours"]


def mine_neighbours(rows: np.ndarray, n_neighbors: int, metric: str, rng: np.random.RandomState) -> np.ndarray:
    """Indices (n, n_neighbors) of each row's nearest other rows, from the shared kNN engine, seeded by ``rng``.

    Raises
    ------
    ConfigurationError
        If ``n_neighbors`` is not below the number of rows.
    """
    k = check_k(n_neighbors, rows.shape[0], name="n_neighbors")
    return knn(rows, k, metric=metric, random_state=int(rng.randint(np.iinfo(np.int32).max))).indices


class DeepClusterMixin(ClusterMixin, BaseEstimator, ABC):
    """Soft-assignment plumbing of the deep heads: subclasses implement ``_proba`` on validated rows.

    ``_input_metric`` says how rows are prepared ("l2": as given; "cosine": unit-normalised) in ``fit`` and in
    ``predict``.
    """

    _input_metric = "l2"

    def _fit_rows(self, X: object) -> np.ndarray:
        """Validated float32 rows of the training set, checked against ``n_clusters``."""
        n_clusters = check_int(self.n_clusters, "n_clusters")
        rows = fit_rows(self, X, self._input_metric).vectors
        if n_clusters > rows.shape[0]:
            raise ConfigurationError(
                f"n_clusters={n_clusters} but X has only {rows.shape[0]} rows; use n_clusters <= {rows.shape[0]}."
            )
        return rows

    def _check_new(self, X: object) -> np.ndarray:
        return new_rows(self, X, self._input_metric).vectors

    @abstractmethod
    def _proba(self, rows: np.ndarray) -> np.ndarray:
        """Soft assignments of validated rows of the training dimension."""

    def _set_assignments(self, proba: np.ndarray) -> None:
        """``labels_`` and ``confidence_`` from the soft assignments of the training rows."""
        self.labels_ = np.argmax(proba, axis=1).astype(np.int64)
        self.confidence_ = proba.max(axis=1).astype(np.float32)

    def predict_proba(self, X: object) -> np.ndarray:
        """Soft cluster assignments of the rows of ``X``, shape (n, n_clusters), rows summing to 1.

        Raises
        ------
        EmbeddingDataError
            On invalid rows or a dimension other than the training data's.
        """
        check_is_fitted(self, "labels_")
        return self._proba(self._check_new(X))

    def predict(self, X: object) -> np.ndarray:
        """Most probable cluster of each row of ``X`` (int64)."""
        return np.argmax(self.predict_proba(X), axis=1).astype(np.int64)
