"""Names for clusters: class-based TF-IDF keywords, S³ topic axes and their terms, the members closest to each
center, and medoids.

Every function but :func:`semantic_axes` returns one entry per cluster, keyed by the cluster label in ascending
order; the noise label -1 (HDBSCAN and friends) gets no entry. Distances are ``"cosine"`` (1 - cosine similarity
of the unit-normalised rows, so zero rows are refused) or ``"l2"`` (Euclidean), computed in float64 block by
block so memory stays bounded whatever the size of a cluster.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int
from embedlab._json import plain
from embedlab.cluster._kmeans import ClusterMetric
from embedlab.embed import embed_texts
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.validation import prepare

__all__ = [
    "SemanticAxes",
    "TermImportance",
    "closest_members",
    "ctfidf_keywords",
    "medoids",
    "s3_keywords",
    "semantic_axes",
]

logger = logging.getLogger(__name__)


NOISE = -1
_METRICS = ("cosine", "l2")
_BLOCK_VALUES = 2**20  # float64 values per block of rows or of distances (8 MB)
#: CountVectorizer's messages when no term survives; any other ValueError is a bad setting.
_EMPTY_VOCABULARY = ("empty vocabulary", "no terms remain", "max_df corresponds to < documents than min_df")
#: How S³ weighs a term on an axis: its coordinate, its cosine to the axis, or the square of one times the other.
TermImportance = Literal["axial", "angular", "combined"]
_IMPORTANCES = ("axial", "angular", "combined")


def _smallest(values: np.ndarray, tiebreak: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` smallest values, ascending, ties by ascending ``tiebreak``, without a full sort."""
    if values.size > n:
        kth = np.partition(values, n - 1)[n - 1]
        candidates = np.flatnonzero(values <= kth)
    else:
        candidates = np.arange(values.size)
    order = np.lexsort((tiebreak[candidates], values[candidates]))
    return candidates[order[:n]]


def _clean_texts(texts: Iterable[object]) -> list[str]:
    """The texts as strings, None and NaN (missing values of a data frame) as empty strings."""
    cleaned = []
    for position, text in enumerate(texts):
        if text is None or (isinstance(text, float) and math.isnan(text)):
            text = ""
        elif not isinstance(text, str):
            raise EmbeddingDataError(
                f"texts: entry {position} is a {type(text).__name__}, not a string; give str or None."
            )
        cleaned.append(text)
    return cleaned


def _term_counts(
    documents: list[str],
    caller: str,
    stop_words: str | list[str] | None,
    ngram_range: tuple[int, int],
    min_df: int | float,
    max_features: int | None,
) -> tuple[sparse.csr_matrix, np.ndarray] | None:
    """The documents x terms counts and the terms (alphabetical) of CountVectorizer, or None when no term survives."""
    n_empty = sum(1 for text in documents if not text.strip())
    if n_empty:
        logger.info("%s: %d of %d texts are missing or empty.", caller, n_empty, len(documents))
    vectorizer = CountVectorizer(
        stop_words=stop_words, ngram_range=ngram_range, min_df=min_df, max_features=max_features
    )
    try:
        counts = vectorizer.fit_transform(documents)
    except ValueError as err:
        if not any(message in str(err) for message in _EMPTY_VOCABULARY):
            raise ConfigurationError(f"{caller}: invalid vectorizer setting: {err}") from err
        logger.info("%s: no term survives (%s); every keyword list is empty.", caller, err)
        return None
    return counts, vectorizer.get_feature_names_out()


