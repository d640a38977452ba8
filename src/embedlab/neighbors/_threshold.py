"""Exact neighbours above a cosine threshold: every pair of rows at similarity >= t is found, each row's best k
kept, with a Voronoi partition of the rows pruning the comparisons that cannot reach t."""

from __future__ import annotations

import math

import faiss
import numpy as np

from embedlab._checks import check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError
from embedlab.io.validation import prepare
from embedlab.neighbors.params import ExactParams
from embedlab.neighbors.result import KnnResult

__all__ = ["threshold_neighbors"]

#: Query-by-member similarities computed at once (float32 entries).
_BLOCK_VALUES = 2**23
#: Slack on the pruning bound (squared distances), far above their float32 error.
_SLACK = 1e-3
#: Rows per centroid the partition is trained on, and its Lloyd iterations: a rough partition prunes a little
#: less but never changes the result.
_POINTS_PER_CENTROID = 32
_ITERATIONS = 8


def _cells(n: int) -> int:
    """Cells of the partition: small cells prune best, but training and assigning cost n x cells x d; about
    2 sqrt(n), at least 64 rows a cell."""
    return max(1, min(2 * math.isqrt(n), n // 64))


def _probes(queries: np.ndarray, centroids: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each query's nearest cell, and every (query, cell) pair that the bound cannot rule out.

    A row within ``radius`` of query a that lies in cell j is nearer c_j than a's nearest centroid c_h, so the
    distance from a to that half-space, ``(||a - c_j||^2 - ||a - c_h||^2) / (2 ||c_j - c_h||)``, is at most
    ``radius``.
    """
    norms = np.einsum("ij,ij->i", centroids, centroids)
    between = np.sqrt(np.maximum(norms[:, None] + norms[None, :] - 2.0 * (centroids @ centroids.T), 0.0))
    home = np.empty(queries.shape[0], dtype=np.int64)
    pairs_q, pairs_c = [], []
    step = max(1, _BLOCK_VALUES // centroids.shape[0])
    for start in range(0, queries.shape[0], step):
        block = queries[start : start + step]
        sq = norms[None, :] - 2.0 * (block @ centroids.T) + np.einsum("ij,ij->i", block, block)[:, None]
        nearest = sq.argmin(axis=1)
        home[start : start + block.shape[0]] = nearest
        excess = sq - sq[np.arange(block.shape[0]), nearest][:, None]
        q, c = np.nonzero(excess <= 2.0 * radius * between[nearest] + _SLACK)
        pairs_q.append(q + start)
        pairs_c.append(c)
    return home, np.concatenate(pairs_q), np.concatenate(pairs_c)


def _hits(
    queries: np.ndarray, rows: np.ndarray, threshold: float, k: int, same: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, row, similarity) of each query's up to ``k`` most similar rows at >= ``threshold``; ``same``
    marks pairs of a row with itself (a self-join), which never count."""
    scores = queries @ rows.T
    if same is not None:
        scores[same] = -np.inf
    hit = scores >= threshold
    if hit.sum(axis=1).max(initial=0) > k:  # a clump of copies: keep each query's k best
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        keep = np.zeros_like(hit)
        np.put_along_axis(keep, top, True, axis=1)
        hit &= keep
    q, r = np.nonzero(hit)
    return q, r, scores[q, r]


def threshold_neighbors(
    X: object,
    threshold: float,
    k: int = 10,
    *,
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> KnnResult:
    """Each row's up to ``k`` most similar other rows among those at cosine similarity >= ``threshold``, exactly.

    The rows are partitioned into Voronoi cells (about 2 sqrt(n)) by spherical k-means (faiss, 8 iterations on
    a sample of 32 rows a cell). Two unit rows at cosine >= t are within Euclidean distance r = sqrt(2 (1 - t)).
    A row b of cell j is nearer c_j than c_h, the centroid nearest to a, so it lies in the half-space of points
    nearer c_j than c_h; b can be within r of a only if that half-space is, i.e. if
    ``||a - c_j||^2 - ||a - c_h||^2 <= 2 r ||c_j - c_h||``. Each row is compared with the rows of the cells that
    meet that bound only, so no pair at or above the threshold is missed, whatever the partition. Near
    duplicates (t near 1) are close, so a row meets a few cells and the cost falls far below the ``n^2 d`` of an
    exhaustive search; for a low threshold the bound admits every cell and the search becomes exhaustive.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Validated and normalised here.
    threshold : float
        Cosine similarity in (0, 1].
    k : int, default=10
        Neighbours kept per row: its most similar ones at or above the threshold (ties to the lower row).
    random_state : int or None, default=0
        Seeds the partition (which never changes the result, only the time).
    progress : ProgressReporter, optional

    Returns
    -------
    KnnResult
        Cosine distances and row positions, nearest first; ``-1`` and ``inf`` where a row has fewer than ``k``
        neighbours at the threshold. Exact (``recall`` 1.0).

    Raises
    ------
    ConfigurationError
        If ``threshold`` is outside (0, 1] or ``k`` is not a positive integer.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.999, 0.02], [0.0, 1.0], [0.02, 0.999], [1.0, 1.0]], dtype=np.float32)
    >>> threshold_neighbors(X, 0.99, k=2).indices.tolist()
    [[1, -1], [0, -1], [3, -1], [2, -1], [-1, -1]]
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise ConfigurationError(f"threshold must be a cosine similarity in (0, 1], got {threshold!r}.")
    k = check_int(k, "k")
    rows = prepare(X, "cosine").vectors
    n, d = rows.shape
    cells = _cells(n)
    if cells > 1:
        kmeans = faiss.Kmeans(
            d,
            cells,
            niter=_ITERATIONS,
            spherical=True,
            seed=0 if random_state is None else int(random_state),
            max_points_per_centroid=_POINTS_PER_CENTROID,
        )
        kmeans.train(rows)
        centroids = kmeans.centroids
    else:
        centroids = rows[:1].copy()
    radius = math.sqrt(2.0 * (1.0 - float(threshold)))
    home, probe_rows, probe_cells = _probes(rows, centroids, radius)
    members_order = np.argsort(home, kind="stable")
    member_bounds = np.searchsorted(home[members_order], np.arange(cells + 1))
    probe_order = np.lexsort((probe_rows, probe_cells))
    probe_bounds = np.searchsorted(probe_cells[probe_order], np.arange(cells + 1))
    found_q, found_r, found_s = [], [], []
    with progress.task(f"pairs at cosine >= {threshold:g} in {cells} cells", cells) as advance:
        for cell in range(cells):
            members = members_order[member_bounds[cell] : member_bounds[cell + 1]]
            asking = probe_rows[probe_order[probe_bounds[cell] : probe_bounds[cell + 1]]]
            step = max(1, _BLOCK_VALUES // max(members.size, 1))
            for start in range(0, asking.size if members.size else 0, step):
                block = asking[start : start + step]
                same = block[:, None] == members[None, :]
                q, r, s = _hits(rows[block], rows[members], float(threshold), k, same)
                found_q.append(block[q])
                found_r.append(members[r])
                found_s.append(s)
            advance(1)
    query = np.concatenate(found_q) if found_q else np.empty(0, np.int64)
    row = np.concatenate(found_r) if found_r else np.empty(0, np.int64)
    similarity = np.concatenate(found_s) if found_s else np.empty(0, np.float32)
    order = np.lexsort((row, -similarity, query))
    query, row, similarity = query[order], row[order], similarity[order]
    rank = np.arange(query.size) - np.searchsorted(query, query)
    kept = rank < k
    indices = np.full((n, k), -1, dtype=np.int64)
    distances = np.full((n, k), np.inf, dtype=np.float32)
    indices[query[kept], rank[kept]] = row[kept]
    distances[query[kept], rank[kept]] = np.maximum(1.0 - similarity[kept], 0.0)
    return KnnResult(distances, indices, "cosine", params=ExactParams(), recall=1.0)
