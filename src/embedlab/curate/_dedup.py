"""``deduplicate``: one decision per row (keep or not, why, and the row it duplicates) by exact identity, near
duplicate groups on the cosine kNN graph, SemDeDup, or D4 (SemDeDup, then the most prototypical rows pruned)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from sklearn.utils import check_random_state

from embedlab._checks import check_choice, check_int
from embedlab._json import plain
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.cluster import KMeans
from embedlab.curate._groups import duplicate_groups, relative_threshold
from embedlab.curate._semdedup import KEEP_POLICIES, KeepPolicy, SemDeDup, check_eps, check_fraction
from embedlab.exceptions import ConfigurationError
from embedlab.geometry import exact_duplicates
from embedlab.io import EmbeddingSet
from embedlab.io.embedding_set import ID_COLUMN
from embedlab.io.readers import reading_memory
from embedlab.io.shards import ShardedSet
from embedlab.io.validation import Rows, prepare
from embedlab.neighbors import knn_graph, threshold_neighbors
from embedlab.scale import Backend, MemoryEstimate, job_estimate

__all__ = ["DEDUP_METHODS", "EPS_GRID", "Deduplication", "deduplicate"]

DedupMethod = Literal["exact", "near", "semdedup", "d4"]
DEDUP_METHODS: tuple[str, ...] = ("exact", "near", "semdedup", "d4")
#: Why D4 removes a row that SemDeDup kept.
PROTOTYPICAL = "prototypical"
#: The thresholds of SemDeDup's removal curve.
EPS_GRID: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
#: Rows a SemDeDup cluster holds on average when ``n_clusters`` is not given.
_ROWS_PER_CLUSTER = 10_000
_SEARCH_BUFFER_BYTES = 100 * 2**20
# SemDeDup's block of similarities (2^24 float32), its mask and the copy of its rows' cluster.
_SIMILARITY_BLOCK_BYTES = 3 * 4 * 2**24


@dataclass(frozen=True)
class Deduplication:
    """What :func:`deduplicate` decided for every row, with its evidence.

    Attributes
    ----------
    method : str
    parameters : dict
        The settings that decided (threshold, eps, keep policy, clusters).
    keep : ndarray of shape (n,), bool
    group : ndarray of shape (n,), int64
        The row's group of duplicates (exact, near) or its SemDeDup cluster (semdedup, d4); -1 for a row in no
        group.
    duplicate_of : ndarray of shape (n,), int64
        For a removed row, the row it duplicates (kept or itself removed); -1 otherwise.
    similarity : ndarray of shape (n,), float32
        For a removed row, its cosine similarity to ``duplicate_of``; under SemDeDup, every row's largest
        similarity to a row ranked before it; NaN where there is none.
    removal_curve : dict of float to float
        SemDeDup and D4: the fraction SemDeDup removes at each ``eps`` of :data:`EPS_GRID`.
    reason : ndarray of shape (n,), str, optional
        Why each row goes ("" when kept): the method, or under D4 "semdedup" or "prototypical" (whose
        ``similarity`` is then its cosine to its centroid); by default the method for every removed row.
    """

    method: str
    parameters: dict[str, Any]
    keep: np.ndarray = field(repr=False)
    group: np.ndarray = field(repr=False)
    duplicate_of: np.ndarray = field(repr=False)
    similarity: np.ndarray = field(repr=False)
    removal_curve: dict[float, float] = field(default_factory=dict)
    reason: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_removed(self) -> int:
        return int((~self.keep).sum())

    def to_table(self, ids: np.ndarray) -> pa.Table:
        """One row per input row: ``id``, ``keep``, ``reason``, ``group``, ``duplicate_of`` (an id, null when
        kept), ``similarity`` (null where there is none) and ``weight`` (1.0: every kept row stands for itself)."""
        ids = np.asarray(ids)
        columns = self.columns()
        duplicate_of = columns.pop("duplicate_of_row")
        columns["similarity"] = pa.array(self.similarity, mask=np.isnan(self.similarity))
        return pa.table(
            {
                ID_COLUMN: pa.array(ids),
                **{name: columns[name] for name in ("keep", "reason", "group")},
                "duplicate_of": pa.array(ids[np.maximum(duplicate_of, 0)], mask=duplicate_of < 0),
                **{name: columns[name] for name in ("similarity", "weight")},
            }
        )

    def columns(self) -> dict[str, np.ndarray]:
        """The per-row columns without ids (what a sharded run writes beside each shard's ids): ``keep``,
        ``reason``, ``group``, ``duplicate_of_row`` (the row number, -1 when kept), ``similarity`` (NaN where
        there is none) and ``weight``."""
        reason = np.where(~self.keep, self.method, "") if self.reason is None else self.reason
        return {
            "keep": self.keep,
            "reason": reason.astype(str),
            "group": self.group,
            "duplicate_of_row": self.duplicate_of,
            "similarity": self.similarity,
            "weight": np.ones(self.keep.size),
        }

    def to_dict(self) -> dict:
        """JSON-ready summary (without the per-row arrays)."""
        return {
            "method": self.method,
            "parameters": plain(self.parameters),
            "n": int(self.keep.size),
            "kept": int(self.keep.sum()),
            "removed": self.n_removed,
            "removal_curve": {str(eps): fraction for eps, fraction in self.removal_curve.items()},
        }


def _from_groups(method: str, parameters: dict, group: np.ndarray, best: np.ndarray) -> Deduplication:
    """Keep the first row of each group; the others duplicate it."""
    n = group.size
    grouped = np.flatnonzero(group >= 0)
    n_groups = int(group.max()) + 1 if grouped.size else 0
    first = np.full(n_groups, n, dtype=np.int64)
    np.minimum.at(first, group[grouped], grouped)
    keep = np.ones(n, dtype=bool)
    keep[grouped] = False
    keep[first] = True
    duplicate_of = np.where(keep, -1, first[np.maximum(group, 0)]).astype(np.int64)
    similarity = np.where(keep, np.nan, best).astype(np.float32)
    return Deduplication(method, parameters, keep, group, duplicate_of, similarity)


def dedup_memory(n_rows: int, dim: int, *, method: DedupMethod = "semdedup", k: int = 10) -> MemoryEstimate:
    """The estimated peak memory of :func:`deduplicate` of a set of ``n_rows`` x ``dim`` read with ``load``
    (``embedlab curate dedup``): the set, its unit copy, the per-row decisions and, by method, the row hashes,
    the threshold graph with its cells, or SemDeDup's k-means and blocks of similarities."""
    check_choice(method, "method", DEDUP_METHODS)
    parts: list[tuple[str, float]] = [
        *reading_memory(n_rows, dim),
        ("unit copy", 4.0 * n_rows * dim),
        ("per-row decisions", 48.0 * n_rows),
    ]
    if method == "exact":
        parts.append(("row hashes", 24.0 * n_rows))
    elif method == "near":
        parts += [("threshold graph", 12.0 * n_rows * k), ("search buffers", _SEARCH_BUFFER_BYTES)]
    else:
        parts += [("search buffers", _SEARCH_BUFFER_BYTES), ("similarity blocks", _SIMILARITY_BLOCK_BYTES)]
    return job_estimate(f"{method} deduplication of {n_rows:,} x {dim}", *parts)


def deduplicate(
    data: EmbeddingSet | object,
    *,
    method: DedupMethod = "semdedup",
    threshold: float = 0.98,
    relative: float | None = None,
    k: int = 10,
    eps: float | None = None,
    remove_fraction: float | None = None,
    keep: KeepPolicy = "hard",
    n_clusters: int | None = None,
    random_state: int | None = 0,
    backend: str | Backend = "local",
    work_dir: str | None = None,
    progress: ProgressReporter = NULL_PROGRESS,
) -> Deduplication:
    """Decide, for every row, whether it is kept or is a duplicate of another row.

    * ``"exact"``: byte-identical rows; the first of each group is kept.
    * ``"near"``: groups of rows joined by cosine similarity >= ``threshold``, each row joined to its ``k`` most
      similar rows at that threshold, found exactly (:func:`~embedlab.neighbors.threshold_neighbors`), then
      grouped (:func:`duplicate_groups`); the first of each group is kept.
    * ``"semdedup"``: :class:`SemDeDup` at ``eps`` (default ``1 - threshold``) or at ``remove_fraction``.
    * ``"d4"`` (Tirumala et al. 2023): SemDeDup at ``eps``, then the kept rows clustered again by spherical
      k-means and the most prototypical of them (closest to their centroid) removed until ``remove_fraction``
      of all rows are gone (default 0.5); nothing more when SemDeDup already removed that many.

    Parameters
    ----------
    data : EmbeddingSet, ShardedSet or array-like of shape (n, d)
        A sharded set is deduplicated by SemDeDup shard by shard on ``backend``, in bounded memory (only the
        per-row results, 21 bytes a row, are held whole).
    method : {"exact", "near", "semdedup", "d4"}, default="semdedup"
    threshold : float, default=0.98
        Cosine similarity of a near duplicate (``near``; under ``semdedup`` the default ``eps`` is
        ``1 - threshold``).
    relative : float, optional
        ``near``: instead of ``threshold``, a pair is a near duplicate when its cosine distance is below
        ``relative`` times the median distance of the rows to their nearest neighbour
        (:func:`relative_threshold`; Cleanlab's rule, whose default is 0.13), which carries across models and
        modalities where a fixed cosine does not.
    k : int, default=10
        ``near``: links kept per row, to its ``k`` most similar rows at the threshold; the groups are the
        connected components of the links.
    eps : float, optional
        SemDeDup's threshold in (0, 2).
    remove_fraction : float, optional
        SemDeDup: remove exactly this fraction in [0, 1) instead of thresholding. D4: the fraction removed in
        all (default 0.5).
    keep : {"hard", "easy", "random"}, default="hard"
        SemDeDup's keep policy.
    n_clusters : int, optional
        SemDeDup's k-means clusters; by default one per 10,000 rows.
    random_state : int or None, default=0
    backend : {"local", "ray"} or Backend, default="local"
    work_dir : str, optional
        On shards: where SemDeDup's shuffle writes its scratch files (:class:`SemDeDup`).
    progress : ProgressReporter, optional

    Returns
    -------
    Deduplication

    Raises
    ------
    ConfigurationError
        On a bad method, threshold, eps or fraction, or options another method takes.

    References
    ----------
    Abbas, Tirumala, Simig, Ganguli and Morcos (2023), "SemDeDup: Data-efficient learning at web-scale through
    semantic deduplication", arXiv:2303.09540.
    Tirumala, Simig, Aghajanyan and Morcos (2023), "D4: Improving LLM pretraining via document de-duplication
    and diversification", NeurIPS 36.
    Sorscher, Geirhos, Shekhar, Ganguli and Morcos (2022), "Beyond neural scaling laws: beating power law scaling
    via data pruning", NeurIPS 35 (the prototypicality metric).
    """
    check_choice(method, "method", DEDUP_METHODS)
    check_choice(keep, "keep", KEEP_POLICIES)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise ConfigurationError(f"threshold must be a cosine similarity in (0, 1], got {threshold!r}.")
    if method in ("exact", "near") and (eps is not None or remove_fraction is not None or n_clusters is not None):
        raise ConfigurationError(f"eps, remove_fraction and n_clusters are SemDeDup's; method={method!r} takes none.")
    if relative is not None and method != "near":
        raise ConfigurationError(f"relative is a rule of method='near'; method={method!r} takes a threshold or eps.")
    if isinstance(data, ShardedSet):
        if method != "semdedup":
            raise ConfigurationError(
                f"on shards deduplicate runs method='semdedup' (a shuffle by cluster); {method!r} needs the set in "
                "memory (on the command line, leave out --backend)."
            )
        rows, n = data, data.n_rows
    else:
        emb = data if isinstance(data, EmbeddingSet) else EmbeddingSet(np.asarray(data))
        rows, n = None, len(emb)
    if method == "exact":
        found = exact_duplicates(emb.vectors)
        return _from_groups(method, {}, found.group, np.ones(len(emb)))
    if method == "near":
        k = check_int(k, "k")
        if relative is not None:
            spacing = knn_graph(emb, min(k, len(emb) - 1), metric="cosine", random_state=random_state)
            threshold = relative_threshold(spacing, relative)
        graph = threshold_neighbors(emb.vectors, threshold, k, random_state=random_state, progress=progress)
        groups = duplicate_groups(graph, threshold)
        best = np.full(len(emb), -np.inf)
        np.maximum.at(best, groups.a, groups.similarity)
        np.maximum.at(best, groups.b, groups.similarity)
        parameters = {"threshold": float(threshold), "relative": relative, "k": int(k)}
        return _from_groups(method, parameters, groups.group, best)
    rows = prepare(emb.vectors, "cosine") if rows is None else rows
    clusters = max(1, -(-n // _ROWS_PER_CLUSTER)) if n_clusters is None else check_int(n_clusters, "n_clusters")
    if method == "d4":
        return _d4(rows, clusters, threshold, eps, remove_fraction, keep, random_state, progress)
    if remove_fraction is not None and eps is not None:
        raise ConfigurationError("give eps or remove_fraction, not both.")
    if remove_fraction is None:
        eps = check_eps(1.0 - float(threshold) if eps is None else eps)
    model = SemDeDup(clusters, keep=keep, random_state=random_state, backend=backend, work_dir=work_dir)
    model.fit(rows, progress=progress)
    kept = model.keep_mask(eps=eps) if remove_fraction is None else model.keep_mask(remove_fraction=remove_fraction)
    similarity = np.where(np.isfinite(model.max_similarity_), model.max_similarity_, np.nan).astype(np.float32)
    parameters = {"eps": eps, "remove_fraction": remove_fraction, "keep": keep, "n_clusters": clusters}
    if remove_fraction is not None:
        parameters["eps"] = model.eps_for_fraction(remove_fraction)
    curve = dict(zip(EPS_GRID, model.removal_curve(EPS_GRID).tolist(), strict=True))
    duplicate_of = np.where(kept, -1, model.duplicate_of_)
    return Deduplication("semdedup", parameters, kept, model.labels_, duplicate_of, similarity, curve)


def _d4(
    rows: Rows,
    n_clusters: int,
    threshold: float,
    eps: float | None,
    remove_fraction: float | None,
    keep: str,
    random_state: int | None,
    progress: ProgressReporter,
) -> Deduplication:
    """SemDeDup at ``eps``, then the most prototypical kept rows pruned to ``remove_fraction`` of all rows."""
    eps = check_eps(1.0 - float(threshold) if eps is None else eps)
    fraction = check_fraction(0.5 if remove_fraction is None else remove_fraction)
    rng = check_random_state(random_state)
    model = SemDeDup(n_clusters, keep=keep, random_state=rng).fit(rows, progress=progress)
    kept = model.keep_mask(eps=eps)
    reason = np.where(kept, "", "semdedup").astype(object)
    similarity = np.where(kept, np.nan, model.max_similarity_).astype(np.float32)
    duplicate_of = np.where(kept, -1, model.duplicate_of_)
    survivors = np.flatnonzero(kept)
    to_prune = int(fraction * rows.n) - (rows.n - survivors.size)
    clusters = min(n_clusters, survivors.size)
    if to_prune > 0 and clusters >= 1:
        kmeans = KMeans(clusters, metric="cosine", random_state=rng).fit(rows.take(survivors))
        centers = kmeans.cluster_centers_ / np.linalg.norm(kmeans.cluster_centers_, axis=1, keepdims=True)
        labels = np.asarray(kmeans.labels_, dtype=np.int64)
        cosine = np.einsum("ij,ij->i", rows.vectors[survivors], centers[labels])
        pruned = survivors[np.lexsort((survivors, -cosine))[:to_prune]]  # closest to their centroid first
        kept[pruned] = False
        reason[pruned] = PROTOTYPICAL
        similarity[pruned] = cosine[np.searchsorted(survivors, pruned)]
    parameters = {"eps": eps, "remove_fraction": fraction, "keep": keep, "n_clusters": n_clusters}
    curve = dict(zip(EPS_GRID, model.removal_curve(EPS_GRID).tolist(), strict=True))
    return Deduplication("d4", parameters, kept, model.labels_, duplicate_of, similarity, curve, reason.astype(str))
