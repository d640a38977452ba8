"""How well an embedding space separates given labels: kNN accuracy, silhouette, neural collapse, sharpness.

Every statistic reads the labels as classes of the vectors: the leave-one-out kNN vote of the kNN graph,
silhouettes on a stratified sample, the neural-collapse geometry of the class means, and the label
sharpness (how close two differently-labelled points come, relative to the typical neighbour distance).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn import config_context
from sklearn.metrics import silhouette_samples

from embedlab._checks import check_int
from embedlab._json import json_safe, plain
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.neighbors import KnnResult, knn

__all__ = ["LabelReport", "label_structure"]

logger = logging.getLogger(__name__)

_BLOCK_VALUES = 2**20  # float64 values per block of rows (8 MB), so memory stays bounded whatever d is
_SILHOUETTE_WORKING_MB = 16  # scikit-learn's chunking budget for the pairwise distances of the silhouettes
_VOTE_CELLS = 1 << 22  # rows x k x k booleans compared per block of the kNN vote
_SHOWN_LABELS = 10


@dataclass(frozen=True)
class LabelReport:
    """How the labels sit in the embedding space.

    Attributes
    ----------
    n_rows : int
        Labelled rows.
    n_labels : int
        Distinct labels C.
    metric : str
        Metric of the kNN graph (``"cosine"`` or ``"l2"``), also used for the silhouettes.
    k : int
        Neighbours in the kNN vote.
    knn_accuracy : float
        Share of rows whose leave-one-out majority vote over their k neighbours is their own label (rows with
        no neighbour in the graph are left out).
    silhouette : float
        Mean silhouette over the sample, in [-1, 1].
    sample_size : int
        Rows in the stratified sample used for the silhouettes and the label sharpness.
    nc1 : float
        Within-class variability relative to between-class spread, ``trace(Sigma_W pinv(Sigma_B)) / C``; 0
        when every point sits on its class mean, inf when all class means coincide.
    equiangularity : float
        Standard deviation of the cosines between centred class means over pairs of classes (0 for a
        simplex equiangular tight frame).
    mean_cosine_between_means : float
        Mean of those cosines; compare with ``etf_cosine``.
    etf_cosine : float
        ``-1 / (C - 1)``, the cosine between the means of a simplex equiangular tight frame.
    equinorm : float
        Coefficient of variation (std / mean) of the norms of the centred class means.
    ncc_agreement : float
        Share of rows whose nearest class mean (Euclidean) is that of their own label.
    label_sharpness : float
        Scale-free label sharpness on the sample: the median nearest-neighbour Euclidean distance divided by
        the smallest distance between two differently-labelled rows; inf when two such rows coincide.
    per_label : tuple of dict
        One entry per label, in sorted label order: ``{"label", "count", "knn_accuracy", "silhouette"}``
        (``silhouette`` is None for a label absent from the sample).
    sample_rows : numpy.ndarray of int64
        Positions of the sampled rows, ascending (not in :meth:`to_dict`).
    """

    n_rows: int
    n_labels: int
    metric: str
    k: int
    knn_accuracy: float
    silhouette: float
    sample_size: int
    nc1: float
    equiangularity: float
    mean_cosine_between_means: float
    etf_cosine: float
    equinorm: float
    ncc_agreement: float
    label_sharpness: float
    per_label: tuple[dict, ...]
    sample_rows: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (without ``sample_rows``; infinite values become None)."""
        return {
            "n_rows": self.n_rows,
            "n_labels": self.n_labels,
            "metric": self.metric,
            "k": self.k,
            "knn_accuracy": self.knn_accuracy,
            "silhouette": self.silhouette,
            "sample_size": self.sample_size,
            "nc1": json_safe(self.nc1),
            "equiangularity": self.equiangularity,
            "mean_cosine_between_means": self.mean_cosine_between_means,
            "etf_cosine": self.etf_cosine,
            "equinorm": self.equinorm,
            "ncc_agreement": self.ncc_agreement,
            "label_sharpness": json_safe(self.label_sharpness),
            "per_label": [dict(entry) for entry in self.per_label],
        }


def label_values(data: object, labels: str | object) -> object:
    """``labels`` itself, or the metadata column of the embedding set ``data`` it names.

    Raises
    ------
    ConfigurationError
        When ``labels`` names a column but ``data`` is an array, without columns.
    EmbeddingDataError
        When the set has no such column (the message lists those it has).
    """
    if not isinstance(labels, str):
        return labels
    if not hasattr(data, "column"):
        raise ConfigurationError(f"labels {labels!r} name a column, but the rows are an array: give the labels.")
    return data.column(labels)


