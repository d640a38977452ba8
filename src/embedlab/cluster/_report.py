"""find_clusters: cluster an embedding set with any method, choose k, score the result and name the clusters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from embedlab._checks import check_choice, check_int
from embedlab._json import json_safe, plain
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster._density import GaussianMixtureClusterer, HDBSCANClusterer, WardClusterer
from embedlab.cluster._graph import LeidenClusterer
from embedlab.cluster._hierarchical import HierarchicalKMeans
from embedlab.cluster._kmeans import ClusterMetric, KMeans, MiniBatchKMeans, _cluster_sums
from embedlab.cluster._kmedoids import KMedoids
from embedlab.cluster._select_k import Criterion, KSelection, select_k
from embedlab.cluster.deep import CPP, DEC, IDEC, N2D, SCAN, TELL, TEMI, ClAM, SwAV
from embedlab.cluster.metrics import (
    CalibrationReport,
    ExternalScores,
    InternalScores,
    SizeDistribution,
    calibration_error,
    external_scores,
    internal_scores,
    size_distribution,
)
from embedlab.cluster.naming import closest_members, ctfidf_keywords, medoids, s3_keywords
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.embedding_set import ID_COLUMN, EmbeddingSet
from embedlab.io.readers import reading_memory
from embedlab.io.validation import prepare
from embedlab.neighbors import graph_memory, knn_graph
from embedlab.scale import MemoryEstimate, job_estimate

__all__ = ["METHODS", "NAMINGS", "ClusterReport", "clustering_memory", "find_clusters"]

logger = logging.getLogger(__name__)

_EXAMPLES = 5
_KEYWORDS = 8
#: How clusters with texts get keywords: class-based TF-IDF, or the terms of the S³ topic axis they lie along.
NAMINGS = ("ctfidf", "s3")
_AGREEMENT_K = 10


@dataclass(frozen=True)
class _Method:
    """How to build a method's estimator from (k or None, metric, seed, parameters, number of rows)."""

    build: Callable[[int | None, ClusterMetric, int | None, dict, int], object]
    needs_k: bool
    summary: str


