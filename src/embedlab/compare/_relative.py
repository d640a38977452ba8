"""Relative representations: each row described by its cosine similarities to a few anchor items, which two
models embed alike, so that a probe trained on one model's relative vectors works on the other's."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from embedlab._checks import check_choice, check_int
from embedlab._json import json_safe
from embedlab.cluster import KMeans
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io import EmbeddingSet, pair_by_id
from embedlab.io.validation import prepare, unit_rows

__all__ = ["AnchorMethod", "StitchingResult", "choose_anchors", "relative_transform", "zero_shot_stitching"]

AnchorMethod = Literal["random", "kmeans", "farthest"]


def choose_anchors(
    X: object, n_anchors: int, *, method: AnchorMethod = "random", random_state: int | None = 0
) -> np.ndarray:
    """Choose anchor rows of ``X`` for relative representations.

    Parameters
    ----------
    X : array-like of shape (n, d)
    n_anchors : int
        Anchors wanted, at most ``n``.
    method : {"random", "kmeans", "farthest"}, default="random"
        ``"random"``: a uniform sample, as in Moschella et al.; ``"kmeans"``: the row of highest cosine to each
        spherical k-means centre (one per cluster, so anchors are distinct); ``"farthest"``: farthest-point
        sampling in cosine distance from a seeded random first row, which spreads anchors over the space.
    random_state : int or None, default=0

    Returns
    -------
    numpy.ndarray of shape (n_anchors,), int64
        Row positions, ascending (fewer for ``"kmeans"`` only if a cluster ends empty).

    References
    ----------
    Moschella, Maiorca, Fumero, Norelli, Locatello and Rodolà (2023), "Relative representations enable
    zero-shot latent space communication", ICLR.

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.05]])
    >>> choose_anchors(X, 3, method="farthest", random_state=0).tolist()
    [0, 2, 3]
    """
    rows = prepare(X, "cosine").vectors
    n = rows.shape[0]
    n_anchors = check_int(n_anchors, "n_anchors", maximum=n, why="the rows of X")
    check_choice(method, "method", ("random", "kmeans", "farthest"))
    rng = np.random.default_rng(random_state)
    if method == "random":
        chosen = rng.choice(n, size=n_anchors, replace=False)
    elif method == "kmeans":
        model = KMeans(n_clusters=n_anchors, metric="cosine", random_state=random_state).fit(rows)
        cosine = np.einsum("ij,ij->i", rows, unit_rows(model.cluster_centers_)[model.labels_])
        chosen = np.array(
            [
                np.flatnonzero(model.labels_ == c)[np.argmax(cosine[model.labels_ == c])]
                for c in np.unique(model.labels_)
            ]
        )
    else:
        chosen = np.empty(n_anchors, dtype=np.int64)
        chosen[0] = rng.integers(n)
        distance = 1.0 - rows @ rows[chosen[0]]
        for i in range(1, n_anchors):
            chosen[i] = int(np.argmax(distance))
            distance = np.minimum(distance, 1.0 - rows @ rows[chosen[i]])
    return np.sort(chosen).astype(np.int64)


def relative_transform(X: object, anchors_X: object) -> np.ndarray:
    """The relative representation of each row: its cosine similarity to each anchor.

    Parameters
    ----------
    X : array-like of shape (n, d)
    anchors_X : array-like of shape (m, d)
        The anchors' vectors in the same space as ``X``.

    Returns
    -------
    numpy.ndarray of shape (n, m), float32

    References
    ----------
    Moschella et al. (2023), "Relative representations enable zero-shot latent space communication", ICLR.

    Examples
    --------
    >>> print(relative_transform([[1.0, 1.0]], [[2.0, 0.0], [0.0, -1.0]]).round(4))
    [[ 0.7071 -0.7071]]
    """
    X = prepare(X, "cosine").vectors
    anchors = prepare(anchors_X, "cosine", name="anchors_X").vectors
    if anchors.shape[1] != X.shape[1]:
        raise EmbeddingDataError(
            f"anchors_X has dimension {anchors.shape[1]} but X has {X.shape[1]}: anchors must be in X's space."
        )
    return X @ anchors.T


@dataclass(frozen=True)
class StitchingResult:
    """Accuracies of a probe trained on A's relative vectors.

    Attributes
    ----------
    stitched_accuracy : float
        On B's relative vectors of the test rows (zero-shot: the probe never saw B).
    within_accuracy : float
        On A's relative vectors of the test rows (the reference).
    absolute_accuracy : float
        Of the same probe trained and tested on A's absolute coordinates: what the relative projection costs
        within A. (Absolute coordinates cannot be stitched: B's axes mean nothing to a probe of A's.)
    chance_accuracy : float
        Of always predicting the most frequent training label.
    n_anchors, n_train, n_test : int
    method : str
        How the anchors were chosen.
    """

    stitched_accuracy: float
    within_accuracy: float
    absolute_accuracy: float
    chance_accuracy: float
    n_anchors: int
    n_train: int
    n_test: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


def _labels_of_pairs(A: EmbeddingSet | object, labels: object, ids: np.ndarray) -> np.ndarray:
    if isinstance(labels, str):
        if not isinstance(A, EmbeddingSet):
            raise ConfigurationError(f"labels={labels!r} names a column, but A is an array: give the labels.")
        labels = A.column(labels)
    labels = np.asarray(labels)
    n_a = len(A) if isinstance(A, EmbeddingSet) else np.shape(A)[0]
    if labels.shape != (n_a,):
        raise EmbeddingDataError(f"labels has shape {labels.shape} but A has {n_a} rows: give one label per row of A.")
    if not isinstance(A, EmbeddingSet):
        return labels[ids]
    position = {key: i for i, key in enumerate(A.ids.tolist())}
    return labels[[position[key] for key in ids.tolist()]]


def zero_shot_stitching(
    A: EmbeddingSet | object,
    B: EmbeddingSet | object,
    labels: object,
    *,
    n_anchors: int = 300,
    method: AnchorMethod = "random",
    test_size: float = 0.3,
    random_state: int | None = 0,
) -> StitchingResult:
    """Train a probe on A's relative representations and test it, unchanged, on B's.

    Rows are paired by id; anchors are chosen among A's training rows and the same items serve as anchors in
    B, so both relative spaces have the same coordinates. A logistic-regression probe is trained on A's
    relative vectors of a stratified training split and scored on the test split in A (within-space) and in B
    (stitched). Stitched accuracy close to within-space accuracy means B keeps A's angles to the anchors. The
    same probe on A's absolute coordinates gives the within-space reference without the projection.

    Parameters
    ----------
    A, B : EmbeddingSet or array-like of shapes (n, d1) and (n, d2)
        The same items in two spaces.
    labels : array-like of shape (len(A),), or str
        A class for each row of A (in A's row order), or the name of A's metadata column holding them.
    n_anchors : int, default=300
        Anchors (at most the training rows).
    method : {"random", "kmeans", "farthest"}, default="random"
        See :func:`choose_anchors`.
    test_size : float, default=0.3
        Fraction of pairs held out for testing.
    random_state : int or None, default=0
        Seed of the split, the anchors and the probe.

    Returns
    -------
    StitchingResult

    Raises
    ------
    EmbeddingDataError
        On unpaired or invalid rows, labels not matching A's rows, a missing label column, or fewer than two
        classes.

    References
    ----------
    Moschella, Maiorca, Fumero, Norelli, Locatello and Rodolà (2023), "Relative representations enable
    zero-shot latent space communication", ICLR.
    """
    pairs = pair_by_id(A, B, min_pairs=10, names=("A", "B"))
    y = _labels_of_pairs(A, labels, pairs.ids)
    if np.unique(y).size < 2:
        raise EmbeddingDataError(f"the labels of the {len(pairs)} paired rows hold one class: a probe needs two.")
    if not 0 < test_size < 1:
        raise ConfigurationError(f"test_size must be in (0, 1), got {test_size!r}.")
    stratify = y if np.unique(y, return_counts=True)[1].min() >= 2 else None
    train, test = train_test_split(
        np.arange(len(pairs)), test_size=test_size, random_state=random_state, stratify=stratify
    )
    anchors = train[
        choose_anchors(pairs.first[train], min(n_anchors, train.size), method=method, random_state=random_state)
    ]
    rel_a = relative_transform(pairs.first, pairs.first[anchors])
    rel_b = relative_transform(pairs.second, pairs.second[anchors])
    probe = LogisticRegression(max_iter=1000, random_state=random_state).fit(rel_a[train], y[train])
    absolute = LogisticRegression(max_iter=1000, random_state=random_state).fit(pairs.first[train], y[train])
    train_values, train_counts = np.unique(y[train], return_counts=True)
    majority = train_values[np.argmax(train_counts)]
    return StitchingResult(
        stitched_accuracy=float(np.mean(probe.predict(rel_b[test]) == y[test])),
        within_accuracy=float(np.mean(probe.predict(rel_a[test]) == y[test])),
        absolute_accuracy=float(np.mean(absolute.predict(pairs.first[test]) == y[test])),
        chance_accuracy=float(np.mean(y[test] == majority)),
        n_anchors=int(anchors.size),
        n_train=int(train.size),
        n_test=int(test.size),
        method=method,
    )
