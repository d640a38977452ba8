"""Removing a linearly decodable attribute from a set: iterative null-space projection (INLP), and
:func:`remove_attribute`, which measures what the removal cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC
from sklearn.utils import Tags, check_random_state

from embedlab._checks import check_int
from embedlab._json import json_safe
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.geometry.labels import _encode_labels, _knn_votes, label_values, labels_name
from embedlab.io import EmbeddingSet
from embedlab.io.validation import Metric, fit_rows, new_rows, prepare
from embedlab.neighbors import knn

__all__ = ["AttributeRemoval", "NullspaceProjection", "remove_attribute"]

#: Rows whose neighbours measure what the removal kept (kNN accuracy of other labels, neighbours kept).
_SAMPLE_QUERIES = 2000


def _orthonormal_rows(W: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """An orthonormal basis (as rows) of the span of the rows of ``W``."""
    _, s, vt = np.linalg.svd(W, full_matrices=False)
    return vt[s > tol * max(float(s.max(initial=0.0)), 1.0)]


class NullspaceProjection(TransformerMixin, BaseEstimator):
    """Remove what linear classifiers can read of an attribute: iterative null-space projection (INLP).

    Each round trains a linear classifier (a linear SVM, as in the paper) to predict the attribute from the
    rows projected so far, and adds the span of its weight vectors to the removed directions; the projection is
    onto the orthogonal complement of every removed direction (the intersection of the classifiers' null
    spaces). Rounds stop when the classifier's accuracy on a held-out part of the rows is no better than always
    answering the most frequent value (``tolerance`` above it), or after ``max_iter`` rounds. The directions
    are found on the rows as given (not centred, not normalised), and ``transform`` removes them from any row.

    Parameters
    ----------
    max_iter : int, default=20
        Rounds at most. A round removes one direction for two values and up to one per value beyond (one-vs-rest
        classifiers), so a many-valued attribute also takes some directions that carry other things: measure
        what else was lost.
    tolerance : float or None, default=None
        A round whose held-out accuracy is within this of the majority rate ends the fit (its directions are
        not removed). By default two standard errors of the majority rate on the held-out rows,
        ``2 sqrt(p (1 - p) / n)``: a classifier no better than that reads noise, and removing its directions
        would remove other information.
    held_out : float, default=0.2
        Fraction of the rows (stratified) on which each round's accuracy is measured.
    C : float, default=1.0
        The linear SVM's inverse regularisation.
    random_state : int, RandomState or None, default=0

    Attributes
    ----------
    directions_ : ndarray of shape (n_directions, d)
        Orthonormal rows spanning what was removed.
    accuracy_ : list of float
        Held-out accuracy of each round's classifier, the first on the original rows.
    majority_ : float
        Held-out accuracy of always answering the most frequent value.
    tolerance_ : float
        The margin over ``majority_`` a round had to beat.
    n_iter_ : int
        Rounds whose directions were removed.
    n_features_in_ : int

    References
    ----------
    Ravfogel, Elazar, Gonen, Twiton and Goldberg (2020), "Null It Out: Guarding Protected Attributes by Iterative
    Nullspace Projection", ACL.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> X = rng.normal(size=(400, 8)) + 3.0 * y[:, None] * np.eye(8)[0]
    >>> model = NullspaceProjection().fit(X, y)
    >>> bool(abs(model.directions_[0, 0]) > 0.95), model.accuracy_[0] > 0.9, model.accuracy_[-1] < 0.6
    (True, True, True)
    """

    #: Rows are taken as given: every vector is valid, zero rows included.
    _input_metric = "l2"

    def __init__(
        self,
        *,
        max_iter: int = 20,
        tolerance: float | None = None,
        held_out: float = 0.2,
        C: float = 1.0,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.max_iter = max_iter
        self.tolerance = tolerance
        self.held_out = held_out
        self.C = C
        self.random_state = random_state

    def fit(self, X: object, y: object) -> NullspaceProjection:
        """Find the directions from which ``y`` can be read linearly.

        Raises
        ------
        EmbeddingDataError
            When ``y`` does not give one value per row, or has a single value, or a value too rare to appear on
            both sides of the held-out split.
        ConfigurationError
            On bad parameters.
        """
        rows = fit_rows(self, X, self._input_metric).vectors.astype(np.float64)
        if y is None:
            raise EmbeddingDataError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        labels = np.asarray(y)
        if labels.ndim != 1 or labels.shape[0] != rows.shape[0]:
            raise EmbeddingDataError(f"{labels.shape[0] if labels.ndim else 0} labels for {rows.shape[0]} rows.")
        values, counts = np.unique(labels, return_counts=True)
        if values.size < 2:
            raise EmbeddingDataError(f"the attribute has one class ({values[0]!r}): there is nothing to remove.")
        if counts.min() < 2:
            raise EmbeddingDataError(f"the value {values[counts.argmin()]!r} has one row: each value needs two.")
        max_iter = check_int(self.max_iter, "max_iter")
        if not 0 < self.held_out < 1 or not (self.tolerance is None or 0 <= self.tolerance < 1):
            raise ConfigurationError("held_out must lie in (0, 1) and tolerance in [0, 1).")
        rng = check_random_state(self.random_state)
        train, test, y_train, y_test = train_test_split(
            rows, labels, test_size=self.held_out, stratify=labels, random_state=rng
        )
        self.majority_ = float(np.max(np.unique(y_test, return_counts=True)[1]) / y_test.size)
        self.tolerance_ = (
            2.0 * np.sqrt(self.majority_ * (1.0 - self.majority_) / y_test.size)
            if self.tolerance is None
            else float(self.tolerance)
        )
        directions = np.empty((0, rows.shape[1]))
        self.accuracy_: list[float] = []
        self.n_iter_ = 0
        for _ in range(max_iter):
            classifier = LinearSVC(C=self.C, dual="auto", max_iter=5000, random_state=rng.randint(2**31))
            classifier.fit(self._remove(train, directions), y_train)
            accuracy = float(classifier.score(self._remove(test, directions), y_test))
            self.accuracy_.append(accuracy)
            if accuracy <= self.majority_ + self.tolerance_:
                break
            directions = _orthonormal_rows(np.vstack([directions, classifier.coef_]))
            self.n_iter_ += 1
        self.directions_ = directions
        return self

    def __sklearn_tags__(self) -> Tags:
        """Supervised (``y`` is the attribute); rows come back float32, as everywhere in embedlab."""
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    @staticmethod
    def _remove(rows: np.ndarray, directions: np.ndarray) -> np.ndarray:
        return rows - (rows @ directions.T) @ directions if directions.size else rows

    def transform(self, X: object) -> np.ndarray:
        """``X`` with the removed directions projected out (float32)."""
        rows = new_rows(self, X, self._input_metric).vectors.astype(np.float64)
        return self._remove(rows, self.directions_).astype(np.float32)


@dataclass(frozen=True)
class AttributeRemoval:
    """What removing an attribute did to a set: how well a fresh probe still reads it, and what else was lost.

    Attributes
    ----------
    projection : NullspaceProjection
        Fitted on the rows outside the evaluation split; ``projection.transform`` removes the attribute from
        any row of this space.
    vectors : numpy.ndarray of shape (n, d), float32
        Every row with the attribute removed.
    probe_before, probe_after : float
        Held-out accuracy of a logistic-regression probe (a classifier INLP never trained against) on the
        evaluation rows, trained on the other rows as given and as projected.
    majority : float
        Accuracy of always answering the most frequent value on the evaluation rows: the floor a probe that
        reads nothing reaches.
    n_directions : int
        Directions removed.
    others : dict of str to (float, float)
        For each other label: kNN accuracy (majority of ``k`` neighbours) before and after.
    neighbours_kept : float
        Share of each sample row's ``k`` neighbours before the removal that are still among its ``k`` after.
    k, n_queries : int
        Neighbours, and sample rows those scores are measured on.
    """

    projection: NullspaceProjection
    vectors: np.ndarray = field(repr=False)
    probe_before: float
    probe_after: float
    majority: float
    n_directions: int
    others: dict[str, tuple[float, float]]
    neighbours_kept: float
    k: int
    n_queries: int

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "probe_before": self.probe_before,
                "probe_after": self.probe_after,
                "majority": self.majority,
                "n_directions": self.n_directions,
                "inlp_accuracy": self.projection.accuracy_,
                "others": {name: {"before": b, "after": a} for name, (b, a) in self.others.items()},
                "neighbours_kept": self.neighbours_kept,
                "k": self.k,
                "n_queries": self.n_queries,
            }
        )


def _probe_accuracy(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray, seed: int) -> float:
    probe = LogisticRegression(max_iter=2000, random_state=seed).fit(train, y_train)
    return float(probe.score(test, y_test))


def remove_attribute(
    data: EmbeddingSet | object,
    attribute: str | object,
    *,
    others: Sequence[str] | Mapping[str, object] = (),
    k: int = 10,
    metric: Metric = "cosine",
    held_out: float = 0.2,
    max_iter: int = 20,
    random_state: int = 0,
) -> AttributeRemoval:
    """Remove what linear classifiers can read of ``attribute`` from the rows of ``data`` (INLP, Ravfogel et al.
    2020) and measure what it cost.

    A stratified ``held_out`` share of the rows is kept out of the fit. :class:`NullspaceProjection` is fitted
    on the rest; a logistic-regression probe trained on the rest is then scored on the held-out rows before and
    after the projection. The kNN accuracy of each of ``others`` and how many of each row's ``k`` neighbours
    survive are measured on a sample of rows (up to 2,000) against all rows, under ``metric``.

    Parameters
    ----------
    data : EmbeddingSet or array-like of shape (n, d)
    attribute : str or array-like of shape (n,)
        The value to remove, one per row, or the metadata column of ``data`` holding it.
    others : sequence of str or mapping of str to array-like of shape (n,), default=()
        Other labels whose kNN accuracy should survive: metadata columns of ``data``, or arrays by name.
    k : int, default=10
    metric : {"cosine", "l2", "ip"}, default="cosine"
    held_out : float, default=0.2
    max_iter : int, default=20
        INLP rounds at most.
    random_state : int, default=0
        Seeds the split, INLP, the probes and the sample.

    Raises
    ------
    EmbeddingDataError
        When a label does not give one value per row, the attribute has one value, or a value has one row.
    ConfigurationError
        On bad parameters.
    """
    rows = prepare(data, "l2", name="data").vectors
    codes = _encode_labels(label_values(data, attribute), rows.shape[0], labels_name(data, attribute))[1]
    named = others if isinstance(others, Mapping) else {name: label_values(data, name) for name in others}
    if not 0 < held_out < 1:
        raise ConfigurationError(f"held_out must lie in (0, 1), got {held_out}.")
    k = check_int(k, "k", maximum=rows.shape[0] - 1, why="the rows less one")
    rng = np.random.default_rng(random_state)
    fit, test = train_test_split(
        np.arange(rows.shape[0]), test_size=held_out, stratify=codes, random_state=random_state
    )
    projection = NullspaceProjection(max_iter=max_iter, random_state=random_state).fit(rows[fit], codes[fit])
    projected = projection.transform(rows)
    before = _probe_accuracy(rows[fit], codes[fit], rows[test], codes[test], random_state)
    after = _probe_accuracy(projected[fit], codes[fit], projected[test], codes[test], random_state)
    majority = float(np.max(np.bincount(codes[test])) / test.size)
    queries = np.sort(rng.choice(rows.shape[0], min(_SAMPLE_QUERIES, rows.shape[0]), replace=False))
    found_before = knn(rows, k, query_rows=queries, metric=metric, random_state=random_state)
    found_after = knn(projected, k, query_rows=queries, metric=metric, random_state=random_state)
    other_scores = {}
    for name, labels in named.items():
        called = name if isinstance(others, Mapping) else labels_name(data, name)
        other_codes = _encode_labels(labels, rows.shape[0], called)[1]
        other_scores[name] = tuple(
            float(np.mean(_knn_votes(found.indices, other_codes) == other_codes[queries]))
            for found in (found_before, found_after)
        )
    kept = np.mean([np.isin(a, b).mean() for a, b in zip(found_after.indices, found_before.indices, strict=True)])
    return AttributeRemoval(
        projection=projection,
        vectors=projected,
        probe_before=before,
        probe_after=after,
        majority=majority,
        n_directions=int(projection.directions_.shape[0]),
        others=other_scores,
        neighbours_kept=float(kept),
        k=k,
        n_queries=int(queries.size),
    )