def labels_name(data: object, labels: str | object) -> str:
    """How messages call ``labels``: the file and column they come from, or "labels"."""
    if not isinstance(labels, str):
        return "labels"
    source = getattr(data, "source", None)
    return f"{Path(source).name}, column {labels!r}" if source else f"column {labels!r}"


def _encode_labels(labels: object, n: int, name: str = "labels") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct labels, each row's label code, and the count of each label; checks the sizes. Messages
    call the labels ``name``."""
    array = np.asarray(labels)
    if array.shape != (n,):
        raise EmbeddingDataError(f"{name}: {array.size} labels of shape {array.shape} for {n} rows; give one per row.")
    try:
        values, codes, counts = np.unique(array, return_inverse=True, return_counts=True)
    except TypeError as err:
        raise EmbeddingDataError(f"{name}: the labels cannot be compared ({err}); use one type (str or int).") from err
    small = values[counts < 2]
    if (counts >= 2).sum() < 2:
        shown = ", ".join(repr(plain(v)) for v in small[:_SHOWN_LABELS]) + (
            ", ..." if small.size > _SHOWN_LABELS else ""
        )
        raise EmbeddingDataError(
            f"{name}: need at least 2 labels with at least 2 rows each, found {values.size} distinct label(s)"
            + (f"; these have a single row: {shown}" if small.size else "")
            + ". Provide more labelled rows or merge rare labels."
        )
    return values, codes.ravel().astype(np.int64), counts


def _stratified_sample(codes: np.ndarray, counts: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of a stratified sample of ``size`` rows (all rows when there are no more), ascending.

    Each label gets ``size * count / n`` rows rounded by largest remainder, so the quotas sum to ``size``.
    """
    n = codes.size
    if size >= n:
        return np.arange(n, dtype=np.int64)
    exact = size * counts / n
    quota = np.floor(exact).astype(np.int64)
    by_remainder = np.lexsort((np.arange(counts.size), -(exact - quota)))
    quota[by_remainder[: size - int(quota.sum())]] += 1
    members = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    chosen = [rng.choice(rows, size=q, replace=False) for rows, q in zip(members, quota, strict=True) if q]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _knn_votes(indices: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Majority label of each row's neighbours, ties to the label of the nearest tied neighbour; -1 if none."""
    neighbour_codes = np.where(indices >= 0, codes[np.maximum(indices, 0)], -1)
    n, k = neighbour_codes.shape
    predicted = np.empty(n, dtype=np.int64)
    step = max(1, _VOTE_CELLS // (k * k))
    for start in range(0, n, step):
        block = neighbour_codes[start : start + step]
        votes = (block[:, :, None] == block[:, None, :]).sum(axis=2)
        votes[block < 0] = 0
        predicted[start : start + len(block)] = block[np.arange(len(block)), np.argmax(votes, axis=1)]
    return predicted


def _block_rows(d: int) -> int:
    return max(1, _BLOCK_VALUES // d)


def _class_means(vectors: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Class means (C, d) in float64, accumulated block-wise."""
    sums = np.zeros((counts.size, vectors.shape[1]))
    step = _block_rows(vectors.shape[1])
    for start in range(0, vectors.shape[0], step):
        block = np.asarray(vectors[start : start + step], dtype=np.float64)
        block_codes = codes[start : start + len(block)]
        one_hot = sparse.csr_matrix(
            (np.ones(len(block)), (block_codes, np.arange(len(block)))), shape=(counts.size, len(block))
        )
        sums += one_hot @ block
    return sums / counts[:, None]


def _nc1(vectors: np.ndarray, codes: np.ndarray, means: np.ndarray, centred: np.ndarray) -> float:
    """``trace(Sigma_W pinv(Sigma_B)) / C`` in the span of the centred means, without d x d matrices.

    With ``centred = U S V^T`` (C x d), ``Sigma_B = V S^2 V^T / C`` and ``pinv(Sigma_B) = C V S^-2 V^T``, so
    NC1 = ``sum_j (v_j^T Sigma_W v_j) / s_j^2`` over the singular directions kept by the usual rank tolerance.
    """
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return math.inf
    kept = s > s[0] * max(centred.shape) * np.finfo(np.float64).eps
    basis = vt[kept].T
    projected_var = np.zeros(basis.shape[1])
    step = _block_rows(vectors.shape[1])
    for start in range(0, vectors.shape[0], step):
        residual = np.array(vectors[start : start + step], dtype=np.float64)
        residual -= means[codes[start : start + len(residual)]]
        projected_var += ((residual @ basis) ** 2).sum(axis=0)
    projected_var /= vectors.shape[0]
    return float((projected_var / s[kept] ** 2).sum())


def _mean_geometry(centred: np.ndarray) -> tuple[float, float, float]:
    """Equiangularity (std of pairwise cosines), mean pairwise cosine, and equinorm of the centred means."""
    norms = np.linalg.norm(centred, axis=1)
    unit = np.divide(centred, norms[:, None], out=np.zeros_like(centred), where=norms[:, None] > 0)
    cosines = (unit @ unit.T)[~np.eye(len(centred), dtype=bool)]
    mean_norm = float(norms.mean())
    equinorm = float(norms.std() / mean_norm) if mean_norm > 0 else 0.0
    return float(cosines.std()), float(cosines.mean()), equinorm


def _label_sharpness(sample: np.ndarray, codes: np.ndarray) -> float:
    """Median nearest-neighbour distance over the smallest distance between differently-labelled rows.

    Exact on ``sample`` (rows already drawn); ``codes`` are the sampled rows' label codes.
    """
    nearest_other = math.inf
    for code in np.unique(codes):
        mine = codes == code
        found = knn(sample[~mine], 1, queries=sample[mine], metric="l2", method="exact", exclude_self=False)
        nearest_other = min(nearest_other, float(found.distances.min()))
    if nearest_other == 0.0:
        return math.inf
    typical = float(np.median(knn(sample, 1, metric="l2", method="exact").distances[:, 0]))
    return typical / nearest_other


def label_structure(
    vectors: np.ndarray,
    labels: np.ndarray,
    graph: KnnResult,
    *,
    sample: int = 5000,
    random_state: int | None = 0,
) -> LabelReport:
    """How well the embedding separates the labels: kNN vote, silhouettes, neural collapse, label sharpness.

    - ``knn_accuracy``: leave-one-out majority vote over each row's k neighbours in ``graph``; a tie goes to
      the tied label whose first neighbour is nearest (the nearest neighbour's label when it is tied).
    - ``silhouette``: :func:`sklearn.metrics.silhouette_samples` (cosine distance for a cosine graph,
      Euclidean otherwise) on a seeded stratified sample of at most ``sample`` rows, overall and per label.
    - Neural-collapse statistics (Papyan et al.) on all rows, with the vectors as given (not normalised):
      with class means mu_c and the global mean mu_G taken as the mean of the class means (the mean of all
      rows when the classes are balanced), ``nc1 = trace(Sigma_W pinv(Sigma_B)) / C`` where Sigma_W is the
      within-class covariance pooled over all rows (classes weighted by their size) and
      ``Sigma_B = mean_c (mu_c - mu_G)(mu_c - mu_G)^T``; ``equiangularity`` and ``mean_cosine_between_means``
      are the std and mean of the cosines between the centred means mu_c - mu_G over pairs c != c'
      (0 and ``-1/(C-1)`` for a simplex ETF); ``equinorm`` is std / mean of their norms; ``ncc_agreement``
      is the share of rows whose nearest class mean (Euclidean) is their own.
    - ``label_sharpness``: the K_F of Konz and Mazurowski, ``max 1 / ||x_i - x_j||`` over differently-labelled
      pairs, computed exactly on the sample with the kNN engine (for each label, the nearest sampled row of
      the other labels) and multiplied by the median Euclidean nearest-neighbour distance of the sample, so
      that it does not depend on the scale of the vectors: a value of 10 means two differently-labelled rows
      are ten times closer than typical neighbours.

    Parameters
    ----------
    vectors : numpy.ndarray of shape (n, d), float32
        Assumed validated (:func:`embedlab.io.check_vectors`).
    labels : array-like of shape (n,)
        One label per row, str or int.
    graph : KnnResult
        kNN graph of ``vectors`` against themselves, self excluded (``knn_graph``), cosine or l2.
    sample : int, default=5000
        Most rows used for the silhouettes and the label sharpness (both cost quadratic time).
    random_state : int or None, default=0
        Seed of the sample.

    Returns
    -------
    LabelReport

    Raises
    ------
    EmbeddingDataError
        If ``labels`` does not have one entry per row, mixes incomparable types, or has fewer than 2 labels
        with at least 2 rows each (the message names the labels with a single row).
    ConfigurationError
        If the graph does not have one row per vector, or ``sample`` is too small to hold 2 labels.

    References
    ----------
    Papyan, Han and Donoho (2020), "Prevalence of neural collapse during the terminal phase of deep learning
    training", PNAS 117(40), 24652-24663.
    Rousseeuw (1987), "Silhouettes: a graphical aid to the interpretation and validation of cluster analysis",
    Journal of Computational and Applied Mathematics 20, 53-65.
    Konz and Mazurowski (2024), "The effect of intrinsic dataset properties on generalization: unraveling
    learning differences between natural and medical images", ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from embedlab.neighbors import knn
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(50, 8)), rng.normal(size=(50, 8)) + 10.0].astype(np.float32)
    >>> y = np.repeat(["cat", "dog"], 50)
    >>> report = label_structure(X, y, knn(X, 5, metric="l2"))
    >>> report.knn_accuracy, report.ncc_agreement, report.silhouette > 0.5
    (1.0, 1.0, True)
    """
    vectors = np.asarray(vectors)
    n = vectors.shape[0]
    if len(graph) != n:
        raise ConfigurationError(f"the kNN graph has {len(graph)} rows but there are {n} vectors.")
    sample = check_int(sample, "sample", 2)
    values, codes, counts = _encode_labels(labels, n)
    n_labels = int(values.size)

    predicted = _knn_votes(np.asarray(graph.indices), codes)
    voted = predicted >= 0
    correct = voted & (predicted == codes)
    knn_accuracy = float(correct.sum() / max(int(voted.sum()), 1))
    label_voted = np.bincount(codes[voted], minlength=n_labels)
    label_correct = np.bincount(codes[correct], minlength=n_labels)

    rows = _stratified_sample(codes, counts, sample, np.random.default_rng(random_state))
    sample_codes = codes[rows]
    present = np.unique(sample_codes)
    if present.size < 2 or present.size >= rows.size:
        raise ConfigurationError(
            f"sample={sample} gives a stratified sample with {present.size} label(s) in {rows.size} rows; "
            "silhouettes need at least 2 labels and more rows than labels. Increase sample."
        )
    sample_vectors = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    metric = "cosine" if graph.metric == "cosine" else "euclidean"
    with config_context(working_memory=_SILHOUETTE_WORKING_MB):
        silhouettes = silhouette_samples(sample_vectors.astype(np.float64), sample_codes, metric=metric)
    label_silhouette = np.bincount(sample_codes, weights=silhouettes, minlength=n_labels)
    label_sampled = np.bincount(sample_codes, minlength=n_labels)

    means = _class_means(vectors, codes, counts)
    centred = means - means.mean(axis=0)
    equiangularity, mean_cosine, equinorm = _mean_geometry(centred)
    nearest_mean = knn(means, 1, queries=vectors, metric="l2", method="exact", exclude_self=False).indices[:, 0]

    per_label = tuple(
        {
            "label": plain(values[c]),
            "count": int(counts[c]),
            "knn_accuracy": float(label_correct[c] / label_voted[c]) if label_voted[c] else None,
            "silhouette": float(label_silhouette[c] / label_sampled[c]) if label_sampled[c] else None,
        }
        for c in range(n_labels)
    )
    report = LabelReport(
        n_rows=n,
        n_labels=n_labels,
        metric=graph.metric,
        k=graph.k,
        knn_accuracy=knn_accuracy,
        silhouette=float(silhouettes.mean()),
        sample_size=int(rows.size),
        nc1=_nc1(vectors, codes, means, centred),
        equiangularity=equiangularity,
        mean_cosine_between_means=mean_cosine,
        etf_cosine=-1.0 / (n_labels - 1),
        equinorm=equinorm,
        ncc_agreement=float((nearest_mean == codes).mean()),
        label_sharpness=_label_sharpness(sample_vectors, sample_codes),
        per_label=per_label,
        sample_rows=rows,
    )
    logger.debug(
        "labels: %d classes, kNN accuracy %.3f, silhouette %.3f, NC1 %.3g",
        n_labels,
        report.knn_accuracy,
        report.silhouette,
        report.nc1,
    )
    return report