def ctfidf_keywords(
    texts: Iterable[str | None],
    labels: np.ndarray | Sequence[Hashable],
    *,
    top_n: int = 10,
    stop_words: str | list[str] | None = "english",
    ngram_range: tuple[int, int] = (1, 1),
    min_df: int | float = 1,
    max_features: int | None = None,
) -> dict[Hashable, list[tuple[str, float]]]:
    """The ``top_n`` keywords of each cluster by class-based TF-IDF (c-TF-IDF).

    The documents of a cluster form one class document c. With ``tf[t, c]`` the count of term t in c
    (scikit-learn's :class:`~sklearn.feature_extraction.text.CountVectorizer`), each class row is
    L1-normalised and weighted by ``log(1 + A / f[t])``, where A is the average number of words per class
    and ``f[t]`` the count of t over all classes. The counts are taken per document and summed per cluster
    with a sparse matrix product, so n-grams never span two documents and ``min_df`` counts documents, not
    clusters; the weights stay sparse and only the top terms of each row are sorted. Unlike BERTopic, A is
    not rounded down to an integer.

    Rows labelled -1 (noise, integer labels only) are left out of the vocabulary, the counts and the result.
    None, NaN and empty texts count as empty strings (their number is logged).

    Parameters
    ----------
    texts : iterable of str or None, length n
        One text per row.
    labels : array-like of shape (n,)
        One cluster label per row, int or str; -1 is noise.
    top_n : int, default=10
        Keywords per cluster (fewer when the cluster uses fewer terms).
    stop_words : {"english"}, list of str or None, default="english"
        Words left out, as in CountVectorizer.
    ngram_range : tuple of int, default=(1, 1)
        Smallest and largest n-gram length, as in CountVectorizer.
    min_df : int or float, default=1
        Least number (int) or share (float) of documents a term must occur in.
    max_features : int or None, default=None
        Keep only the most frequent terms over all documents.

    Returns
    -------
    dict
        ``{label: [(term, weight), ...]}`` for each cluster label in ascending order, heaviest term first,
        ties by term in alphabetical order; every list is empty when no term survives (all texts empty or
        stop words only).

    Raises
    ------
    EmbeddingDataError
        If there is not one label per text, or a text is neither a string nor missing.
    ConfigurationError
        If ``top_n`` is not a positive integer or CountVectorizer rejects a setting.

    References
    ----------
    Grootendorst (2022), "BERTopic: Neural topic modeling with a class-based TF-IDF procedure",
    arXiv:2203.05794.

    Examples
    --------
    >>> texts = ["cats purr", "kittens purr softly", "rockets launch", "orbit launch window", None]
    >>> keywords = ctfidf_keywords(texts, [0, 0, 1, 1, -1], top_n=2)
    >>> {label: [term for term, _ in terms] for label, terms in keywords.items()}
    {0: ['purr', 'cats'], 1: ['launch', 'orbit']}
    >>> round(keywords[0][0][1], 4)  # 2/5 * log(1 + 5/2)
    0.5011
    """
    top_n = check_int(top_n, "top_n")
    documents = _clean_texts(texts)
    array = np.asarray(labels)
    if array.shape != (len(documents),):
        raise EmbeddingDataError(
            f"ctfidf_keywords: {len(documents)} texts but {array.size} labels of shape {array.shape}; "
            "give one label per text."
        )
    kept = np.flatnonzero(array != NOISE) if np.issubdtype(array.dtype, np.integer) else np.arange(array.size)
    values, codes = np.unique(array[kept], return_inverse=True)
    documents = [documents[i] for i in kept]
    counted = _term_counts(documents, "ctfidf_keywords", stop_words, ngram_range, min_df, max_features)
    if counted is None:
        return {plain(value): [] for value in values}
    counts, terms = counted
    one_hot = sparse.csr_matrix(
        (np.ones(len(documents)), (codes.ravel(), np.arange(len(documents)))), shape=(values.size, len(documents))
    )
    class_counts = one_hot @ counts
    frequency = np.asarray(class_counts.sum(axis=0)).ravel()
    average_words = frequency.sum() / values.size
    weights = normalize(class_counts, norm="l1", axis=1)
    weights.data *= np.log1p(average_words / frequency)[weights.indices]
    keywords = {}
    for code, value in enumerate(values):
        row = slice(weights.indptr[code], weights.indptr[code + 1])
        columns, row_weights = weights.indices[row], weights.data[row]
        # CountVectorizer numbers its terms in alphabetical order, so the column breaks ties by term.
        top = _smallest(-row_weights, columns, top_n)
        keywords[plain(value)] = [(str(terms[columns[i]]), float(row_weights[i])) for i in top]
    return keywords


