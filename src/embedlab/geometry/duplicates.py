"""Exact duplicates, near-duplicates and kNN-distance outliers of an embedding set.

Exact duplicates (byte-identical rows) break distance-ratio estimators and inflate kNN accuracy; the
``keep_mask`` of :func:`exact_duplicates` excludes them. Near-duplicates are pairs above a cosine-similarity
threshold among each row's k nearest neighbours; outliers are rows whose k-th neighbour is unusually far.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from embedlab._checks import check_int
from embedlab._json import plain
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io import row_hashes
from embedlab.neighbors import KnnResult

__all__ = [
    "ExactDuplicates",
    "NearDuplicates",
    "Outliers",
    "exact_duplicates",
    "knn_outliers",
    "modified_z_scores",
    "near_duplicates",
    "similar_pairs",
]

logger = logging.getLogger(__name__)

#: Consistency constants of the Iglewicz-Hoaglin modified z-score: 0.6745 = Phi^-1(0.75) for the median absolute
#: deviation, 0.7979 = sqrt(2 / pi) for the mean absolute deviation (its fallback when the MAD is 0).
_MAD_SCALE = 0.6745
_MEAN_AD_SCALE = 0.7979


def _id_of(ids: np.ndarray | None, position: int) -> object:
    return int(position) if ids is None else plain(ids[position])


def _check_ids(ids: np.ndarray | None, n: int) -> np.ndarray | None:
    if ids is None:
        return None
    ids = np.asarray(ids)
    if ids.shape != (n,):
        raise EmbeddingDataError(f"ids: {ids.size} ids for {n} rows; give exactly one id per row.")
    return ids


# --------------------------------------------------------------------------------------------- exact duplicates


@dataclass(frozen=True)
class ExactDuplicates:
    """Groups of byte-identical rows.

    Attributes
    ----------
    n_rows : int
        Rows examined.
    groups : int
        Distinct rows that occur more than once.
    rows : int
        Rows that repeat an earlier row (``n_rows - keep_mask.sum()``).
    pairs : int
        Identical unordered pairs, ``sum_g g (g - 1) / 2`` over the group sizes g.
    examples : tuple of tuple
        Up to ``max_examples`` groups, each the ids of its rows in row order; largest groups first, ties by
        the position of their first row.
    keep_mask : numpy.ndarray of shape (n_rows,), bool
        True for the first occurrence of each distinct row: ``vectors[keep_mask]`` has no exact duplicates
        (not in :meth:`to_dict`).
    group : numpy.ndarray of shape (n_rows,), int64
        Each row's group of identical rows, numbered in the order of the groups' first rows; -1 for a row that
        occurs once (not in :meth:`to_dict`).
    """

    n_rows: int
    groups: int
    rows: int
    pairs: int
    examples: tuple[tuple, ...]
    keep_mask: np.ndarray = field(repr=False)
    group: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (without ``keep_mask``)."""
        return {
            "n_rows": self.n_rows,
            "groups": self.groups,
            "rows": self.rows,
            "pairs": self.pairs,
            "examples": [list(group) for group in self.examples],
        }