def _hierarchical(k: int, metric: ClusterMetric, seed: int | None, params: dict, n: int) -> HierarchicalKMeans:
    """Two levels by default: 10 k clusters of the rows, then k of their centres (one level on small sets)."""
    levels = params.pop("levels", None) or ((10 * k, k) if 10 * k <= n // 2 else (k,))
    return HierarchicalKMeans(levels, metric=metric, random_state=seed, **params)


_SEARCH_BUFFER_BYTES = 100 * 2**20
METHODS: dict[str, _Method] = {
    "kmeans": _Method(
        lambda k, metric, seed, params, n: KMeans(k, metric=metric, random_state=seed, **params),
        True,
        "k-means (spherical for cosine), k-means++ seeding, faiss assignments",
    ),
    "kmedoids": _Method(
        lambda k, metric, seed, params, n: KMedoids(k, metric=metric, random_state=seed, **params),
        True,
        "k-medoids by FasterPAM (Schubert & Rousseeuw 2021): the kmedoids package on a distance matrix that fits",
    ),
    "minibatch": _Method(
        lambda k, metric, seed, params, n: MiniBatchKMeans(k, metric=metric, random_state=seed, **params),
        True,
        "mini-batch k-means (Sculley 2010)",
    ),
    "hierarchical": _Method(
        _hierarchical,
        True,
        "hierarchical k-means with resampling (Vo et al. 2024)",
    ),
    "gmm": _Method(
        lambda k, metric, seed, params, n: GaussianMixtureClusterer(k, metric=metric, random_state=seed, **params),
        True,
        "Gaussian mixture (diagonal) on a PCA reduction",
    ),
    "ward": _Method(
        lambda k, metric, seed, params, n: WardClusterer(k, metric=metric, **params),
        True,
        "Ward agglomerative clustering (small sets)",
    ),
    "hdbscan": _Method(
        lambda k, metric, seed, params, n: HDBSCANClusterer(metric=metric, random_state=seed, **params),
        False,
        "HDBSCAN on a PCA reduction, with a noise label (finds k itself)",
    ),
    "leiden": _Method(
        lambda k, metric, seed, params, n: LeidenClusterer(
            metric=metric, target_clusters=k, random_state=seed, **params
        ),
        False,
        "Leiden communities of the shared kNN graph (k optional: the resolution is searched for it)",
    ),
    "dec": _Method(
        lambda k, metric, seed, params, n: DEC(k, random_state=seed, **params),
        True,
        "DEC (Xie et al. 2016): autoencoder, Student-t soft assignment sharpened by KL (torch)",
    ),
    "idec": _Method(
        lambda k, metric, seed, params, n: IDEC(k, random_state=seed, **params),
        True,
        "IDEC (Guo et al. 2017): DEC that keeps the reconstruction loss (torch)",
    ),
    "n2d": _Method(
        lambda k, metric, seed, params, n: N2D(k, random_state=seed, **params),
        True,
        "N2D (McConville et al. 2021): autoencoder, UMAP, Gaussian mixture (torch, umap-learn)",
    ),
    "scan": _Method(
        lambda k, metric, seed, params, n: SCAN(k, metric=metric, random_state=seed, **params),
        True,
        "SCAN head (Van Gansbeke et al. 2020) on frozen embeddings, kNN consistency + entropy (torch)",
    ),
    "temi": _Method(
        lambda k, metric, seed, params, n: TEMI(k, metric=metric, random_state=seed, **params),
        True,
        "TEMI heads (Adaloglou et al. 2023): self-distillation over kNN pairs, weighted PMI (torch)",
    ),
    "cpp": _Method(
        lambda k, metric, seed, params, n: CPP(k, random_state=seed, **params),
        True,
        "CPP / MLC (Chu et al. 2024; Ding et al. 2023): features and membership by coding rate reduction (torch)",
    ),
    "tell": _Method(
        lambda k, metric, seed, params, n: TELL(k, random_state=seed, **params),
        True,
        "TELL (Peng et al. 2022): k-means as a network, unit centres as a layer's weights, k-means loss (torch)",
    ),
    "clam": _Method(
        lambda k, metric, seed, params, n: ClAM(k, metric=metric, random_state=seed, **params),
        True,
        "ClAM (Saha et al. 2023): prototypes as associative memories trained to complete masked rows (torch)",
    ),
    "swav": _Method(
        lambda k, metric, seed, params, n: SwAV(k, metric=metric, random_state=seed, **params),
        True,
        "SwAV (Caron et al. 2020): swapped prediction of Sinkhorn codes over kNN pairs; codes=p2ot|sp2ot (torch)",
    ),
}


@dataclass(frozen=True)
class ClusterReport:
    """A clustering of an embedding set, with how k was chosen, its scores and its cluster names.

    ``to_dict`` gives the JSON document of ``embedlab cluster --json`` (documented in docs/cluster.md) and
    ``to_table`` the per-row Parquet output.
    """

    method: str
    metric: str
    labels: np.ndarray = field(repr=False)
    confidence: np.ndarray = field(repr=False)
    proba: np.ndarray | None = field(repr=False)
    confidence_kind: str
    selection: KSelection | None
    internal: InternalScores
    sizes: SizeDistribution
    external: ExternalScores | None
    calibration: CalibrationReport | None
    clusters: list[dict]
    params: dict
    seconds: float

    @property
    def k(self) -> int:
        """Clusters found (noise not counted)."""
        return int(np.unique(self.labels[self.labels >= 0]).size)

    def to_dict(self) -> dict:
        """The JSON document, NaN written as null."""
        return json_safe(
            {
                "method": self.method,
                "metric": self.metric,
                "n": int(self.labels.size),
                "k": self.k,
                "n_noise": int((self.labels < 0).sum()),
                "k_selection": None if self.selection is None else self.selection.to_dict(),
                "confidence": self.confidence_kind,
                "metrics": {
                    "internal": self.internal.to_dict(),
                    "external": None if self.external is None else self.external.to_dict(),
                    "calibration": None if self.calibration is None else self.calibration.to_dict(),
                },
                "sizes": self.sizes.to_dict(),
                "clusters": self.clusters,
                "params": self.params,
                "timings": {"seconds": self.seconds},
            }
        )

    def to_table(self, ids: np.ndarray, *, proba: bool = False) -> pa.Table:
        """Per-row table: ``id``, ``cluster`` (-1 for noise), ``confidence`` and, on request, ``probabilities``.

        Raises
        ------
        ConfigurationError
            If ``proba`` is asked of a method without soft assignments.
        """
        columns = {
            ID_COLUMN: pa.array(ids),
            "cluster": pa.array(self.labels, pa.int64()),
            "confidence": pa.array(self.confidence, pa.float32()),
        }
        if proba:
            if self.proba is None:
                raise ConfigurationError(f"method {self.method!r} gives no cluster probabilities.")
            flat = pa.array(np.ascontiguousarray(self.proba, dtype=np.float32).reshape(-1))
            columns["probabilities"] = pa.FixedSizeListArray.from_arrays(flat, self.proba.shape[1])
        return pa.table(columns)


def _estimator(method: str, k: int | None, metric: ClusterMetric, seed: int | None, params: dict, n: int) -> object:
    """The method's estimator; parameters it does not take are refused by name, with the ones it does."""
    check_choice(method, "method", sorted(METHODS))
    default = METHODS[method].build(k, metric, seed, {}, n)
    unknown = sorted(set(params) - set(default.get_params()))
    if unknown:
        raise ConfigurationError(
            f"method {method!r} has no parameter {', '.join(map(repr, unknown))}; it takes: "
            f"{', '.join(sorted(default.get_params()))}."
        )
    return METHODS[method].build(k, metric, seed, dict(params), n) if params else default


def _neighbour_agreement(emb: EmbeddingSet, labels: np.ndarray, metric: ClusterMetric, seed: int | None) -> np.ndarray:
    """Share of each row's nearest neighbours (shared kNN graph) that sit in its cluster."""
    k = min(_AGREEMENT_K, len(emb) - 1)
    indices = knn_graph(emb, k, metric=metric, random_state=seed).indices
    found = indices >= 0
    same = found & (labels[np.maximum(indices, 0)] == labels[:, None])
    return (same.sum(axis=1) / np.maximum(found.sum(axis=1), 1)).astype(np.float32)


def _centers(X: np.ndarray, labels: np.ndarray, model: object) -> np.ndarray:
    centers = getattr(model, "cluster_centers_", None)
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    if centers is not None and centers.shape == (k, X.shape[1]):  # not a latent space (DEC's centres)
        return centers
    kept = labels >= 0
    rows = X if kept.all() else X[kept]
    sums, counts = _cluster_sums(rows, labels[kept], k)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


def _cluster_names(
    emb: EmbeddingSet,
    labels: np.ndarray,
    centers: np.ndarray,
    metric: ClusterMetric,
    texts: np.ndarray | None,
    naming: str,
    random_state: int | None,
) -> list[dict]:
    vectors = prepare(emb.vectors, metric).vectors  # once: closest_members and medoids then copy nothing
    closest = closest_members(vectors, labels, centers, n=_EXAMPLES, metric=metric)
    central = medoids(vectors, labels, metric=metric)
    if texts is None:
        keywords = {}
    elif naming == "s3":
        keywords = s3_keywords(texts, emb.vectors, labels, top_n=_KEYWORDS, random_state=random_state)
    else:
        keywords = ctfidf_keywords(texts, labels, top_n=_KEYWORDS)
    sizes = np.bincount(labels[labels >= 0], minlength=centers.shape[0])
    clusters = []
    for c in sorted(closest):
        entry = {
            "cluster": int(c),
            "size": int(sizes[c]),
            "medoid_id": plain(emb.ids[central[c]]),
            "examples": [
                {"id": plain(emb.ids[row]), **({"text": str(texts[row])} if texts is not None else {})}
                for row in closest[c]
            ],
        }
        if texts is not None:
            entry["keywords"] = [term for term, _ in keywords.get(c, [])]
        clusters.append(entry)
    return clusters


def _text_column(emb: EmbeddingSet, text_column: str | None) -> np.ndarray | None:
    if text_column is not None:
        return emb.column(text_column)
    return emb.column("text") if "text" in emb.columns else None


def clustering_memory(
    n_rows: int, dim: int, *, method: str = "kmeans", n_clusters: int | str = "auto", sample: int = 10_000
) -> MemoryEstimate:
    """The estimated peak memory of :func:`find_clusters` of a set of ``n_rows`` x ``dim`` read with ``load``
    (``embedlab cluster``): the set, its prepared copy and the k-means fit's own, per-row labels, distances and
    scores, the k-selection sample, the shared kNN graph of the graph methods, torch for the deep heads, and the
    search buffers."""
    check_choice(method, "method", tuple(METHODS))
    parts: list[tuple[str, float]] = [
        *reading_memory(n_rows, dim),
        ("prepared and k-means copies", 2 * 4.0 * n_rows * dim),
        ("per-row arrays", 32.0 * n_rows),
        ("k-selection sample", 4 * 4.0 * min(n_rows, sample) * dim if n_clusters == "auto" else 0.0),
    ]
    if method == "leiden":
        parts += graph_memory(n_rows, dim)
    elif method == "kmedoids" and 8 * n_rows**2 <= KMedoids().max_matrix_bytes:
        parts.append(("distance matrix", 2 * 8.0 * n_rows**2))
    else:
        parts.append(("search buffers", _SEARCH_BUFFER_BYTES))
    deep = method in {"dec", "idec", "n2d", "scan", "temi", "cpp", "tell", "clam", "swav"}
    return job_estimate(f"{method} clustering of {n_rows:,} x {dim}", *parts, imports=("torch",) if deep else ())


def find_clusters(
    emb: EmbeddingSet,
    *,
    method: str = "kmeans",
    n_clusters: int | str = "auto",
    metric: ClusterMetric = "cosine",
    labels: str | np.ndarray | None = None,
    text_column: str | None = None,
    naming: str = "ctfidf",
    k_values: list[int] | None = None,
    criterion: Criterion = "auto",
    sample: int = 10_000,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
    **params: object,
) -> ClusterReport:
    """Cluster an embedding set, choose k if asked, score the clusters and name them.

    Labels, when given, only score the result (accuracy, NMI, ARI, calibration); they never train, choose k
    or tune anything.

    Parameters
    ----------
    emb : EmbeddingSet
    method : str, default="kmeans"
        A key of :data:`METHODS`.
    n_clusters : int or "auto", default="auto"
        Clusters wanted; ``"auto"`` picks k with :func:`select_k` (``criterion``, ``k_values``), whose
        ``clear`` and ``reason`` (in ``selection``) say whether the data support it. Methods that find their own
        number of clusters ignore it.
    metric : {"cosine", "l2"}, default="cosine"
    labels : str or array-like, optional
        A metadata column or one label per row, for the external scores.
    text_column : str, optional
        Texts for the keywords; by default the ``text`` column when there is one.
    naming : {"ctfidf", "s3"}, default="ctfidf"
        Keywords by class-based TF-IDF (:func:`~embedlab.cluster.naming.ctfidf_keywords`), or the terms of the
        S³ topic axis each cluster lies along (:func:`~embedlab.cluster.naming.s3_keywords`; the terms are
        embedded by the bundled MiniLM, so the rows must be MiniLM embeddings). ``"s3"`` needs texts.
    k_values, criterion
        Passed to :func:`select_k`.
    sample : int, default=10000
        Rows behind the silhouette (and k selection).
    random_state : int or None, default=0
    progress : ProgressReporter, optional
    **params
        Further parameters of the method's estimator (for example ``n_init`` for k-means).

    Returns
    -------
    ClusterReport

    Raises
    ------
    ConfigurationError
        On an unknown method, a bad ``n_clusters``, or parameters the method does not take.
    EmbeddingDataError
        If the labels do not have one entry per row.

    Examples
    --------
    >>> import numpy as np
    >>> from embedlab import EmbeddingSet
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(40, 8)) + 6 * c for c in np.eye(8)[:3]]).astype(np.float32)
    >>> report = find_clusters(EmbeddingSet(X), n_clusters="auto", metric="l2", k_values=[2, 3, 4, 5])
    >>> report.k, report.selection.best_k, sorted(report.sizes.sizes)
    (3, 3, [40, 40, 40])
    """
    started = time.perf_counter()
    check_choice(naming, "naming", NAMINGS)
    texts = _text_column(emb, text_column)
    if naming == "s3" and texts is None:
        raise ConfigurationError(
            f"naming='s3' names clusters from their texts, and {emb.source or 'the set'} has no 'text' column: give "
            "the column of texts (--text-column)."
        )
    n = len(emb)
    truth = emb.column(labels) if isinstance(labels, str) else labels
    if truth is not None and len(truth) != n:
        raise EmbeddingDataError(f"{len(truth)} labels for {n} rows; give one label per row.")
    spec = METHODS.get(method)
    selection = None
    k = n_clusters
    if spec is not None and spec.needs_k and k == "auto":
        selection = select_k(
            emb.vectors,
            k_values,
            criterion=criterion,
            metric=metric,
            sample=sample,
            random_state=random_state,
            progress=progress,
        )
        k = selection.best_k
    elif k != "auto":
        k = check_int(k, "n_clusters")
    k_wanted = None if k == "auto" else k
    model = _estimator(method, k_wanted, metric, random_state, params, n)
    if isinstance(model, LeidenClusterer):
        shared = knn_graph(emb, model.n_neighbors, metric=metric, random_state=random_state, progress=progress)
        model.fit(emb.vectors, graph=shared, progress=progress)
    else:
        model.fit(emb.vectors, progress=progress)
    found = np.asarray(model.labels_, dtype=np.int64)
    proba = model.predict_proba(emb.vectors) if hasattr(model, "predict_proba") else None
    if proba is not None:
        confidence, kind = proba.max(axis=1).astype(np.float32), "max_probability"
    elif hasattr(model, "confidence_"):
        confidence, kind = model.confidence_, "centre_margin"
    else:
        confidence, kind = _neighbour_agreement(emb, found, metric, random_state), "neighbour_agreement"
    external = calibration = None
    if truth is not None:
        external = external_scores(truth, found)
        if proba is not None:
            calibration = calibration_error(proba, truth)
    centers = _centers(emb.vectors, found, model)
    report = ClusterReport(
        method=method,
        metric=metric,
        labels=found,
        confidence=confidence,
        proba=proba,
        confidence_kind=kind,
        selection=selection,
        internal=internal_scores(emb.vectors, found, metric=metric, sample=sample, random_state=random_state),
        sizes=size_distribution(found),
        external=external,
        calibration=calibration,
        clusters=_cluster_names(emb, found, centers, metric, texts, naming, random_state),
        params={
            "k": k_wanted,
            "random_state": random_state,
            "naming": naming,
            **{key: plain(v) for key, v in params.items()},
        },
        seconds=time.perf_counter() - started,
    )
    logger.info("clusters: %s found %d clusters of %d rows in %.1f s", method, report.k, n, report.seconds)
    return report
