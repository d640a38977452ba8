"""inspect_geometry: every geometry estimate of an embedding set, from shared kNN graphs, in one call."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from embedlab._checks import check_int
from embedlab._json import json_safe
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import EmbeddingDataError
from embedlab.geometry._estimate import IDEstimate
from embedlab.geometry.anisotropy import Anisotropy, anisotropy
from embedlab.geometry.danco import danco as estimate_danco
from embedlab.geometry.duplicates import ExactDuplicates, NearDuplicates, Outliers, exact_duplicates, knn_outliers
from embedlab.geometry.duplicates import near_duplicates as find_near_duplicates
from embedlab.geometry.hubness import HubnessReport, hubness
from embedlab.geometry.intrinsic_dim import (
    RecommendedID,
    gride,
    local_id,
    mle_id,
    pca_dimensions,
    recommended_id,
    tle,
    twonn,
    twonn_decimation,
)
from embedlab.geometry.labels import LabelReport, label_structure, label_values
from embedlab.geometry.spectrum import Spectrum, covariance_spectrum
from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.readers import reading_memory
from embedlab.neighbors import KnnResult, Metric, graph_memory, knn, knn_graph, search_params
from embedlab.scale import MemoryEstimate, job_estimate

__all__ = ["GeometryReport", "LIDSummary", "SearchRisk", "inspect_geometry"]

logger = logging.getLogger(__name__)

MIN_ID_POINTS = 10
_LID_BINS = 30


@dataclass(frozen=True)
class LIDSummary:
    """Distribution of pointwise local intrinsic dimension (MLE form, ``k`` neighbours) over the ID queries."""

    k: int
    median: float
    mean: float
    q25: float
    q75: float
    histogram_edges: list[float]
    histogram_counts: list[int]
    n: int

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "k": self.k,
            "median": self.median,
            "mean": self.mean,
            "q25": self.q25,
            "q75": self.q75,
            "histogram": {"edges": self.histogram_edges, "counts": self.histogram_counts},
            "n": self.n,
        }


@dataclass(frozen=True)
class SearchRisk:
    """How hard the set is for graph indexes such as HNSW, read off its local intrinsic dimension.

    HNSW recall at fixed parameters falls as local intrinsic dimension rises (Elliott and Clark 2024, "The
    Impacts of Data, Ordering, and Intrinsic Dimensionality on Recall in Hierarchical Navigable Small
    Worlds"); ``level`` is ``"low"`` below a median LID of 10, ``"high"`` above 20, ``"moderate"`` between.
    """

    level: str
    lid_median: float | None
    note: str

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {"level": self.level, "lid_median": self.lid_median, "note": self.note}


@dataclass(frozen=True)
class GeometryReport:
    """Everything :func:`inspect_geometry` measured, with the sample sizes behind each figure.

    ``to_dict`` gives the stable JSON document of ``embedlab inspect --json``; docs/inspect.md documents
    every key.
    """

    n: int
    n_total: int
    dim: int
    metric: str
    k: int
    intrinsic_dimension: dict[str, IDEstimate]
    recommended_id: RecommendedID | None
    id_queries: int
    duplicates_excluded: int
    lid: LIDSummary | None
    spectrum: Spectrum
    anisotropy: Anisotropy
    hubness: HubnessReport
    exact_duplicates: ExactDuplicates
    near_duplicates: NearDuplicates
    outliers: Outliers
    labels: LabelReport | None
    search_risk: SearchRisk
    knn_graph: dict

    def to_dict(self) -> dict:
        """The JSON document, NaN written as null."""
        ids = {
            name: self.intrinsic_dimension[name].to_dict()
            if name in self.intrinsic_dimension
            else {"value": None, "ci_low": None, "ci_high": None, "n": 0, "scale": {}}
            for name in ("twonn", "mle", "gride", "tle", "danco", "pca90", "pca95", "pca99")
        }
        if self.recommended_id is None:
            recommended = {"value": None, "ci_low": None, "ci_high": None, "n": 0, "scale": {}, "fraction": None}
            recommended |= {"estimates": {}, "agree": None, "note": "Too few distinct points."}
        else:
            recommended = self.recommended_id.to_dict()
        exact, near = self.exact_duplicates.to_dict(), self.near_duplicates.to_dict()
        document = {
            "n": self.n,
            "n_total": self.n_total,
            "sampled": self.n < self.n_total,
            "dim": self.dim,
            "metric": self.metric,
            "k": self.k,
            "intrinsic_dimension": {
                "recommended": recommended,
                **ids,
                "n_queries": self.id_queries,
                "duplicates_excluded": self.duplicates_excluded,
            },
            "lid": None if self.lid is None else self.lid.to_dict(),
            "effective_rank": self.spectrum.effective_rank,
            "spectrum": self.spectrum.to_dict(),
            "anisotropy": self.anisotropy.to_dict(),
            "hubness": self.hubness.to_dict(),
            "duplicates": {
                "exact_pairs": exact["pairs"],
                "exact_groups": exact["groups"],
                "exact_rows": exact["rows"],
                "exact_examples": exact["examples"],
                "near_pairs": near["pairs"],
                "near_pairs_not_exact": near["pairs_not_exact"],
                "near_threshold": near["threshold"],
                "near_examples": near["examples"],
            },
            "outliers": self.outliers.to_dict(),
            "labels": None if self.labels is None else self.labels.to_dict(),
            "search_risk": self.search_risk.to_dict(),
            "knn_graph": self.knn_graph,
        }
        return json_safe(document)


@contextmanager
def _timed(step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    logger.info("inspect: %s in %.2f s", step, time.perf_counter() - started)


def _lid_summary(values: np.ndarray, k: int) -> LIDSummary:
    finite = values[np.isfinite(values)]
    counts, edges = np.histogram(finite, bins=_LID_BINS)
    q25, median, q75 = np.quantile(finite, [0.25, 0.5, 0.75])
    return LIDSummary(
        k,
        float(median),
        float(finite.mean()),
        float(q25),
        float(q75),
        edges.tolist(),
        counts.tolist(),
        int(finite.size),
    )


def _search_risk(lid: LIDSummary | None) -> SearchRisk:
    if lid is None:
        return SearchRisk("unknown", None, "Too few distinct points to estimate local intrinsic dimension.")
    median = lid.median
    if median < 10:
        level, advice = "low", "graph indexes (HNSW) reach high recall with default parameters"
    elif median <= 20:
        level, advice = "moderate", "expect to raise HNSW efSearch (or M) to keep recall above 0.95"
    else:
        level, advice = (
            "high",
            "HNSW recall will suffer; measure it, raise efSearch and M, or prefer IVF or exact search",
        )
    return SearchRisk(level, median, f"Median local intrinsic dimension {median:.1f}: {advice}.")


def _intrinsic_dimension(
    X: np.ndarray,
    exact: ExactDuplicates,
    *,
    id_neighbors: int,
    max_queries: int,
    n_boot: int,
    rng: np.random.Generator,
    progress: ProgressReporter,
) -> tuple[dict[str, IDEstimate], RecommendedID | None, LIDSummary | None, int]:
    """ID estimates on the distinct rows of ``X`` (one of each group of exact duplicates), without copying them."""
    distinct = np.flatnonzero(exact.keep_mask)
    if distinct.size < MIN_ID_POINTS:
        logger.warning("only %d distinct points: intrinsic dimension is not estimated", distinct.size)
        return {}, None, None, 0
    seed = int(rng.integers(2**31 - 1))
    queries = distinct[np.sort(rng.choice(distinct.size, min(max_queries, distinct.size), replace=False))]
    k = min(id_neighbors, distinct.size - 1)
    searchable = None if exact.rows == 0 else exact.keep_mask
    graph = knn(X, k, query_rows=queries, searchable=searchable, metric="l2", random_state=seed, progress=progress)
    distances = graph.distances
    estimates = {}
    with _timed("TwoNN"):
        base = twonn(distances, n_boot=n_boot, random_state=seed)
        decimation = twonn_decimation(X, rows=distinct, random_state=seed)
        estimates["twonn"] = IDEstimate(base.value, base.ci_low, base.ci_high, base.n, {1.0: base.value, **decimation})
    mle_k = min(20, k)
    with _timed("MLE, GRIDE and TLE"):
        estimates["mle"] = mle_id(distances, mle_k, n_boot=n_boot, random_state=seed)
        estimates["gride"] = gride(distances, n_boot=max(n_boot // 2, 0), random_state=seed)
        estimates["tle"] = tle(X, graph.indices, distances, mle_k, n_boot=n_boot, random_state=seed)
    with _timed("the recommended estimate"):
        recommended = recommended_id(
            distances, int(distinct.size), decimation=decimation, n_boot=n_boot, random_state=seed
        )
    lid = _lid_summary(local_id(distances, mle_k), mle_k)
    return estimates, recommended, lid, int(queries.size)


def inspect_memory(n_rows: int, dim: int, *, k: int = 10, spectrum_rows: int = 10_000) -> MemoryEstimate:
    """The estimated peak memory of :func:`inspect_geometry` of a set of ``n_rows`` x ``dim`` read with ``load``
    (``embedlab inspect``): the set, the exact searches' copy of the rows, the shared kNN graph and the
    spectrum's float64 sample."""
    return job_estimate(
        f"inspect of {n_rows:,} x {dim}",
        *reading_memory(n_rows, dim),
        # An HNSW graph re-ranks with that copy (counted by graph_memory).
        ("searched copy", 4.0 * n_rows * dim if search_params("auto", n_rows, n_rows).method == "exact" else 0.0),
        *graph_memory(n_rows, dim, k),
        ("spectrum sample", 3 * 8.0 * min(n_rows, spectrum_rows) * dim),
    )


def inspect_geometry(
    emb: EmbeddingSet,
    *,
    labels: str | np.ndarray | None = None,
    sample: int | None = None,
    n_total: int | None = None,
    k: int = 10,
    metric: Metric = "cosine",
    id_neighbors: int = 64,
    max_id_queries: int = 10_000,
    spectrum_rows: int = 10_000,
    near_duplicate_threshold: float = 0.98,
    danco: bool = False,
    n_boot: int = 200,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> GeometryReport:
    """Measure what an embedding set really is: dimension, spectrum, anisotropy, hubness, duplicates,
    outliers and, with labels, label structure.

    Parameters
    ----------
    emb : EmbeddingSet
    labels : str or array-like, optional
        A metadata column name, or one label per row.
    sample : int, optional
        Inspect a seeded uniform sample of this many rows: the rows ``emb.sample(sample, random_state)`` keeps,
        which ``load(path, sample=sample, random_state=random_state)`` reads without the whole set in memory.
    n_total : int, optional
        The rows of the set ``emb`` was sampled from while reading, reported as ``n_total``; by default
        ``len(emb)``.
    k : int, default=10
        Neighbours of the shared kNN graph (hubness, near duplicates, outliers, labels); reduced to ``n - 1``
        for tiny sets.
    metric : {"cosine", "l2", "ip"}, default="cosine"
        Metric of that graph. Intrinsic dimension always uses Euclidean distances of the vectors as given.
    id_neighbors : int, default=64
        Neighbours for the intrinsic-dimension estimators (GRIDE's largest scale).
    max_id_queries : int, default=10000
        Points the intrinsic-dimension estimators average over; their neighbours are searched among all
        distinct points.
    spectrum_rows : int, default=10000
        Rows sampled for the spectrum, PCA dimension and anisotropy.
    near_duplicate_threshold : float, default=0.98
        Cosine similarity at or above which two rows are near duplicates.
    danco : bool, default=False
        Also estimate the dimension with DANCo (:func:`~embedlab.geometry.danco`) on the distinct rows, its
        divergence per dimension under ``scale``; it calibrates on simulated balls as large as the set.
    n_boot : int, default=200
        Bootstrap resamples of each interval.
    random_state : int or None, default=0
    progress : ProgressReporter, optional

    Returns
    -------
    GeometryReport

    Raises
    ------
    EmbeddingDataError
        If the set has fewer than 2 rows, or labels do not fit it.
    """
    rng = np.random.default_rng(random_state)
    labelled = label_values(emb, labels)
    if labelled is not None and len(labelled) != len(emb):
        raise EmbeddingDataError(f"{len(labelled)} labels for {len(emb)} rows; give one label per row.")
    n_total = len(emb) if n_total is None else check_int(n_total, "n_total", len(emb), why="the rows sampled from")
    if sample is not None and sample < len(emb):
        positions = emb.sample_positions(sample, random_state)
        emb = emb.take(positions)
        labelled = None if labelled is None else np.asarray(labelled)[positions]
    n = len(emb)
    if n < 2:
        raise EmbeddingDataError(f"{emb.source or 'the set'}: inspect needs at least 2 rows, got {n}.")
    k_graph = min(k, n - 1)
    if k_graph < k:
        logger.warning("only %d rows: the kNN graph uses k=%d instead of %d", n, k_graph, k)

    with _timed("exact duplicates"):
        exact = exact_duplicates(emb.vectors, ids=emb.ids)
    with _timed("intrinsic dimension"):
        estimates, recommended, lid, id_queries = _intrinsic_dimension(
            emb.vectors,
            exact,
            id_neighbors=id_neighbors,
            max_queries=max_id_queries,
            n_boot=n_boot,
            rng=rng,
            progress=progress,
        )
    distinct = np.flatnonzero(exact.keep_mask)
    if danco and distinct.size >= MIN_ID_POINTS:
        with _timed("DANCo"):
            value, divergences = estimate_danco(emb.vectors[distinct], random_state=random_state)
            estimates["danco"] = IDEstimate(value, value, value, int(distinct.size), divergences)
    spectrum_rows_chosen = np.sort(rng.choice(distinct.size, min(spectrum_rows, distinct.size), replace=False))
    spectrum_sample = emb.vectors[distinct[spectrum_rows_chosen]]
    with _timed("spectrum and PCA"):
        spectrum = covariance_spectrum(spectrum_sample if len(spectrum_sample) >= 2 else emb.vectors[:2])
        if len(spectrum_sample) >= 2:
            pca = pca_dimensions(spectrum_sample, n_boot=min(n_boot, 50), random_state=random_state)
            estimates.update({f"pca{round(share * 100)}": est for share, est in pca.items()})
    with _timed("kNN graph"):
        graph = knn_graph(emb, k_graph, metric=metric, random_state=random_state, progress=progress)
    if metric == "cosine":
        cosine_graph = graph
    else:
        cosine_graph = knn_graph(emb, k_graph, metric="cosine", random_state=random_state, progress=progress)
    with _timed("anisotropy"):
        nearest = graph.indices[:, 0]
        found = nearest >= 0
        spread = anisotropy(
            spectrum_sample if len(spectrum_sample) >= 2 else emb.vectors,
            spectrum,
            positives=(emb.vectors, np.column_stack([np.flatnonzero(found), nearest[found]])),
        )
    with _timed("hubness, duplicates, outliers"):
        hubs = hubness(graph.indices, ids=emb.ids, n_points=n)
        near = find_near_duplicates(cosine_graph, ids=emb.ids, vectors=emb.vectors, threshold=near_duplicate_threshold)
        outliers = knn_outliers(graph.distances, ids=emb.ids)
    label_report = None
    if labelled is not None:
        with _timed("labels"):
            label_report = label_structure(emb.vectors, np.asarray(labelled), graph, random_state=random_state)
    return GeometryReport(
        n=n,
        n_total=n_total,
        dim=emb.dim,
        metric=metric,
        k=k_graph,
        intrinsic_dimension=estimates,
        recommended_id=recommended,
        id_queries=id_queries,
        duplicates_excluded=int(exact.rows),
        lid=lid,
        spectrum=spectrum,
        anisotropy=spread,
        hubness=hubs,
        exact_duplicates=exact,
        near_duplicates=near,
        outliers=outliers,
        labels=label_report,
        search_risk=_search_risk(lid),
        knn_graph=_graph_summary(graph),
    )


def _graph_summary(graph: KnnResult) -> dict:
    return {
        "k": graph.k,
        "metric": graph.metric,
        "method": graph.method,
        "recall": graph.recall,
        "recall_sample": graph.recall_sample,
        "params": graph.params.to_dict(),
    }