def _byte_groups(vectors: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group the candidate rows by their bytes: (group label per candidate, first candidate of each group)."""
    rows = np.ascontiguousarray(vectors[candidates])
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, labels = np.unique(as_bytes, return_index=True, return_inverse=True)
    return labels.ravel(), first


def exact_duplicates(
    vectors: np.ndarray,
    *,
    ids: np.ndarray | None = None,
    max_examples: int = 10,
) -> ExactDuplicates:
    """Find groups of byte-identical rows.

    Rows are bucketed by :func:`embedlab.io.row_hashes`, and only rows whose hash repeats are compared, by
    their bytes; so a hash collision can never merge different rows. Byte identity is stricter than float
    equality only for signed zeros (``0.0`` and ``-0.0`` differ).

    Parameters
    ----------
    vectors : numpy.ndarray of shape (n, d), float32
        Assumed validated (:func:`embedlab.io.check_vectors`).
    ids : numpy.ndarray of shape (n,), optional
        Row ids for ``examples``; positions when omitted.
    max_examples : int, default=10
        Groups listed in ``examples``.

    Returns
    -------
    ExactDuplicates

    Raises
    ------
    EmbeddingDataError
        If ``ids`` does not have one entry per row.
    ConfigurationError
        If ``max_examples`` is negative.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    >>> found = exact_duplicates(X, ids=np.array(["a", "b", "c", "d"]))
    >>> found.groups, found.rows, found.pairs, found.examples, found.keep_mask.tolist()
    (1, 2, 3, (('a', 'c', 'd'),), [True, True, False, False])
    >>> found.group.tolist()
    [0, -1, 0, 0]
    """
    max_examples = check_int(max_examples, "max_examples", 0)
    vectors = np.ascontiguousarray(vectors)
    n = vectors.shape[0]
    ids = _check_ids(ids, n)
    keep = np.ones(n, dtype=bool)
    row_group = np.full(n, -1, dtype=np.int64)
    _, hash_group, hash_count = np.unique(row_hashes(vectors), return_inverse=True, return_counts=True)
    candidates = np.flatnonzero(hash_count[hash_group.ravel()] > 1)
    examples: list[tuple] = []
    groups = pairs = 0
    if candidates.size:
        labels, first = _byte_groups(vectors, candidates)
        sizes = np.bincount(labels, minlength=first.size)
        repeated = np.flatnonzero(sizes > 1)
        groups = int(repeated.size)
        pairs = int((sizes[repeated] * (sizes[repeated] - 1) // 2).sum())
        is_first = np.zeros(candidates.size, dtype=bool)
        is_first[first] = True
        keep[candidates[~is_first]] = False
        number = np.full(first.size, -1, dtype=np.int64)
        number[repeated[np.argsort(candidates[first[repeated]])]] = np.arange(repeated.size)
        row_group[candidates] = number[labels]
        order = repeated[np.lexsort((candidates[first[repeated]], -sizes[repeated]))][:max_examples]
        for group in order:
            members = candidates[labels == group]  # ascending: candidates are in row order
            examples.append(tuple(_id_of(ids, i) for i in members))
    rows = int(n - keep.sum())
    logger.debug("exact duplicates: %d groups, %d repeated rows of %d", groups, rows, n)
    return ExactDuplicates(
        n_rows=n, groups=groups, rows=rows, pairs=pairs, examples=tuple(examples), keep_mask=keep, group=row_group
    )


# ----------------------------------------------------------------------------------------------- near duplicates


@dataclass(frozen=True)
class NearDuplicates:
    """Pairs of rows whose cosine similarity reaches a threshold, among each row's k nearest neighbours.

    Attributes
    ----------
    threshold : float
        Cosine similarity at or above which a pair counts.
    k : int
        Neighbours searched per row; pairs beyond every row's k-th neighbour are not seen.
    pairs : int
        Unordered pairs at or above the threshold, each counted once (exact duplicates included).
    pairs_not_exact : int or None
        Those pairs whose rows are not byte-identical; None when ``vectors`` was not given (the graph alone
        cannot tell an exact duplicate from a pair at similarity 1.0).
    rows : int
        Rows in at least one such pair.
    examples : tuple of dict
        Up to ``max_examples`` pairs ``{"a": id, "b": id, "similarity": float}`` (``a`` the earlier row), by
        decreasing similarity, ties by row order; exact duplicates are left out when ``vectors`` was given.
    """

    threshold: float
    k: int
    pairs: int
    pairs_not_exact: int | None
    rows: int
    examples: tuple[dict, ...]

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "threshold": self.threshold,
            "k": self.k,
            "pairs": self.pairs,
            "pairs_not_exact": self.pairs_not_exact,
            "rows": self.rows,
            "examples": [dict(example) for example in self.examples],
        }


def similar_pairs(graph: KnnResult, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unordered pairs ``(a, b)``, ``a < b``, of a cosine kNN graph at similarity >= ``threshold``, each once
    with the larger similarity of its two directions, sorted by ``a`` then ``b``.

    Parameters
    ----------
    graph : KnnResult
        Cosine kNN graph of a set against itself (assumed to come from the engine); -1 entries are skipped.
    threshold : float

    Returns
    -------
    a, b : numpy.ndarray of shape (m,), int64
    similarity : numpy.ndarray of shape (m,), float64

    Examples
    --------
    >>> import numpy as np
    >>> from embedlab.neighbors import knn
    >>> X = np.array([[1.0, 0.0], [0.999, 0.02], [0.0, 1.0]], dtype=np.float32)
    >>> a, b, sim = similar_pairs(knn(X, 2, metric="cosine"), 0.99)
    >>> a.tolist(), b.tolist()
    ([0], [1])
    """
    indices = np.asarray(graph.indices)
    similarity = 1.0 - np.asarray(graph.distances, dtype=np.float64)
    rows = np.broadcast_to(np.arange(indices.shape[0], dtype=np.int64)[:, None], indices.shape)
    hit = (indices >= 0) & (indices != rows) & (similarity >= threshold)
    a = np.minimum(rows[hit], indices[hit])
    b = np.maximum(rows[hit], indices[hit])
    sim = similarity[hit]
    order = np.lexsort((-sim, b, a))  # by pair, the larger similarity of its two directions first
    a, b, sim = a[order], b[order], sim[order]
    first = np.ones(a.size, dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[first], b[first], sim[first]


def _identical(vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether rows a[i] and b[i] are byte-identical."""
    words = np.ascontiguousarray(vectors).view(np.uint8)
    return (words[a] == words[b]).all(axis=1)


def near_duplicates(
    graph: KnnResult,
    *,
    ids: np.ndarray | None = None,
    vectors: np.ndarray | None = None,
    threshold: float = 0.98,
    max_examples: int = 20,
) -> NearDuplicates:
    """Near-duplicate pairs: cosine similarity at or above ``threshold`` among the k nearest neighbours.

    Every pair (i, j) with j in the kNN list of i (or i in that of j) and ``1 - distance >= threshold`` is
    counted once. Pairs where neither row is among the other's k nearest neighbours are not seen: a row with
    more than k near-duplicates has only its k nearest reported, so use a ``k`` at least as large as the
    groups you expect.

    Parameters
    ----------
    graph : KnnResult
        Cosine kNN graph of the set against itself, self excluded (``knn_graph(emb, k, metric="cosine")``);
        assumed to come from the engine.
    ids : numpy.ndarray of shape (n,), optional
        Row ids for ``examples``; positions when omitted.
    vectors : numpy.ndarray of shape (n, d), optional
        The vectors the graph was built from. When given, pairs of byte-identical rows are told apart:
        ``pairs_not_exact`` counts the others, and ``examples`` leaves exact duplicates out (report those with
        :func:`exact_duplicates`). When omitted, ``pairs_not_exact`` is None.
    threshold : float, default=0.98
        Cosine similarity in (0, 1].
    max_examples : int, default=20
        Pairs listed in ``examples``.

    Returns
    -------
    NearDuplicates

    Raises
    ------
    ConfigurationError
        If the graph's metric is not cosine, ``threshold`` is outside (0, 1], ``max_examples`` is negative,
        or ``vectors`` does not match the graph.
    EmbeddingDataError
        If ``ids`` does not have one entry per row.

    References
    ----------
    Abbas, Tirumala, Simig, Ganguli and Morcos (2023), "SemDeDup: Data-efficient learning at web-scale
    through semantic deduplication", arXiv:2303.09540 (a threshold on the cosine similarity of embeddings).

    Examples
    --------
    >>> import numpy as np
    >>> from embedlab.neighbors import knn
    >>> X = np.array([[1.0, 0.0], [0.999, 0.02], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    >>> found = near_duplicates(knn(X, 2, metric="cosine"), vectors=X, threshold=0.99)
    >>> found.pairs, found.pairs_not_exact, found.rows, [(e["a"], e["b"]) for e in found.examples]
    (3, 2, 3, [(0, 1), (1, 3)])
    """
    if graph.metric != "cosine":
        raise ConfigurationError(
            f"near_duplicates needs a cosine kNN graph, got metric={graph.metric!r}; build it with metric='cosine'."
        )
    if not 0.0 < threshold <= 1.0:
        raise ConfigurationError(f"threshold must be a cosine similarity in (0, 1], got {threshold}.")
    max_examples = check_int(max_examples, "max_examples", 0)
    n = len(graph)
    ids = _check_ids(ids, n)
    a, b, sim = similar_pairs(graph, float(threshold))
    exact = np.zeros(a.size, dtype=bool)
    pairs_not_exact = None
    if vectors is not None:
        if vectors.shape[0] != n:
            raise ConfigurationError(f"vectors have {vectors.shape[0]} rows but the graph has {n}.")
        exact = _identical(vectors, a, b)
        pairs_not_exact = int(a.size - exact.sum())
    shown = np.flatnonzero(~exact)
    shown = shown[np.lexsort((b[shown], a[shown], -sim[shown]))][:max_examples]
    examples = tuple(
        {"a": _id_of(ids, a[i]), "b": _id_of(ids, b[i]), "similarity": float(min(sim[i], 1.0))} for i in shown
    )
    rows = int(np.unique(np.concatenate([a, b])).size)
    logger.debug("near duplicates at %.3f: %d pairs over %d rows", threshold, a.size, rows)
    return NearDuplicates(
        threshold=float(threshold),
        k=graph.k,
        pairs=int(a.size),
        pairs_not_exact=pairs_not_exact,
        rows=rows,
        examples=examples,
    )


# ------------------------------------------------------------------------------------------------------ outliers


@dataclass(frozen=True)
class Outliers:
    """Rows whose distance to their k-th nearest neighbour is unusually large.

    Attributes
    ----------
    k : int
        The neighbour whose distance is the score.
    threshold : float
        Modified z-score above which a row is an outlier.
    count : int
        Outliers found.
    ids : tuple
        Ids of the outliers with the largest scores, by decreasing score (at most ``top``).
    scores : tuple of float
        Their scores (distance to the k-th neighbour, in the graph's metric).
    z_scores : tuple of float
        Their modified z-scores.
    median_score : float
        Median score over all rows.
    score : numpy.ndarray of shape (n,), float64
        Score of every row (not in :meth:`to_dict`).
    z : numpy.ndarray of shape (n,), float64
        Modified z-score of every row's log score (not in :meth:`to_dict`).
    """

    k: int
    threshold: float
    count: int
    ids: tuple
    scores: tuple[float, ...]
    z_scores: tuple[float, ...]
    median_score: float
    score: np.ndarray = field(repr=False)
    z: np.ndarray = field(repr=False)

    @property
    def mask(self) -> np.ndarray:
        """True for every outlier row."""
        return self.z > self.threshold

    def to_dict(self) -> dict:
        """JSON-ready dictionary (without the per-row arrays)."""
        return {
            "k": self.k,
            "threshold": self.threshold,
            "count": self.count,
            "ids": list(self.ids),
            "scores": list(self.scores),
            "z_scores": list(self.z_scores),
            "median_score": self.median_score,
        }


def _kth_distance(distances: np.ndarray) -> np.ndarray:
    """Distance to the k-th neighbour; the farthest found one where an approximate search found fewer."""
    finite = np.isfinite(distances)
    if not finite.any(axis=1).all():
        bad = int((~finite.any(axis=1)).sum())
        raise EmbeddingDataError(f"{bad} rows have no neighbour in the graph; search exactly or with a wider beam.")
    score = np.where(finite, distances, -np.inf).max(axis=1)
    missing = int((~finite[:, -1]).sum())
    if missing:
        logger.info("%d rows lack a k-th neighbour; their farthest found neighbour is used", missing)
    return np.maximum(score, 0.0)


def modified_z_scores(values: np.ndarray) -> np.ndarray:
    """Iglewicz-Hoaglin modified z-scores: ``0.6745 (x - median) / MAD``.

    When the median absolute deviation is 0 (more than half the values equal), the mean absolute deviation
    is used instead, ``0.7979 (x - median) / MeanAD``; when that is 0 too (all values equal), every score is 0.

    Parameters
    ----------
    values : numpy.ndarray of shape (n,), finite

    Returns
    -------
    numpy.ndarray of shape (n,), float64

    References
    ----------
    Iglewicz and Hoaglin (1993), "How to Detect and Handle Outliers", ASQC Basic References in Quality
    Control 16.

    Examples
    --------
    >>> import numpy as np
    >>> modified_z_scores(np.array([1.0, 2.0, 3.0, 4.0, 100.0])).round(2).tolist()
    [-1.35, -0.67, 0.0, 0.67, 65.43]
    """
    x = np.asarray(values, dtype=np.float64)
    deviation = x - np.median(x)
    mad = float(np.median(np.abs(deviation)))
    if mad > 0.0:
        return _MAD_SCALE * deviation / mad
    mean_ad = float(np.mean(np.abs(deviation)))
    if mean_ad > 0.0:
        return _MEAN_AD_SCALE * deviation / mean_ad
    return np.zeros_like(x)


def knn_outliers(
    distances: np.ndarray,
    *,
    ids: np.ndarray | None = None,
    threshold: float = 3.5,
    top: int = 20,
    min_score: float = 1e-6,
) -> Outliers:
    """Outliers by distance to the k-th nearest neighbour, flagged by a robust z-score of its logarithm.

    The score of a row is its distance to its k-th neighbour (the last column). Outliers are the rows whose
    modified z-score of the log score (:func:`modified_z_scores`) exceeds ``threshold``; the logarithm makes
    the test scale-free and the right tail of kNN distances closer to symmetric. Scores at or below
    ``min_score`` (rows with k or more exact copies) are raised to half the smallest larger score before the
    logarithm: they rank as the most central rows, all alike, without producing infinities. If no score
    exceeds ``min_score`` there are no outliers.

    On a Gaussian cloud the extreme tail itself scores above 3.5 (with n=2000, d=16, k=10 the largest
    modified z-score is 3.3 to 4.5 over seeds, always at the largest-norm rows); raise ``threshold`` to keep
    only points clearly detached from the data.

    Parameters
    ----------
    distances : numpy.ndarray of shape (n, k)
        Neighbour distances in the ``KnnResult`` convention (ascending, self excluded; any metric with
        non-negative distances), assumed to come from the engine. Where an approximate search found fewer
        than k neighbours (distance inf), the farthest found neighbour is used.
    ids : numpy.ndarray of shape (n,), optional
        Row ids for ``ids``; positions when omitted.
    threshold : float, default=3.5
        Modified z-score above which a row is an outlier (3.5 is Iglewicz and Hoaglin's recommendation).
    top : int, default=20
        Outliers listed in ``ids`` / ``scores``.
    min_score : float, default=1e-6
        Scores at or below this count as 0. Float32 round-off puts the cosine distance between identical
        vectors at up to about 1e-7 rather than 0, and ratios of such values would be read as huge z-scores
        (the MAD is 0 when most rows are copies). Use 0 for Euclidean distances of vectors of tiny scale.

    Returns
    -------
    Outliers

    Raises
    ------
    ConfigurationError
        If ``threshold`` is not a positive number, ``top`` or ``min_score`` is negative, or ``distances`` is
        not 2-D.
    EmbeddingDataError
        If a row has no neighbour at all, or ``ids`` does not have one entry per row.

    References
    ----------
    Ramaswamy, Rastogi and Shim (2000), "Efficient algorithms for mining outliers from large data sets",
    SIGMOD (the k-th nearest neighbour distance as outlier score).
    Iglewicz and Hoaglin (1993), "How to Detect and Handle Outliers", ASQC (the modified z-score).

    Examples
    --------
    >>> import numpy as np
    >>> from embedlab.neighbors import knn
    >>> X = np.r_[np.random.default_rng(0).normal(size=(200, 4)), np.full((1, 4), 20.0)]
    >>> found = knn_outliers(knn(X, 5, metric="l2").distances)
    >>> found.count, found.ids
    (1, (200,))
    """
    if not np.isfinite(threshold) or threshold <= 0:
        raise ConfigurationError(f"threshold must be a positive modified z-score, got {threshold}.")
    top = check_int(top, "top", 0)
    if not min_score >= 0.0:
        raise ConfigurationError(f"min_score must be >= 0, got {min_score}.")
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] == 0:
        raise ConfigurationError(f"distances must have shape (n, k) with k >= 1, got {d.shape}.")
    ids = _check_ids(ids, d.shape[0])
    score = _kth_distance(d)
    above = score > min_score
    if above.any():
        z = modified_z_scores(np.log(np.where(above, score, 0.5 * score[above].min())))
    else:
        z = np.zeros_like(score)
    outlier = np.flatnonzero(z > threshold)
    listed = outlier[np.argsort(-score[outlier], kind="stable")][:top]
    logger.debug("kNN outliers: %d of %d rows above z = %.2f", outlier.size, score.size, threshold)
    return Outliers(
        k=int(d.shape[1]),
        threshold=float(threshold),
        count=int(outlier.size),
        ids=tuple(_id_of(ids, i) for i in listed),
        scores=tuple(float(score[i]) for i in listed),
        z_scores=tuple(float(z[i]) for i in listed),
        median_score=float(np.median(score)),
        score=score,
        z=z,
    )
