"""Predictions adjusted to the geometry of the label space: Loki, the Fréchet mean of a row's class probabilities."""

from __future__ import annotations

from typing import Literal

import numpy as np

from embedlab._checks import check_choice, check_positive
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.validation import prepare

__all__ = ["LabelMetric", "label_positions", "loki_predict"]

#: How the label space is given: a distance matrix, or label embeddings compared by one of embedlab's metrics.
LabelMetric = Literal["precomputed", "l2", "cosine"]
_LABEL_METRICS = ("precomputed", "l2", "cosine")
_BLOCK_VALUES = 2**20  # float64 values of the (rows, labels) objective held at once (8 MB)
_SHOWN = 5


def _positions(mask: np.ndarray) -> str:
    """The first positions where ``mask`` holds, for a message."""
    found = np.flatnonzero(mask)
    return ", ".join(map(str, found[:_SHOWN])) + (", ..." if found.size > _SHOWN else "")


def _probabilities(proba: object, atol: float) -> np.ndarray:
    """``proba`` as float64 rows of at least two classes, each non-negative and summing to one within ``atol``."""
    rows = prepare(proba, "l2", name="proba").vectors.astype(np.float64)
    if rows.shape[1] < 2:
        raise ConfigurationError(
            "proba has one class: its Fréchet mean is that class's label for every row, whatever the label "
            "space. Loki needs the probabilities of two or more classes."
        )
    negative = (rows < 0).any(axis=1)
    if negative.any():
        raise EmbeddingDataError(
            f"proba: {int(negative.sum())} row(s) hold negative values (rows {_positions(negative)}); "
            "give probabilities (a softmax or predict_proba output), not scores or log-probabilities."
        )
    off = np.abs(rows.sum(axis=1) - 1.0) > atol
    if off.any():
        raise EmbeddingDataError(
            f"proba: {int(off.sum())} row(s) do not sum to one within atol={atol:g} (rows {_positions(off)}); "
            "normalise each row (proba / proba.sum(axis=1, keepdims=True)) or raise atol."
        )
    return rows


def _distance_matrix(label_space: object) -> np.ndarray:
    """A precomputed label distance matrix, checked: square, finite, non-negative, symmetric, zero diagonal."""
    D = prepare(label_space, "l2", name="label_space").vectors.astype(np.float64)
    if D.shape[0] != D.shape[1]:
        raise ConfigurationError(
            f"label_space has shape {D.shape}, but metric='precomputed' takes a square matrix of the distances "
            "between every two labels; pass label embeddings with metric='l2' or 'cosine' instead."
        )
    scale = max(float(np.abs(D).max()), 1.0)
    problems = {
        "negative distances": (D < 0).any(axis=1),
        "a non-zero distance to itself": np.abs(np.diag(D)) > 1e-6 * scale,
        "distances that differ from the transposed entries (not symmetric)": (np.abs(D - D.T) > 1e-5 * scale).any(
            axis=1
        ),
    }
    for problem, rows in problems.items():
        if rows.any():
            raise EmbeddingDataError(
                f"label_space: {int(rows.sum())} label(s) have {problem} (labels {_positions(rows)}); "
                "a label metric is non-negative, symmetric and zero from a label to itself."
            )
    return D


def _observed(observed: object, n_classes: int, n_labels: int) -> np.ndarray:
    """Positions in the label space of the ``n_classes`` classes of ``proba``, in its column order."""
    if observed is None:
        if n_labels != n_classes:
            raise ConfigurationError(
                f"label_space has {n_labels} labels but proba {n_classes} classes; pass observed=, the position "
                f"among the {n_labels} labels of each of proba's {n_classes} columns."
            )
        return np.arange(n_classes)
    positions = np.asarray(observed)
    if positions.shape != (n_classes,) or not np.issubdtype(positions.dtype, np.integer):
        raise ConfigurationError(
            f"observed must hold {n_classes} integer label positions (one per column of proba), got "
            f"{positions.size} values of dtype {positions.dtype}."
        )
    if positions.min() < 0 or positions.max() >= n_labels or np.unique(positions).size != n_classes:
        raise ConfigurationError(
            f"observed must be {n_classes} distinct positions in 0 .. {n_labels - 1} (the labels of label_space), "
            f"got {positions.tolist()[:10]}."
        )
    return positions.astype(np.int64)


def label_positions(labels: object, classes: object) -> np.ndarray:
    """The position among ``labels`` (the label space's names) of each of ``classes`` (``proba``'s columns), for
    :func:`loki_predict`'s ``observed``.

    Raises
    ------
    ConfigurationError
        When a class is not among the labels (the message names it) or is given twice.

    Examples
    --------
    >>> label_positions(["cat", "lion", "dog"], ["dog", "cat"]).tolist()
    [2, 0]
    """
    names = [str(name).strip() for name in np.asarray(labels).tolist()]
    wanted = [str(name).strip() for name in np.asarray(classes).tolist()]
    missing = [name for name in wanted if name not in names]
    if missing:
        raise ConfigurationError(
            f"classes {missing[:_SHOWN]} are not labels of the label space (its labels: {names[:_SHOWN]}...)."
        )
    if len(set(wanted)) != len(wanted):
        raise ConfigurationError("each class may be given once.")
    position = {name: i for i, name in enumerate(names)}
    return np.array([position[name] for name in wanted], dtype=np.int64)