def _clusters(labels: object, n_rows: int) -> list[tuple[int, np.ndarray]]:
    """``(label, ascending row positions)`` for each cluster label >= 0, in ascending label order."""
    array = np.asarray(labels)
    if array.shape != (n_rows,):
        raise ConfigurationError(
            f"labels: {array.size} labels of shape {array.shape} for {n_rows} rows; give one per row."
        )
    if n_rows == 0:
        return []
    if not np.issubdtype(array.dtype, np.integer):
        raise ConfigurationError(f"labels must be integers (-1 for noise), got dtype {array.dtype}.")
    if array.min() < NOISE:
        raise ConfigurationError(f"labels must be >= -1 (-1 for noise), found {array.min()}.")
    order = np.argsort(array, kind="stable")
    values, starts = np.unique(array[order], return_index=True)
    groups = np.split(order.astype(np.int64), starts[1:])
    return [(int(value), rows) for value, rows in zip(values, groups, strict=True) if value != NOISE]


def _pairwise(a: np.ndarray, b: np.ndarray, metric: ClusterMetric) -> np.ndarray:
    """Distances ``(len(a), len(b))`` between float64 rows prepared for ``metric`` (unit rows for cosine)."""
    if metric == "cosine":
        return np.maximum(1.0 - a @ b.T, 0.0)
    squared = np.einsum("ij,ij->i", a, a)[:, None] - 2.0 * (a @ b.T) + np.einsum("ij,ij->i", b, b)[None, :]
    return np.sqrt(np.maximum(squared, 0.0))


