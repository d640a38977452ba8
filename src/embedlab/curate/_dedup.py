"""``deduplicate``: one decision per row (keep or not, why, and the row it duplicates) by exact identity, near
duplicate groups on the cosine kNN graph, or SemDeDup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from embedlab._checks import check_choice, check_int
from embedlab._json import plain
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.curate._groups import duplicate_groups
from embedlab.curate._semdedup import KEEP_POLICIES, KeepPolicy, SemDeDup, check_eps
from embedlab.exceptions import ConfigurationError
from embedlab.geometry import exact_duplicates
from embedlab.io import EmbeddingSet
from embedlab.io.embedding_set import ID_COLUMN
from embedlab.io.validation import prepare
from embedlab.neighbors import knn_graph

__all__ = ["DEDUP_METHODS", "EPS_GRID", "Deduplication", "deduplicate"]

DedupMethod = Literal["exact", "near", "semdedup"]
DEDUP_METHODS: tuple[str, ...] = ("exact", "near", "semdedup")
#: The thresholds of SemDeDup's removal curve.
EPS_GRID: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
#: Rows a SemDeDup cluster holds on average when ``n_clusters`` is not given.
_ROWS_PER_CLUSTER = 10_000


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
        The row's group of duplicates (exact, near) or its cluster (semdedup); -1 for a row in no group.
    duplicate_of : ndarray of shape (n,), int64
        For a removed row, the row it duplicates (kept or itself removed); -1 otherwise.
    similarity : ndarray of shape (n,), float32
        For a removed row, its cosine similarity to ``duplicate_of``; under SemDeDup, every row's largest
        similarity to a row ranked before it; NaN where there is none.
    removal_curve : dict of float to float
        SemDeDup only: the fraction removed at each ``eps`` of :data:`EPS_GRID`.
    """

    method: str
    parameters: dict[str, Any]
    keep: np.ndarray = field(repr=False)
    group: np.ndarray = field(repr=False)
    duplicate_of: np.ndarray = field(repr=False)
    similarity: np.ndarray = field(repr=False)
    removal_curve: dict[float, float] = field(default_factory=dict)

    @property
    def n_removed(self) -> int:
        return int((~self.keep).sum())

    def to_table(self, ids: np.ndarray) -> pa.Table:
        """One row per input row: ``id``, ``keep``, ``reason``, ``group``, ``duplicate_of`` (an id, null when
        kept), ``similarity`` and ``weight`` (1.0: every kept row stands for itself)."""
        ids = np.asarray(ids)
        removed = ~self.keep
        reason = np.where(removed, self.method, "")
        duplicate_ids = pa.array(ids[np.maximum(self.duplicate_of, 0)], mask=self.duplicate_of < 0)
        return pa.table(
            {
                ID_COLUMN: pa.array(ids),
                "keep": pa.array(self.keep),
                "reason": pa.array(reason.astype(str)),
                "group": pa.array(self.group),
                "duplicate_of": duplicate_ids,
                "similarity": pa.array(self.similarity, mask=np.isnan(self.similarity)),
                "weight": pa.array(np.ones(self.keep.size)),
            }
        )

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


def deduplicate(
    data: EmbeddingSet | object,
    *,
    method: DedupMethod = "semdedup",
    threshold: float = 0.98,
    k: int = 10,
    eps: float | None = None,
    remove_fraction: float | None = None,
    keep: KeepPolicy = "hard",
    n_clusters: int | None = None,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> Deduplication:
    """Decide, for every row, whether it is kept or is a duplicate of another row.

    * ``"exact"``: byte-identical rows; the first of each group is kept.
    * ``"near"``: groups of rows joined by cosine similarity >= ``threshold`` among each row's ``k`` nearest
      neighbours (:func:`duplicate_groups`); the first of each group is kept.
    * ``"semdedup"``: :class:`SemDeDup` at ``eps`` (default ``1 - threshold``) or at ``remove_fraction``.

    Parameters
    ----------
    data : EmbeddingSet or array-like of shape (n, d)
    method : {"exact", "near", "semdedup"}, default="semdedup"
    threshold : float, default=0.98
        Cosine similarity of a near duplicate (``near``; under ``semdedup`` the default ``eps`` is
        ``1 - threshold``).
    k : int, default=10
        Neighbours searched per row (``near``).
    eps : float, optional
        SemDeDup's threshold in (0, 2).
    remove_fraction : float, optional
        SemDeDup only: remove exactly this fraction in [0, 1) instead of thresholding.
    keep : {"hard", "easy", "random"}, default="hard"
        SemDeDup's keep policy.
    n_clusters : int, optional
        SemDeDup's k-means clusters; by default one per 10,000 rows.
    random_state : int or None, default=0
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
    """
    check_choice(method, "method", DEDUP_METHODS)
    check_choice(keep, "keep", KEEP_POLICIES)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise ConfigurationError(f"threshold must be a cosine similarity in (0, 1], got {threshold!r}.")
    if method != "semdedup" and (eps is not None or remove_fraction is not None or n_clusters is not None):
        raise ConfigurationError(f"eps, remove_fraction and n_clusters are SemDeDup's; method={method!r} takes none.")
    emb = data if isinstance(data, EmbeddingSet) else EmbeddingSet(np.asarray(data))
    if method == "exact":
        found = exact_duplicates(emb.vectors)
        return _from_groups(method, {}, found.group, np.ones(len(emb)))
    if method == "near":
        graph = knn_graph(emb, check_int(k, "k"), metric="cosine", random_state=random_state, progress=progress)
        groups = duplicate_groups(graph, threshold)
        best = np.full(len(emb), -np.inf)
        np.maximum.at(best, groups.a, groups.similarity)
        np.maximum.at(best, groups.b, groups.similarity)
        return _from_groups(method, {"threshold": float(threshold), "k": int(k)}, groups.group, best)
    rows = prepare(emb.vectors, "cosine")
    clusters = max(1, -(-rows.n // _ROWS_PER_CLUSTER)) if n_clusters is None else check_int(n_clusters, "n_clusters")
    if remove_fraction is not None and eps is not None:
        raise ConfigurationError("give eps or remove_fraction, not both.")
    if remove_fraction is None:
        eps = check_eps(1.0 - float(threshold) if eps is None else eps)
    model = SemDeDup(clusters, keep=keep, random_state=random_state).fit(rows, progress=progress)
    kept = model.keep_mask(eps=eps) if remove_fraction is None else model.keep_mask(remove_fraction=remove_fraction)
    similarity = np.where(np.isfinite(model.max_similarity_), model.max_similarity_, np.nan).astype(np.float32)
    parameters = {"eps": eps, "remove_fraction": remove_fraction, "keep": keep, "n_clusters": clusters}
    if remove_fraction is not None:
        parameters["eps"] = model.eps_for_fraction(remove_fraction)
    curve = dict(zip(EPS_GRID, model.removal_curve(EPS_GRID).tolist(), strict=True))
    duplicate_of = np.where(kept, -1, model.duplicate_of_)
    return Deduplication("semdedup", parameters, kept, model.labels_, duplicate_of, similarity, curve)