def _squared_distances(label_space: object, metric: LabelMetric, observed: object, n_classes: int) -> np.ndarray:
    """``(n_labels, n_classes)``: the squared distance from every label to each observed class."""
    if metric == "precomputed":
        D = _distance_matrix(label_space)
        return D[:, _observed(observed, n_classes, D.shape[0])] ** 2
    points = prepare(label_space, metric, name="label_space").vectors.astype(np.float64)
    classes = points[_observed(observed, n_classes, points.shape[0])]
    if metric == "cosine":
        return (1.0 - np.clip(points @ classes.T, -1.0, 1.0)) ** 2
    squared = (points**2).sum(axis=1)[:, None] - 2.0 * points @ classes.T + (classes**2).sum(axis=1)[None, :]
    return np.maximum(squared, 0.0)


def loki_predict(
    proba: np.ndarray,
    label_space: np.ndarray,
    *,
    metric: LabelMetric = "precomputed",
    observed: np.ndarray | None = None,
    atol: float = 1e-4,
) -> np.ndarray:
    """Loki: each row's prediction is the label that minimises the expected squared distance to its classes.

    For a row with probabilities ``P_k`` over K classes whose labels ``λ_k`` sit in a label space of L >= K
    labels with metric d, the prediction is the Fréchet mean of the classes weighted by the probabilities,

        ŷ = argmin over y in the label space of  Σ_k P_k d(y, λ_k)²,

    the paper's drop-in replacement of the argmax. Under the discrete metric (d = 1 between any two labels) this
    is the argmax of ``P``; under a metric where some labels lie between the observed classes, it can be a label
    the model was never trained on. The objective is computed in float64 as ``P @ (d²)ᵀ``, a block of rows at a
    time; ties go to the lower label position.

    Parameters
    ----------
    proba : array-like of shape (n, K)
        Class probabilities (a softmax or ``predict_proba``), K >= 2, each row non-negative and summing to one.
    label_space : array-like of shape (L, L) or (L, d)
        The distances between every two labels (``metric="precomputed"``: square, non-negative, symmetric, zero
        diagonal), or one embedding per label compared by ``metric``.
    metric : {"precomputed", "l2", "cosine"}, default="precomputed"
        ``"l2"``: Euclidean distance between label embeddings; ``"cosine"``: 1 - cosine similarity (zero
        embeddings are refused).
    observed : array-like of int, shape (K,), optional
        The position in the label space of each column of ``proba``. Required when L > K; by default column k
        is label k.
    atol : float, default=1e-4
        How far a row's sum may be from one.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        The position in the label space of each row's prediction.

    Raises
    ------
    EmbeddingDataError
        If ``proba`` holds NaN/Inf or negative values or a row does not sum to one (the rows are named), or a
        distance matrix is negative, asymmetric or non-zero on its diagonal (the labels are named).
    ConfigurationError
        If ``proba`` has one class, a distance matrix is not square, the label space has another number of labels
        than ``proba`` has classes and ``observed`` is not given, ``observed`` is not K distinct label positions,
        or ``metric`` is unknown.

    References
    ----------
    Roberts, Li, Adila, Cromp, Huang, Zhao and Sala (2023), "Geometry-Aware Adaptation for Pretrained Models",
    NeurIPS (Loki), arXiv:2307.12226.

    Examples
    --------
    Five labels on a line, a model trained on labels 0, 2 and 4 only: torn between 0 and 2 it predicts 1, and
    the label nearest the weighted mean position in general (3.4, then 3.7, for the next two rows).

    >>> import numpy as np
    >>> line = np.abs(np.subtract.outer(np.arange(5.0), np.arange(5.0)))
    >>> proba = np.array([[0.5, 0.5, 0.0], [0.1, 0.1, 0.8], [0.05, 0.05, 0.9]])
    >>> loki_predict(proba, line, observed=[0, 2, 4])
    array([1, 3, 4])
    """
    check_choice(metric, "metric", _LABEL_METRICS)
    atol = check_positive(atol, "atol")
    P = _probabilities(proba, atol)
    squared = _squared_distances(label_space, metric, observed, P.shape[1])
    predictions = np.empty(P.shape[0], dtype=np.int64)
    step = max(1, _BLOCK_VALUES // squared.shape[0])
    for start in range(0, P.shape[0], step):
        predictions[start : start + step] = np.argmin(P[start : start + step] @ squared.T, axis=1)
    return predictions
