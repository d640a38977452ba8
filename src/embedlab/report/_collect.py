"""Everything the report shows, measured once: inspect, clusters with automatic k, what curation would do, a
quick compression plan with faiss anchors, a 2-D map, and the plain-language recommendations drawn from those
figures."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.metrics import silhouette_samples

from embedlab._checks import check_choice, check_int
from embedlab._json import json_safe, plain
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab._version import __version__
from embedlab.cluster import (
    STABLE_JACCARD,
    ClusterReport,
    KSelection,
    cluster_stability,
    find_clusters,
    reduce_dimensions,
    select_k,
)
from embedlab.compress import CompressionPlan, plan_compression
from embedlab.curate import CurationOverview, curation_overview
from embedlab.exceptions import ConfigurationError, EmbeddingDataError, MissingDependencyError
from embedlab.geometry import GeometryReport, inspect_geometry
from embedlab.io import EmbeddingSet, reading_memory
from embedlab.neighbors import graph_memory, search_params
from embedlab.scale import MemoryEstimate, job_estimate

__all__ = ["MapPoints", "Report", "build_report", "quick_anchors", "quick_codecs"]

logger = logging.getLogger(__name__)

#: Recall@10 the compression recommendation aims for.
TARGET_RECALL = 0.99
#: Rows behind the per-cluster silhouette.
_SUPPORT_SAMPLE = 5000
#: Fewest rows the map may be drawn from (``max_points``).
_MIN_MAP_POINTS = 3
# UMAP's fuzzy graph (15 neighbours, a few arrays each) and layout per mapped row, with numba's buffers.
_MAP_ROW_BYTES = 2_000
#: Longest text kept per map point (shown on hover, searched) and per table row.
_MAP_TEXT_CHARS = 240
_TABLE_TEXT_CHARS = 500


def _text(value: object, limit: int) -> str:
    """A text for the page: missing ones empty (not "None"), long ones cut with an ellipsis."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def quick_codecs(dim: int) -> list[str]:
    """A short codec grid spanning 2 bytes to 1 bit per dimension, for the report's quick plan.

    Examples
    --------
    >>> quick_codecs(384)
    ['float16', 'int8', 'int4', 'binary', 'binary:itq', 'rabitq:1', 'pca:96+int8', 'pq:48']
    """
    specs = ["float16", "int8", "int4", "binary", "binary:itq", "rabitq:1"]
    if dim % 4 == 0 and dim // 4 >= 8:
        specs.append(f"pca:{dim // 4}+int8")
    if dim % 8 == 0:
        specs.append(f"pq:{dim // 8}")
    return specs


def quick_anchors(dim: int) -> list[str]:
    """faiss reference indexes at the byte sizes of :func:`quick_codecs`: scalar 8 and 4 bit, PQ (without faiss's
    slow polysemous re-ordering, which changes no recall).

    Examples
    --------
    >>> quick_anchors(384)
    ['SQ8', 'SQ4', 'PQ48np']
    """
    return ["SQ8", "SQ4"] + ([f"PQ{dim // 8}np"] if dim % 8 == 0 else [])


@dataclass(frozen=True)
class MapPoints:
    """A 2-D layout of (a sample of) the set.

    Attributes
    ----------
    rows : numpy.ndarray of int64
        Positions in the set of the points drawn, ascending.
    xy : numpy.ndarray of shape (len(rows), 2), float32
    method : str
        ``"umap"`` or ``"pca"`` (when umap-learn is not installed).
    n_total : int
        Rows in the set; ``len(rows) < n_total`` means a uniform sample was drawn.
    note : str
        How the layout was computed, in words.
    """

    rows: np.ndarray = field(repr=False)
    xy: np.ndarray = field(repr=False)
    method: str
    n_total: int
    note: str

    @property
    def sampled(self) -> bool:
        return len(self.rows) < self.n_total


