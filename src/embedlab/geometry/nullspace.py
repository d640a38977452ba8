"""Removing a linearly decodable attribute from a set: iterative null-space projection (INLP)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC
from sklearn.utils import Tags, check_random_state

from embedlab._checks import check_int
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.validation import fit_rows, new_rows

__all__ = ["NullspaceProjection"]


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
