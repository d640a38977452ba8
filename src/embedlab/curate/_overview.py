"""``curation_overview``: what curating a set would do, at a glance: SemDeDup's removal curve over eps, the
largest groups of near duplicates, and what a balanced sample would keep of each cluster."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from embedlab._checks import check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.curate._dedup import _ROWS_PER_CLUSTER
from embedlab.curate._groups import duplicate_groups
from embedlab.curate._sample import balanced_caps
from embedlab.curate._semdedup import SemDeDup
from embedlab.io import EmbeddingSet
from embedlab.neighbors import knn_graph

__all__ = ["CURVE_EPS", "CurationOverview", "curation_overview"]

#: The thresholds of the overview's removal curve (log-spaced).
CURVE_EPS: tuple[float, ...] = tuple(float(e) for e in np.geomspace(1e-4, 0.5, 25))
#: Duplicate groups the overview lists, and members shown per group.
_GROUPS_SHOWN = 8
_MEMBERS_SHOWN = 6


@dataclass(frozen=True)
class CurationOverview:
    """What :func:`curation_overview` found.

    Attributes
    ----------
    semdedup_clusters : int
    eps : ndarray of float
    removed_fraction : ndarray of float
        The fraction of rows SemDeDup removes at each ``eps``.
    threshold : float
        Cosine similarity of the near-duplicate groups.
    n_groups, n_grouped : int
        Groups of near duplicates, and the rows in them.
    groups : list of dict
        The largest groups: ``size``, ``ids`` (the first members, representative first) and ``min_similarity``
        (the weakest pair that joins the group).
    target : int
        The balanced sample's size.
    cluster_rows, balanced_keep : ndarray of int
        Rows of each cluster, and how many of them a balanced sample of ``target`` keeps.
    """

    semdedup_clusters: int
    eps: np.ndarray = field(repr=False)
    removed_fraction: np.ndarray = field(repr=False)
    threshold: float
    n_groups: int
    n_grouped: int
    groups: list[dict] = field(repr=False)
    target: int
    cluster_rows: np.ndarray = field(repr=False)
    balanced_keep: np.ndarray = field(repr=False)

    @property
    def ids(self) -> list:
        """The ids the groups name (for their texts)."""
        return [identifier for group in self.groups for identifier in group["ids"]]

    def to_dict(self) -> dict:
        n = int(self.cluster_rows.sum())
        return {
            "semdedup": {
                "n_clusters": self.semdedup_clusters,
                "eps": self.eps.tolist(),
                "removed_fraction": self.removed_fraction.tolist(),
            },
            "near_duplicates": {
                "threshold": self.threshold,
                "n_groups": self.n_groups,
                "n_grouped": self.n_grouped,
                "largest": self.groups,
            },
            "balanced": {
                "target": self.target,
                "clusters": [
                    {
                        "cluster": c,
                        "rows": int(self.cluster_rows[c]),
                        "balanced": int(self.balanced_keep[c]),
                        "uniform": float(self.cluster_rows[c] * self.target / n),
                    }
                    for c in np.argsort(-self.cluster_rows, kind="stable").tolist()
                ],
            },
        }


def curation_overview(
    emb: EmbeddingSet,
    cluster_labels: np.ndarray,
    *,
    threshold: float = 0.98,
    k: int = 10,
    target: int | None = None,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> CurationOverview:
    """SemDeDup's removal curve (one cluster per 10,000 rows, one pass for every eps of :data:`CURVE_EPS`), the
    largest groups of near duplicates at cosine >= ``threshold`` on the ``k``-NN graph (cached on ``emb``), and
    the rows of each of the given clusters that a balanced sample of ``target`` rows (default a tenth of the set,
    at least one per cluster) keeps, by :func:`balanced_caps`.

    Parameters
    ----------
    emb : EmbeddingSet
    cluster_labels : ndarray of shape (n,), int
        A clustering of the rows (the report's), labels 0 to k - 1.
    threshold : float, default=0.98
    k : int, default=10
    target : int, optional
    random_state : int or None, default=0
    progress : ProgressReporter, optional

    Returns
    -------
    CurationOverview
    """
    n = len(emb)
    model = SemDeDup(max(1, -(-n // _ROWS_PER_CLUSTER)), random_state=random_state).fit(emb.vectors, progress=progress)
    eps = np.asarray(CURVE_EPS)
    graph = knn_graph(emb, min(check_int(k, "k"), n - 1), metric="cosine", random_state=random_state, progress=progress)
    found = duplicate_groups(graph, threshold)
    sizes = found.sizes()
    weakest = np.full(sizes.size, np.inf)
    np.minimum.at(weakest, found.group[found.a], found.similarity)
    groups = []
    for g in np.argsort(-sizes, kind="stable")[:_GROUPS_SHOWN].tolist():
        members = np.flatnonzero(found.group == g)[:_MEMBERS_SHOWN]
        groups.append({"size": int(sizes[g]), "ids": emb.ids[members].tolist(), "min_similarity": float(weakest[g])})
    counts = np.bincount(np.asarray(cluster_labels, dtype=np.int64))
    size = max(counts.size, n // 10) if target is None else check_int(target, "target", maximum=n)
    return CurationOverview(
        semdedup_clusters=int(model.cluster_centers_.shape[0]),
        eps=eps,
        removed_fraction=model.removal_curve(eps),
        threshold=float(threshold),
        n_groups=int(sizes.size),
        n_grouped=int(sizes.sum()),
        groups=groups,
        target=int(size),
        cluster_rows=counts,
        balanced_keep=balanced_caps(counts, min(size, n), random_state),
    )