def map_points(
    emb: EmbeddingSet, *, max_points: int = 50_000, metric: str = "cosine", random_state: int | None = 0
) -> MapPoints:
    """Lay the set out in 2-D with UMAP (McInnes et al. 2018) on embedlab's kNN graph, or PCA without
    umap-learn; beyond ``max_points`` rows, on a seeded uniform sample, which keeps the density of every
    region in proportion.

    Parameters
    ----------
    emb : EmbeddingSet
    max_points : int, default=50000
    metric : {"cosine", "l2"}, default="cosine"
    random_state : int or None, default=0

    Returns
    -------
    MapPoints

    References
    ----------
    McInnes, L., Healy, J. and Melville, J. (2018). UMAP: Uniform Manifold Approximation and Projection for
    dimension reduction. arXiv:1802.03426.
    """
    max_points = check_int(max_points, "max_points", _MIN_MAP_POINTS)
    n = len(emb)
    rows = emb.sample_positions(max_points, random_state)
    sampled = f"all {n:,} rows"
    if rows.size < n:
        sampled = f"a uniform random sample of {rows.size:,} of {n:,} rows (seed {random_state})"
    vectors = emb.vectors[rows]
    try:
        xy = reduce_dimensions(vectors, method="umap", n_components=2, metric=metric, random_state=random_state)
        method, how = "umap", f"UMAP (15 neighbours, {metric}) of {sampled}"
    except (MissingDependencyError, ConfigurationError) as error:
        logger.warning("map: UMAP unavailable (%s); drawing the first two principal components", error)
        xy = reduce_dimensions(vectors, method="pca", n_components=2, metric=metric, random_state=random_state)
        method, how = "pca", f"the first two principal components of {sampled} (UMAP unavailable: {error})"
    return MapPoints(rows=rows, xy=np.asarray(xy, dtype=np.float32), method=method, n_total=n, note=how)


