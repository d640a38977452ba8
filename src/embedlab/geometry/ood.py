"""Scoring new rows as in or out of the distribution of a labelled set: NECO, and :func:`score_ood`, which puts it
beside the distance to the k-th nearest reference row, each with a threshold calibrated on held-out rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Tags

from embedlab._checks import check_int, check_positive
from embedlab._json import json_safe
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.geometry.labels import _encode_labels, label_values, labels_name
from embedlab.io import EmbeddingSet
from embedlab.io.validation import Metric, fit_rows, new_rows, prepare
from embedlab.neighbors import knn

__all__ = ["NecoScore", "OodScores", "score_ood"]

#: Rows listed as the least in-distribution in :meth:`OodScores.to_dict`.
_SHOWN = 10


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


@dataclass(frozen=True)
class OodScores:
    """Two out-of-distribution scores of new rows against a labelled reference set, each with a threshold.

    Attributes
    ----------
    neco : numpy.ndarray of shape (n_new,)
        NECO score (:class:`NecoScore`): in [0, 1], lower is further out.
    knn_distance : numpy.ndarray of shape (n_new,)
        Distance to the ``k``-th nearest reference row: higher is further out.
    neco_threshold, knn_threshold : float
        The scores that flag ``false_positive_rate`` of the held-out reference rows: a new row is out by NECO
        below ``neco_threshold``, by distance above ``knn_threshold``.
    false_positive_rate : float
    n_components, k, n_reference, n_held_out : int
    """

    neco: np.ndarray = field(repr=False)
    knn_distance: np.ndarray = field(repr=False)
    neco_threshold: float
    knn_threshold: float
    false_positive_rate: float
    n_components: int
    k: int
    n_reference: int
    n_held_out: int

    @property
    def neco_out(self) -> np.ndarray:
        return self.neco < self.neco_threshold

    @property
    def knn_out(self) -> np.ndarray:
        return self.knn_distance > self.knn_threshold

    def to_table(self, ids: np.ndarray) -> pa.Table:
        """One row per new row: id, neco, neco_out, knn_distance, knn_out."""
        return pa.table(
            {
                "id": pa.array(np.asarray(ids).tolist()),
                "neco": self.neco,
                "neco_out": self.neco_out,
                "knn_distance": self.knn_distance,
                "knn_out": self.knn_out,
            }
        )

    def to_dict(self, ids: np.ndarray) -> dict[str, Any]:
        """The thresholds, how many rows each score flags (and both), and the rows NECO scores lowest."""
        ids = np.asarray(ids)
        lowest = np.argsort(self.neco, kind="stable")[:_SHOWN]
        return json_safe(
            {
                "n_new": int(self.neco.size),
                "n_reference": self.n_reference,
                "n_held_out": self.n_held_out,
                "false_positive_rate": self.false_positive_rate,
                "neco": {"n_components": self.n_components, "threshold": self.neco_threshold},
                "knn": {"k": self.k, "threshold": self.knn_threshold},
                "flagged": {
                    "neco": int(self.neco_out.sum()),
                    "knn": int(self.knn_out.sum()),
                    "both": int((self.neco_out & self.knn_out).sum()),
                },
                "lowest_neco": [
                    {"id": ids[i].item() if hasattr(ids[i], "item") else ids[i], "neco": self.neco[i]} for i in lowest
                ],
            }
        )


def score_ood(
    reference: EmbeddingSet | object,
    labels: str | object,
    new: EmbeddingSet | object,
    *,
    n_components: int | None = None,
    k: int = 10,
    metric: Metric = "cosine",
    false_positive_rate: float = 0.05,
    held_out: float = 0.2,
    random_state: int = 0,
) -> OodScores:
    """Score the rows of ``new`` as in or out of the distribution of the labelled ``reference`` rows.

    A stratified ``held_out`` share of the reference rows calibrates the thresholds; the rest fit NECO
    (Ben Ammar et al. 2024, :class:`NecoScore`) and are searched for each row's ``k``-th nearest neighbour under
    ``metric`` (the kNN-distance score of Sun et al. 2022, "Out-of-Distribution Detection with Deep Nearest
    Neighbors", ICML). Each threshold flags ``false_positive_rate`` of the held-out rows, so about that share
    of genuinely in-distribution new rows is flagged too.

    Parameters
    ----------
    reference : EmbeddingSet or array-like of shape (n, d)
    labels : str or array-like of shape (n,)
        The class of each reference row, or the metadata column of ``reference`` holding it.
    new : EmbeddingSet or array-like of shape (m, d)
    n_components : int, optional
        NECO's subspace; by default the number of classes.
    k : int, default=10
    metric : {"cosine", "l2", "ip"}, default="cosine"
    false_positive_rate : float, default=0.05
    held_out : float, default=0.2
    random_state : int, default=0

    Raises
    ------
    EmbeddingDataError
        When the labels do not give one class per reference row or have fewer than two classes of two rows, or
        ``new`` has another dimension.
    ConfigurationError
        On bad parameters.
    """
    reference_rows = prepare(reference, "l2", name="reference")
    called = Path(reference.source).name if getattr(reference, "source", None) else "the reference"
    new_rows_ = prepare(new, "l2", name="new", dim=reference_rows.dim, owner=called)
    codes = _encode_labels(label_values(reference, labels), reference_rows.n, labels_name(reference, labels))[1]
    check_positive(false_positive_rate, "false_positive_rate", upper=0.5)
    if not 0 < held_out < 1:
        raise ConfigurationError(f"held_out must lie in (0, 1), got {held_out}.")
    fit, calibrate = train_test_split(
        np.arange(reference_rows.n), test_size=held_out, stratify=codes, random_state=random_state
    )
    k = check_int(k, "k", maximum=fit.size, why="the reference rows outside the held-out share")
    neco = NecoScore(n_components).fit(reference_rows.vectors[fit], codes[fit])
    fitted = reference_rows.vectors[fit]
    distances = [
        knn(fitted, k, queries=rows, metric=metric, random_state=random_state).distances[:, -1]
        for rows in (reference_rows.vectors[calibrate], new_rows_.vectors)
    ]
    return OodScores(
        neco=neco.score_samples(new_rows_.vectors),
        knn_distance=distances[1].astype(np.float64),
        neco_threshold=float(np.quantile(neco.score_samples(reference_rows.vectors[calibrate]), false_positive_rate)),
        knn_threshold=float(np.quantile(distances[0], 1.0 - false_positive_rate)),
        false_positive_rate=float(false_positive_rate),
        n_components=neco.n_components_,
        k=k,
        n_reference=int(fit.size),
        n_held_out=int(calibrate.size),
    )
