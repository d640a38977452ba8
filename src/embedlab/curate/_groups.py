"""Near-duplicate groups: the pairs of a cosine kNN graph at or above a threshold, joined into groups (union-find,
as connected components), with one representative each and the pairs as evidence."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from embedlab.exceptions import ConfigurationError
from embedlab.geometry import similar_pairs
from embedlab.neighbors import KnnResult

__all__ = ["DuplicateGroups", "duplicate_groups", "relative_threshold"]


@dataclass(frozen=True)
class DuplicateGroups:
    """Groups of near duplicates and the pairs that joined them.

    Attributes
    ----------
    threshold : float
        Cosine similarity at or above which two rows are duplicates.
    group : ndarray of shape (n,), int64
        Each row's group, numbered in the order of the groups' first rows; -1 for a row in no pair.
    representative : ndarray of shape (n_groups,), int64
        The row each group keeps: its first (lowest position), as :func:`~embedlab.geometry.exact_duplicates`
        keeps the first occurrence.
    a, b : ndarray of shape (m,), int64
        The pairs (``a < b``) at or above the threshold.
    similarity : ndarray of shape (m,), float64
        Their cosine similarity.
    """

    threshold: float
    group: np.ndarray = field(repr=False)
    representative: np.ndarray = field(repr=False)
    a: np.ndarray = field(repr=False)
    b: np.ndarray = field(repr=False)
    similarity: np.ndarray = field(repr=False)

    @property
    def n_groups(self) -> int:
        return int(self.representative.size)

    @property
    def keep_mask(self) -> np.ndarray:
        """True for the rows in no group and for each group's representative."""
        keep = self.group < 0
        keep[self.representative] = True
        return keep

    def sizes(self) -> np.ndarray:
        """Rows in each group."""
        return np.bincount(self.group[self.group >= 0], minlength=self.n_groups)


def relative_threshold(graph: KnnResult, factor: float = 0.13) -> float:
    """The cosine similarity of a near duplicate relative to how far apart the set's rows are: a pair is a near
    duplicate when its cosine distance is below ``factor`` times the median distance of the rows to their nearest
    neighbour (the rule of Cleanlab's near-duplicate check, whose default factor is 0.13).

    A fixed cosine threshold does not carry across models and modalities: 0.98 flags a handful of text pairs but
    tens of thousands of pixel-vector pairs. Exact copies (distance 0) are left out of the median.

    Parameters
    ----------
    graph : KnnResult
        Cosine kNN graph of the set against itself.
    factor : float, default=0.13
        In (0, 1].

    Returns
    -------
    float
        A cosine similarity in (0, 1].
    """
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0.0 < factor <= 1.0:
        raise ConfigurationError(f"the relative factor must be a number in (0, 1], got {factor!r}.")
    indices = np.asarray(graph.indices)
    distances = np.asarray(graph.distances, dtype=np.float64)
    rows = np.arange(indices.shape[0])[:, None]
    valid = (indices >= 0) & (indices != rows) & (distances > 0)
    nearest = np.where(valid, distances, np.inf).min(axis=1)
    nearest = nearest[np.isfinite(nearest)]
    if nearest.size == 0:
        return 1.0
    return float(min(1.0, max(1.0 - factor * float(np.median(nearest)), np.finfo(np.float32).eps)))


def duplicate_groups(graph: KnnResult, threshold: float = 0.98) -> DuplicateGroups:
    """Join the pairs of a cosine kNN graph at similarity >= ``threshold`` into groups of near duplicates.

    A group is a connected component of the pairs: rows ``a ~ b`` and ``b ~ c`` are one group even when ``a``
    and ``c`` are below the threshold (the transitive closure that union-find gives). Only pairs among each
    row's ``k`` nearest neighbours are seen, so ``k`` must be at least the largest group expected.

    Parameters
    ----------
    graph : KnnResult
        Cosine kNN graph of the set against itself (``knn_graph(emb, k, metric="cosine")``).
    threshold : float, default=0.98
        Cosine similarity in (0, 1].

    Returns
    -------
    DuplicateGroups

    Raises
    ------
    ConfigurationError
        If the graph is not cosine or ``threshold`` is outside (0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from embedlab.neighbors import knn
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [0.999, 0.02], [0.02, 0.999], [1.0, 1.0]], dtype=np.float32)
    >>> groups = duplicate_groups(knn(X, 2, metric="cosine"), 0.99)
    >>> groups.group.tolist(), groups.representative.tolist(), groups.keep_mask.tolist()
    ([0, 1, 0, 1, -1], [0, 1], [True, True, False, False, True])
    """
    if graph.metric != "cosine":
        raise ConfigurationError(
            f"duplicate_groups needs a cosine kNN graph, got metric={graph.metric!r}; build it with metric='cosine'."
        )
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise ConfigurationError(f"threshold must be a cosine similarity in (0, 1], got {threshold!r}.")
    n = len(graph)
    a, b, similarity = similar_pairs(graph, float(threshold))
    adjacency = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    _, component = connected_components(adjacency, directed=False)
    in_pair = np.zeros(n, dtype=bool)
    in_pair[a] = in_pair[b] = True
    # number the components that hold a pair by their first row
    first_rows = np.flatnonzero(in_pair)
    components, first = np.unique(component[first_rows], return_index=True)
    order = np.argsort(first_rows[first], kind="stable")
    renumber = np.full(component.max() + 1 if n else 0, -1, dtype=np.int64)
    renumber[components[order]] = np.arange(components.size)
    group = np.where(in_pair, renumber[component], -1).astype(np.int64)
    return DuplicateGroups(
        threshold=float(threshold),
        group=group,
        representative=first_rows[first][order].astype(np.int64),
        a=a,
        b=b,
        similarity=similarity,
    )