@dataclass(frozen=True)
class Report:
    """Every figure of the report and how each was computed; :func:`embedlab.report.write_html` draws it.

    ``to_dict`` gives the summary document (``embedlab report --json``), ``page_data`` the whole data the
    HTML page embeds (the summary plus the map's points).
    """

    name: str
    n: int
    dim: int
    metric: str
    geometry: GeometryReport
    k_selection: KSelection | None
    clusters: ClusterReport
    cluster_support: dict
    curation: CurationOverview
    compression: CompressionPlan | None
    compression_note: str | None
    map: MapPoints
    ids: np.ndarray = field(repr=False)
    texts: np.ndarray | None = field(repr=False)
    labels: np.ndarray | None = field(repr=False)
    label_column: str | None
    recommendations: list[str]
    seconds: dict[str, float]

    def to_dict(self) -> dict:
        """The report's figures as a JSON-ready document (without the map's points)."""
        clusters = self.clusters.to_dict()
        clusters["support"] = self.cluster_support
        if self.k_selection is not None:
            clusters["k_selection"] = self.k_selection.to_dict()
        return json_safe(
            {
                "name": self.name,
                "embedlab": __version__,
                "n": self.n,
                "dim": self.dim,
                "metric": self.metric,
                "has_text": self.texts is not None,
                "label_column": self.label_column,
                "recommendations": self.recommendations,
                "geometry": self.geometry.to_dict(),
                "clusters": clusters,
                "curation": self.curation.to_dict(),
                "compression": None if self.compression is None else self.compression.to_dict(),
                "compression_note": self.compression_note,
                "map": {
                    "method": self.map.method,
                    "n_points": len(self.map.rows),
                    "n_total": self.map.n_total,
                    "sampled": self.map.sampled,
                    "note": self.map.note,
                },
                "timings": {"seconds": self.seconds},
                "texts": self._texts_by_id(),
            }
        )

    def _texts_by_id(self) -> dict:
        """Texts (and labels) of the ids the tables name: duplicates, outliers, hubs."""
        geometry = self.geometry.to_dict()
        wanted = set()
        duplicates = geometry["duplicates"]
        for group in duplicates["exact_examples"]:
            wanted.update(group)
        for pair in duplicates["near_examples"]:
            wanted.update((pair["a"], pair["b"]))
        wanted.update(geometry["outliers"]["ids"])
        wanted.update(hub["id"] for hub in geometry["hubness"]["top_hubs"])
        wanted.update(plain(identifier) for identifier in self.curation.ids)
        position = {plain(identifier): i for i, identifier in enumerate(self.ids.tolist())}
        found = {}
        for identifier in wanted:
            row = position.get(identifier)
            if row is None:
                continue
            found[str(identifier)] = {
                "text": None if self.texts is None else _text(self.texts[row], _TABLE_TEXT_CHARS),
                "label": None if self.labels is None else str(self.labels[row]),
            }
        return found

    def page_data(self) -> dict:
        """The summary plus one entry per map point: x, y, cluster, label, id and text."""
        document = self.to_dict()
        rows = self.map.rows
        xy = self.map.xy
        lo = xy.min(axis=0)
        span = float((xy.max(axis=0) - lo).max()) or 1.0
        # One scale for both axes keeps the layout's shape; 4 digits are sub-pixel at the zooms a map needs.
        scaled = np.round((xy - lo) / span * 10_000).astype(np.int32)
        label_names, label_codes = (None, None)
        if self.labels is not None:
            label_names, label_codes = np.unique(self.labels[rows].astype(str), return_inverse=True)
        document["map_text_chars"] = _MAP_TEXT_CHARS
        document["points"] = {
            "x": scaled[:, 0].tolist(),
            "y": scaled[:, 1].tolist(),
            "cluster": self.clusters.labels[rows].tolist(),
            "id": [str(plain(identifier)) for identifier in self.ids[rows].tolist()],
            "text": None if self.texts is None else [_text(t, _MAP_TEXT_CHARS) for t in self.texts[rows]],
            "label": None if label_codes is None else label_codes.tolist(),
            "label_names": None if label_names is None else label_names.tolist(),
        }
        return document


@contextmanager
def _step(name: str, seconds: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - started, 2)
    logger.info("report: %s in %.1f s", name, seconds[name])


def _cluster_support(emb: EmbeddingSet, labels: np.ndarray, metric: str, random_state: int | None) -> dict:
    """How well the data support each cluster: its stability when k-means is refitted on resamples (Hennig
    2007; stable, hence well supported, at a mean Jaccard of 0.75 or more) and its members' mean silhouette
    on a seeded sample (Rousseeuw 1987; > 0: closer to their own cluster than to the next one)."""
    rows = emb.sample_positions(_SUPPORT_SAMPLE, random_state)
    sample_labels = labels[rows]
    kept = sample_labels >= 0
    silhouette: dict[str, float | None] = {str(c): None for c in np.unique(labels[labels >= 0])}
    if np.unique(sample_labels[kept]).size >= 2:
        values = silhouette_samples(
            emb.vectors[rows][kept], sample_labels[kept], metric="cosine" if metric == "cosine" else "euclidean"
        )
        for cluster in np.unique(sample_labels[kept]):
            silhouette[str(cluster)] = float(values[sample_labels[kept] == cluster].mean())
    stability = cluster_stability(emb.vectors, labels, metric=metric, random_state=random_state)
    return {
        "stability": {str(c): j for c, j in zip(stability.clusters, stability.jaccard, strict=True)},
        "stable_jaccard": STABLE_JACCARD,
        "stability_resamples": stability.n_boot,
        "stability_sample": stability.sample_size,
        "well_supported": stability.n_stable,
        "silhouette": silhouette,
        "silhouette_sample": int(kept.sum()),
    }