def _distances_to(X: np.ndarray, rows: np.ndarray, point: np.ndarray, metric: ClusterMetric) -> np.ndarray:
    """Distances from the prepared ``X[rows]`` to one prepared point, gathered block by block in float64."""
    distances = np.empty(rows.size)
    step = max(1, _BLOCK_VALUES // max(X.shape[1], 1))
    for start in range(0, rows.size, step):
        block = X[rows[start : start + step]].astype(np.float64)
        distances[start : start + len(block)] = _pairwise(block, point[None, :], metric)[:, 0]
    return distances


def closest_members(
    X: np.ndarray,
    labels: np.ndarray,
    centers: np.ndarray,
    *,
    n: int = 5,
    metric: ClusterMetric = "cosine",
) -> dict[int, np.ndarray]:
    """Row positions of the ``n`` members of each cluster closest to its center, nearest first.

    Exact: each cluster's distances to its center are computed block by block (no rows x centers matrix);
    ties go to the lower row position. Rows labelled -1 (noise) are skipped.

    Parameters
    ----------
    X : numpy.ndarray of shape (n_rows, d)
        Validated by :func:`embedlab.io.validation.prepare` once the labels are checked.
    labels : numpy.ndarray of int, shape (n_rows,)
        Cluster of each row, ``0 .. k-1`` indexing the rows of ``centers``; -1 is noise.
    centers : numpy.ndarray of shape (k, d)
        One center per cluster, in the space of ``X``.
    n : int, default=5
        Members per cluster (all of them when the cluster is smaller).
    metric : {"cosine", "l2"}, default="cosine"
        Cosine distance on unit-normalised rows, or Euclidean distance.

    Returns
    -------
    dict of int to numpy.ndarray of int64
        ``{label: positions}`` for each cluster present in ``labels``, in ascending label order.

    Raises
    ------
    ConfigurationError
        If the labels are not one integer >= -1 per row, a label has no row in ``centers``, the centers do not
        have d columns, ``n`` is not a positive integer or the metric is unknown.
    EmbeddingDataError
        If a row of ``X`` or a center holds NaN or Inf values, or is all zeros under cosine.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0, 0], [1, 0], [3, 0], [10, 0], [12, 0]], dtype=np.float32)
    >>> closest_members(X, np.array([0, 0, 0, 1, 1]), np.array([[1.2, 0.0], [11.0, 0.0]]), n=2, metric="l2")
    {0: array([1, 0]), 1: array([3, 4])}
    """
    n = check_int(n, "n")
    check_choice(metric, "metric", _METRICS)
    X = np.asarray(X)
    clusters = _clusters(labels, X.shape[0])
    centers = np.asarray(centers)
    if centers.ndim != 2 or centers.shape[1] != X.shape[1]:
        raise ConfigurationError(f"centers must have shape (k, {X.shape[1]}) like the vectors, got {centers.shape}.")
    if clusters and clusters[-1][0] >= centers.shape[0]:
        raise ConfigurationError(
            f"labels go up to {clusters[-1][0]} but centers has {centers.shape[0]} rows; "
            "give one center row per cluster (labels 0 .. k-1)."
        )
    if not clusters:
        return {}
    X = prepare(X, metric).vectors
    prepared = prepare(centers, metric, name="centers").vectors.astype(np.float64)
    members = {}
    for label, rows in clusters:
        distances = _distances_to(X, rows, prepared[label], metric)
        members[label] = rows[_smallest(distances, rows, n)]
    return members


def _medoid(points: np.ndarray, metric: ClusterMetric) -> int:
    """Position in ``points`` (prepared) of the row with the least sum of distances to all rows."""
    totals = np.empty(points.shape[0])
    step = max(1, _BLOCK_VALUES // points.shape[0])
    for start in range(0, points.shape[0], step):
        totals[start : start + step] = _pairwise(points[start : start + step], points, metric).sum(axis=1)
    return int(np.argmin(totals))


def medoids(
    X: np.ndarray,
    labels: np.ndarray,
    *,
    metric: ClusterMetric = "cosine",
    sample: int = 2000,
    random_state: int | None = 0,
) -> dict[int, int]:
    """Row position of the medoid of each cluster: the member with the least sum of distances to the others.

    Exact for clusters of at most ``sample`` members. In a larger cluster both the candidates and the sums
    run over a seeded uniform sample of ``sample`` members drawn without replacement, so the result is the
    medoid of that sample. The distances are computed in blocks of about a million values (8 MB), so memory
    stays at ``sample x d`` float64 plus a few such blocks (and, under cosine, a unit-normalised copy of ``X``
    unless its rows already have unit norm). Ties go to the lower row position; rows labelled -1 (noise) are
    skipped.

    Parameters
    ----------
    X : numpy.ndarray of shape (n_rows, d)
        Validated by :func:`embedlab.io.validation.prepare` once the labels are checked.
    labels : numpy.ndarray of int, shape (n_rows,)
        Cluster of each row; -1 is noise.
    metric : {"cosine", "l2"}, default="cosine"
        Cosine distance on unit-normalised rows, or Euclidean distance.
    sample : int, default=2000
        Largest cluster solved exactly (the cost is quadratic in it).
    random_state : int or None, default=0
        Seed of the samples, drawn cluster by cluster in ascending label order.

    Returns
    -------
    dict of int to int
        ``{label: row position}`` for each cluster present in ``labels``, in ascending label order.

    Raises
    ------
    ConfigurationError
        If the labels are not one integer >= -1 per row, ``sample`` is not a positive integer or the metric
        is unknown.
    EmbeddingDataError
        If a row of ``X`` holds NaN or Inf values, or is all zeros under cosine.

    References
    ----------
    Kaufman and Rousseeuw (1990), "Finding Groups in Data: An Introduction to Cluster Analysis", Wiley,
    chapter 2 (partitioning around medoids).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0, 0], [1, 0], [5, 0], [10, 0], [11, 0], [13, 0]], dtype=np.float32)
    >>> medoids(X, np.array([0, 0, 0, 1, 1, 1]), metric="l2")
    {0: 1, 1: 4}
    """
    sample = check_int(sample, "sample")
    check_choice(metric, "metric", _METRICS)
    X = np.asarray(X)
    clusters = _clusters(labels, X.shape[0])
    if not clusters:
        return {}
    X = prepare(X, metric).vectors
    rng = np.random.default_rng(random_state)
    result = {}
    for label, rows in clusters:
        if rows.size > sample:
            rows = np.sort(rng.choice(rows, size=sample, replace=False))
        result[label] = int(rows[_medoid(X[rows].astype(np.float64), metric)])
    return result


@dataclass(frozen=True)
class SemanticAxes:
    """Topic axes of a corpus found by S³, each named by its terms.

    Attributes
    ----------
    keywords : dict of int to list of (str, float)
        ``{axis: [(term, importance), ...]}`` for axes ``0 .. n_components - 1``, most important term first.
    scores : numpy.ndarray of shape (n, n_components), float32
        Each document's position on each axis (unit variance over the documents; the heavy tail is positive).
    components : numpy.ndarray of shape (n_components, d), float32
        The unmixing rows: ``(X - mean) @ components.T`` places new documents (or terms) on the axes.
    mean : numpy.ndarray of shape (d,), float32
        The documents' mean embedding.
    """

    keywords: dict[int, list[tuple[str, float]]]
    scores: np.ndarray = field(repr=False)
    components: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)


def _term_importance(positions: np.ndarray, importance: TermImportance) -> np.ndarray:
    """S³'s importance of each term (row) on each axis (column) from the terms' positions on the axes."""
    if importance == "axial":
        return positions
    cosine = positions / np.maximum(np.linalg.norm(positions, axis=1, keepdims=True), np.finfo(float).tiny)
    return cosine if importance == "angular" else positions**2 * cosine


def _axis_keywords(
    terms: np.ndarray, mean: np.ndarray, components: np.ndarray, top_n: int, importance: TermImportance, encoder: Any
) -> dict[int, list[tuple[str, float]]]:
    """The ``top_n`` terms of each axis, by the importance of their embeddings' positions on the axes."""
    if terms.size == 0:
        return {axis: [] for axis in range(components.shape[0])}
    term_vectors = embed_texts([str(term) for term in terms], encoder).astype(np.float64)
    if term_vectors.shape[1] != components.shape[1]:
        raise ConfigurationError(
            f"semantic_axes: the encoder embeds terms in {term_vectors.shape[1]} dimensions but X has "
            f"{components.shape[1]}; give the encoder that embedded the documents."
        )
    weights = _term_importance((term_vectors - mean) @ components.T, importance)
    order = np.arange(terms.size)  # CountVectorizer's terms are alphabetical: ties go to the first
    return {
        axis: [(str(terms[i]), float(weights[i, axis])) for i in _smallest(-weights[:, axis], order, top_n)]
        for axis in range(components.shape[0])
    }


def semantic_axes(
    texts: Iterable[str | None],
    X: np.ndarray,
    *,
    n_components: int = 10,
    top_n: int = 10,
    importance: TermImportance = "combined",
    encoder: Any = None,
    stop_words: str | list[str] | None = "english",
    ngram_range: tuple[int, int] = (1, 1),
    min_df: int | float = 1,
    max_features: int | None = None,
    max_iter: int = 200,
    random_state: int | np.random.RandomState | None = 0,
) -> SemanticAxes:
    """Semantic signal separation (S³): topics as independent axes of the document embeddings, named by terms.

    FastICA (whitened to unit variance) decomposes the documents' embeddings, ``X - mean = S A^T``, and its
    unmixing matrix W (``S = (X - mean) W^T``) places every term of the corpus on the same axes: with ``t`` a
    term's embedding by the encoder that embedded the documents, its position is ``beta = (t - mean) W^T``.
    A term's importance on axis j is ``beta_j`` (``"axial"``), its cosine to the axis ``beta_j / ||beta||``
    (``"angular"``), or ``beta_j^2 beta_j / ||beta||`` (``"combined"``, the authors' default). An ICA axis has
    no sign of its own: each is turned so that the documents' scores have a positive skew, so the few documents
    far out along an axis (its topic) and its top terms lie on the positive side.

    The terms are CountVectorizer's vocabulary of the texts, as in :func:`ctfidf_keywords`; None, NaN and empty
    texts count as empty strings.

    Parameters
    ----------
    texts : iterable of str or None, length n
        One text per row of ``X``.
    X : numpy.ndarray of shape (n, d)
        The documents' embeddings, validated by :func:`embedlab.io.validation.prepare` and used as given.
    n_components : int, default=10
        Axes, at most ``min(n, d)``.
    top_n : int, default=10
        Terms per axis.
    importance : {"axial", "angular", "combined"}, default="combined"
        How a term's position on the axes weighs it.
    encoder : SentenceTransformer, optional
        The model that embedded the documents, from :func:`embedlab.embed.load_encoder`; the bundled
        all-MiniLM-L6-v2 when omitted.
    stop_words, ngram_range, min_df, max_features
        The vocabulary, as in :func:`ctfidf_keywords`.
    max_iter : int, default=200
        FastICA's iterations at most (a fit that stops there is logged).
    random_state : int, RandomState or None, default=0
        Seed of FastICA's starting unmixing matrix.

    Returns
    -------
    SemanticAxes
        Every keyword list is empty when no term survives (all texts empty or stop words only).

    Raises
    ------
    EmbeddingDataError
        If there is not one text per row, a text is neither a string nor missing, or ``X`` holds NaN/Inf.
    ConfigurationError
        If ``n_components`` exceeds the rows or the dimension, ``top_n`` or ``importance`` is invalid,
        CountVectorizer rejects a setting, or the encoder's term embeddings have another dimension than ``X``.
    MissingDependencyError
        If no encoder is given and the ``text`` extra is not installed.

    References
    ----------
    Kardos, Kostkan, Enevoldsen, Vermillet, Nielbo and Rocca (2025), "S³ - Semantic Signal Separation", ACL,
    arXiv:2406.09556.

    Examples
    --------
    Two topics mixed at random in 3-D documents, and a stand-in for a sentence-transformers model that embeds
    each word along its topic's direction:

    >>> import numpy as np
    >>> words = {"cat": [1, 0, 0], "purr": [1, 0.1, 0], "rocket": [0, 1, 0], "orbit": [0.1, 1, 0], "today": [0, 0, 1]}
    >>> class Lookup:
    ...     def encode(self, texts, **kwargs):
    ...         return np.array([words[t] for t in texts], dtype=np.float32)
    >>> rng = np.random.default_rng(0)
    >>> sources = rng.exponential(size=(200, 2)) * (rng.random((200, 2)) < 0.3)
    >>> X = sources @ np.eye(3)[:2] + 0.01 * rng.normal(size=(200, 3))
    >>> texts = [("cat purr " if a else "") + ("rocket orbit " if b else "") + "today" for a, b in sources > 0]
    >>> axes = semantic_axes(texts, X, n_components=2, top_n=2, encoder=Lookup())
    >>> sorted(sorted(term for term, _ in terms) for terms in axes.keywords.values())
    [['cat', 'purr'], ['orbit', 'rocket']]
    """
    top_n = check_int(top_n, "top_n")
    check_choice(importance, "importance", _IMPORTANCES)
    max_iter = check_int(max_iter, "max_iter")
    documents = _clean_texts(texts)
    rows = prepare(X, "l2", name="X").vectors
    if rows.shape[0] != len(documents):
        raise EmbeddingDataError(
            f"semantic_axes: {len(documents)} texts but {rows.shape[0]} rows of X; give one text per row."
        )
    n_components = check_int(
        n_components, "n_components", maximum=min(rows.shape), why=f"the rows and dimension of X, {rows.shape}"
    )
    ica = FastICA(
        n_components, whiten="unit-variance", max_iter=max_iter, random_state=check_random_state(random_state)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported below, once, through logging
        scores = ica.fit_transform(rows.astype(np.float64))
    if ica.n_iter_ >= max_iter:
        logger.warning("semantic_axes: FastICA stopped at max_iter=%d before converging; raise max_iter.", max_iter)
    signs = np.where(((scores - scores.mean(axis=0)) ** 3).mean(axis=0) < 0, -1.0, 1.0)
    components, mean = ica.components_ * signs[:, None], ica.mean_
    counted = _term_counts(documents, "semantic_axes", stop_words, ngram_range, min_df, max_features)
    terms = np.array([], dtype=str) if counted is None else counted[1]
    keywords = _axis_keywords(terms, mean, components, top_n, importance, encoder)
    return SemanticAxes(
        keywords, (scores * signs).astype(np.float32), components.astype(np.float32), mean.astype(np.float32)
    )


def s3_keywords(
    texts: Iterable[str | None],
    X: np.ndarray,
    labels: np.ndarray,
    *,
    top_n: int = 10,
    importance: TermImportance = "combined",
    encoder: Any = None,
    stop_words: str | list[str] | None = "english",
    ngram_range: tuple[int, int] = (1, 1),
    min_df: int | float = 1,
    max_features: int | None = None,
    max_iter: int = 200,
    random_state: int | np.random.RandomState | None = 0,
) -> dict[int, list[tuple[str, float]]]:
    """The ``top_n`` terms of each cluster by S³: the terms of the topic axis its members lie furthest along.

    :func:`semantic_axes` finds as many axes as there are clusters (at most the rows and dimension of ``X``) on
    all the rows, noise included. Each cluster's members have a mean score on each axis (scores have unit
    variance, so means compare across axes); clusters and axes are matched one to one to maximise the sum of
    these means (Hungarian assignment), and a cluster takes its axis's terms. Where there are more clusters than
    axes, the unmatched clusters take the axis of their largest mean, which another cluster also has.

    Parameters
    ----------
    texts : iterable of str or None, length n
    X : numpy.ndarray of shape (n, d)
        The documents' embeddings (see :func:`semantic_axes`).
    labels : numpy.ndarray of int, shape (n,)
        One cluster label per row; -1 is noise.
    top_n, importance, encoder, stop_words, ngram_range, min_df, max_features, max_iter, random_state
        As in :func:`semantic_axes`.

    Returns
    -------
    dict
        ``{label: [(term, importance), ...]}`` for each cluster label in ascending order, as
        :func:`ctfidf_keywords` returns.

    Raises
    ------
    ConfigurationError
        If the labels are not one integer >= -1 per row, and as :func:`semantic_axes`.
    EmbeddingDataError
        As :func:`semantic_axes`.

    References
    ----------
    Kardos, Kostkan, Enevoldsen, Vermillet, Nielbo and Rocca (2025), "S³ - Semantic Signal Separation", ACL,
    arXiv:2406.09556; Kuhn (1955), the Hungarian method.
    """
    rows = prepare(X, "l2", name="X").vectors
    clusters = _clusters(labels, rows.shape[0])
    if not clusters:
        return {}
    axes = semantic_axes(
        texts,
        rows,
        n_components=min(len(clusters), *rows.shape),
        top_n=top_n,
        importance=importance,
        encoder=encoder,
        stop_words=stop_words,
        ngram_range=ngram_range,
        min_df=min_df,
        max_features=max_features,
        max_iter=max_iter,
        random_state=random_state,
    )
    means = np.stack([axes.scores[members].mean(axis=0) for _, members in clusters])
    axis_of = np.argmax(means, axis=1)
    matched, matched_axes = linear_sum_assignment(means, maximize=True)
    axis_of[matched] = matched_axes
    return {label: axes.keywords[int(axis_of[i])] for i, (label, _) in enumerate(clusters)}