def _count(n: int, noun: str) -> str:
    """``"1 group"``, ``"2 groups"``: a count with its noun (the last word) in the right number."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _recommendations(report_dict: dict) -> list[str]:
    """Plain-language advice, each sentence backed by a figure of ``report_dict`` (:meth:`Report.to_dict`)."""
    advice = []
    plan = report_dict["compression"]
    if plan is not None:
        points = [p for p in plan["points"] if p["recall_at_k"] is not None]
        float_bytes = 4 * report_dict["dim"]
        alone = [p for p in points if p["rescore"] is None and p["recall_at_k"] >= TARGET_RECALL]
        rescored = [p for p in points if p["rescore"] is not None and p["recall_at_k"] >= TARGET_RECALL]
        queries = f"{plan['n_queries']:,} held-out queries"
        if alone:
            best = min(alone, key=lambda p: (p["bytes_per_vector"], -p["recall_at_k"]))
            advice.append(
                f"Store {best['codec']} codes: {best['bytes_per_vector']:,} B per vector, "
                f"{float_bytes / best['bytes_per_vector']:.0f}x smaller than float32, keep recall@{plan['k']} at "
                f"{best['recall_at_k']:.3f} ({queries})."
            )
        cheapest_alone = min((p["bytes_per_vector"] for p in alone), default=None)
        rescored = [p for p in rescored if cheapest_alone is None or p["bytes_per_vector"] < cheapest_alone]
        if rescored:
            best = min(rescored, key=lambda p: (p["bytes_per_vector"], p["rescore"], -p["recall_at_k"]))
            advice.append(
                f"With exact re-ranking of {best['rescore']} x {plan['k']} candidates from the full vectors on disk, "
                f"{best['codec'].split('+rescore')[0]} keeps only {best['bytes_per_vector']:,} B per vector "
                f"in memory ({float_bytes / best['bytes_per_vector']:.0f}x smaller) at recall@{plan['k']} "
                f"{best['recall_at_k']:.3f}."
            )
        if points and not alone and not rescored:
            best = max(points, key=lambda p: p["recall_at_k"])
            advice.append(
                f"No compressed form measured keeps recall@{plan['k']} at {TARGET_RECALL}: the best is "
                f"{best['codec']} at {best['recall_at_k']:.3f}; keep float32 vectors for exact search."
            )
    dup = report_dict["geometry"]["duplicates"]
    if dup["exact_rows"]:
        advice.append(
            f"Remove {_count(dup['exact_rows'], 'exact duplicate row')} ({_count(dup['exact_groups'], 'group')}) "
            f"before indexing or training; {_count(dup['near_pairs_not_exact'], 'more pair')} of near duplicates "
            f"(cosine >= {dup['near_threshold']})."
        )
    elif dup["near_pairs"]:
        advice.append(
            f"No exact duplicates, but {_count(dup['near_pairs'], 'pair')} of near duplicates (cosine >= "
            f"{dup['near_threshold']}): review them before training."
        )
    else:
        advice.append(f"No exact or near duplicates (cosine >= {dup['near_threshold']}).")
    clusters = report_dict["clusters"]
    support = clusters["support"]
    supported = (
        f"{support['well_supported']} of them are well supported (stable: mean Jaccard >= {support['stable_jaccard']} "
        f"with the best match when k-means is refitted on {support['stability_resamples']} resamples of "
        f"{support['stability_sample']:,} rows)"
    )
    selection = clusters.get("k_selection")
    if selection is not None and not selection["clear"]:
        reason = selection["reason"].removeprefix("no clear k ")
        advice.append(
            f"No clear number of clusters {reason} The {clusters['k']} clusters shown ({clusters['method']}) are one "
            f"granularity to browse, not a finding; {supported}."
        )
    else:
        chosen = f" {selection['reason']}" if selection is not None else ""
        advice.append(f"{clusters['k']} clusters ({clusters['method']}).{chosen} {supported}.")
    geometry = report_dict["geometry"]
    recommended = geometry["intrinsic_dimension"]["recommended"]
    pca95 = geometry["intrinsic_dimension"]["pca95"]["value"]
    if recommended["value"] is not None:
        advice.append(
            f"Locally the set varies along about {recommended['value']:.0f} directions ({recommended['value']:.1f}, "
            f"interval {recommended['ci_low']:.1f}-{recommended['ci_high']:.1f}) of {report_dict['dim']}; PCA needs "
            f"{pca95:.0f} components for 95% of the variance. {recommended['note']}"
        )
    hubness = geometry["hubness"]
    if hubness["skewness"] is not None and hubness["skewness"] > 1:
        advice.append(
            f"Hubness is high (k-occurrence skewness {hubness['skewness']:.2f}): a few points are near neighbours of "
            "many others; centring the vectors or a hubness-reducing score (CSLS, mutual proximity) evens search "
            "results out."
        )
    outliers = geometry["outliers"]
    if outliers["count"]:
        advice.append(f"{_count(outliers['count'], 'outlier')} far from their neighbours listed under Geometry.")
    advice.append(geometry["search_risk"]["note"])
    labels = geometry["labels"]
    if labels is not None:
        largest = max(entry["count"] for entry in labels["per_label"]) / labels["n_rows"]
        advice.append(
            f"Neighbours predict the labels ({labels['n_labels']}) with kNN accuracy {labels['knn_accuracy']:.3f} "
            f"(k = {labels['k']}), against {largest:.3f} for always answering the largest label."
        )
    return advice


def report_memory(n_rows: int, dim: int, *, max_map_points: int = 50_000) -> MemoryEstimate:
    """The estimated peak memory of :func:`build_report` of a set of ``n_rows`` x ``dim`` read with ``load``
    (``embedlab report``): the set and what inspect holds (its searched copy, the shared kNN graph), then the map
    (UMAP, imported for it, on at most ``max_map_points`` rows: their vectors, its neighbour graph and layout)."""
    mapped = min(n_rows, max_map_points)
    return job_estimate(
        f"the report of {n_rows:,} x {dim}",
        *reading_memory(n_rows, dim),
        # An HNSW graph re-ranks with that copy (counted by graph_memory).
        ("searched copy", 4.0 * n_rows * dim if search_params("auto", n_rows, n_rows).method == "exact" else 0.0),
        *graph_memory(n_rows, dim),
        ("map", mapped * (8.0 * dim + _MAP_ROW_BYTES)),
        imports=("umap",),
    )


def build_report(
    emb: EmbeddingSet,
    *,
    name: str = "embeddings",
    labels: str | None = None,
    text_column: str | None = None,
    metric: str = "cosine",
    k_values: list[int] | None = None,
    selection_sample: int = 5_000,
    compression: bool = True,
    compression_queries: int = 500,
    max_map_points: int = 50_000,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> Report:
    """Measure everything the HTML report shows.

    1. :func:`embedlab.geometry.inspect_geometry` with its defaults (and the labels).
    2. k chosen by :func:`embedlab.cluster.select_k` (stability, silhouette, gap and BIC combined; it may find
       no clear k, and then says so) on a seeded sample of ``selection_sample`` rows, then
       :func:`embedlab.cluster.find_clusters` (k-means) with that k on every row, named by c-TF-IDF keywords
       when there is text; each cluster's support is its stability (:func:`embedlab.cluster.cluster_stability`)
       and its members' mean silhouette.
    3. :func:`embedlab.curate.curation_overview`: SemDeDup's removal curve, the largest near-duplicate groups,
       and what a balanced sample of a tenth of the rows keeps of each cluster.
    4. A quick :func:`embedlab.compress.plan_compression` of :func:`quick_codecs` with rescoring up to 10 x
       and the faiss anchors of :func:`quick_anchors`, on ``compression_queries`` held-out rows.
    5. A 2-D map (:func:`map_points`), sampled beyond ``max_map_points`` rows.

    Parameters
    ----------
    emb : EmbeddingSet
    name : str, default="embeddings"
        What the report calls the set (usually the file name).
    labels : str, optional
        A metadata column of labels: they colour the map and score the clusters, never train anything.
    text_column : str, optional
        Texts shown on hover and in the tables; the ``text`` column by default when there is one.
    metric : {"cosine", "l2"}, default="cosine"
    k_values : list of int, optional
        Candidate numbers of clusters (default :data:`embedlab.cluster.DEFAULT_K_VALUES`).
    selection_sample : int, default=5000
        Rows on which k is selected: half ``select_k``'s default, so that the whole report of 100,000+ rows
        stays within five minutes on two cores (WordNet: k selection 116 s on 5,000 rows, about 300 s on
        10,000, the same verdict).
    compression : bool, default=True
        Run the quick compression plan (needs at least 40 rows).
    compression_queries : int, default=500
    max_map_points : int, default=50000
    random_state : int or None, default=0
    progress : ProgressReporter, optional

    Returns
    -------
    Report

    Raises
    ------
    EmbeddingDataError
        If a named column is missing or the set has fewer than 10 rows.
    ConfigurationError
        On bad parameters.
    """
    n = len(emb)
    if n < 10:
        raise EmbeddingDataError(f"{name}: a report needs at least 10 rows, got {n}.")
    check_choice(metric, "metric", ("cosine", "l2"))
    check_int(max_map_points, "max_map_points", _MIN_MAP_POINTS)
    for column in (labels, text_column):
        if column is not None and column not in emb.columns:
            raise EmbeddingDataError(
                f"{name} has no column {column!r}; its columns are: {', '.join(emb.columns) or 'none'}."
            )
    texts_column = text_column or ("text" if "text" in emb.columns else None)
    texts = None if texts_column is None else emb.column(texts_column)
    label_values = None if labels is None else emb.column(labels)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with _step("inspect", seconds):
        geometry = inspect_geometry(emb, labels=labels, metric=metric, random_state=random_state, progress=progress)
    with _step("clusters", seconds):
        selection = select_k(
            emb.vectors, k_values, metric=metric, sample=selection_sample, random_state=random_state, progress=progress
        )
        clusters = find_clusters(
            emb,
            n_clusters=selection.best_k,
            metric=metric,
            labels=labels,
            text_column=texts_column,
            random_state=random_state,
            progress=progress,
        )
        support = _cluster_support(emb, clusters.labels, metric, random_state)
    with _step("curation", seconds):
        curation = curation_overview(emb, clusters.labels, random_state=random_state, progress=progress)
    plan, plan_note = None, None
    if not compression:
        plan_note = "compression plan not run (asked to skip it)"
    elif metric != "cosine":
        plan_note = "compression plan not run: the planner ranks by cosine or inner product, not l2"
    elif n < 40:
        plan_note = f"compression plan not run: {n} rows are too few to hold queries out (at least 40)"
    else:
        with _step("compression", seconds):
            plan = plan_compression(
                emb,
                k=min(10, n // 4),
                codecs=quick_codecs(emb.dim),
                anchors=quick_anchors(emb.dim),
                n_queries=compression_queries,
                rescore_max=10,
                random_state=random_state,
                progress=progress,
            )
    with _step("map", seconds):
        layout = map_points(emb, max_points=max_map_points, metric=metric, random_state=random_state)
    seconds["total"] = round(time.perf_counter() - started, 2)
    report = Report(
        name=name,
        n=n,
        dim=emb.dim,
        metric=metric,
        geometry=geometry,
        k_selection=selection,
        clusters=clusters,
        cluster_support=support,
        curation=curation,
        compression=plan,
        compression_note=plan_note,
        map=layout,
        ids=emb.ids,
        texts=texts,
        labels=label_values,
        label_column=labels,
        recommendations=[],
        seconds=seconds,
    )
    return replace(report, recommendations=_recommendations(report.to_dict()))
