"""Hubness: how unevenly points occur in each other's k-nearest-neighbour lists.

In high dimension a few points (hubs) appear in very many kNN lists while many (anti-hubs) appear in none;
the distribution of the k-occurrence N_k(x) becomes right-skewed. Hubs distort kNN classification, retrieval
and clustering, so the skewness of N_k is a standard diagnostic of an embedding space.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from embedlab._checks import check_int
from embedlab._json import plain
from embedlab.exceptions import ConfigurationError

__all__ = ["HubnessReport", "hubness", "k_occurrence"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubnessReport:
    """Hubness statistics of a kNN graph.

    Attributes
    ----------
    k : int
        Neighbours per point in the graph (columns of ``indices``).
    n_points : int
        Points that can occur in the lists (length of ``k_occurrence``).
    skewness : float
        Third standardised moment of N_k (biased estimator, as ``scipy.stats.skew(bias=True)``); 0 when every
        point has the same k-occurrence. About 0 for low-dimensional data; above 1 signals strong hubness.
    robin_hood : float
        Robin Hood index of N_k in [0, 1): the share of all k-occurrences that would have to move from
        above-average points to below-average points to make N_k uniform.
    hub_occurrence : float
        Share of all k-occurrences held by hubs (points with N_k > 2k).
    hubs : int
        Number of hubs (N_k > 2k).
    antihubs : int
        Number of points in no kNN list (N_k = 0).
    top_hubs : tuple of dict
        The most frequent neighbours, ``{"id": ..., "k_occurrence": ...}``, by decreasing N_k, ties by position.
    k_occurrence : numpy.ndarray of shape (n_points,), int64
        N_k of every point (not in :meth:`to_dict`).
    """

    k: int
    n_points: int
    skewness: float
    robin_hood: float
    hub_occurrence: float
    hubs: int
    antihubs: int
    top_hubs: tuple[dict, ...]
    k_occurrence: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (without the per-point ``k_occurrence``)."""
        return {
            "k": self.k,
            "n_points": self.n_points,
            "skewness": self.skewness,
            "robin_hood": self.robin_hood,
            "hub_occurrence": self.hub_occurrence,
            "hubs": self.hubs,
            "antihubs": self.antihubs,
            "top_hubs": [dict(entry) for entry in self.top_hubs],
        }


def k_occurrence(indices: np.ndarray, n_points: int | None = None) -> np.ndarray:
    """N_k(x): in how many kNN lists each point appears.

    Parameters
    ----------
    indices : numpy.ndarray of shape (n, k), int
        Neighbour positions (the ``KnnResult`` convention, self excluded); -1 marks a missing neighbour and is
        ignored.
    n_points : int, optional
        Number of points that can be neighbours (default: ``n``, the set searched against itself).

    Returns
    -------
    numpy.ndarray of shape (n_points,), int64

    Raises
    ------
    ConfigurationError
        If ``indices`` is not a 2-D integer array or holds a position outside ``[-1, n_points)``.

    Examples
    --------
    >>> import numpy as np
    >>> k_occurrence(np.array([[1, 2], [0, 2], [0, -1]])).tolist()
    [2, 1, 2]
    """
    idx = np.asarray(indices)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ConfigurationError(f"indices must be a 2-D integer array (n, k), got {idx.dtype} of shape {idx.shape}.")
    n = idx.shape[0] if n_points is None else int(n_points)
    found = idx[idx >= 0]
    if idx.size and idx.min() < -1:
        raise ConfigurationError(f"indices must be positions >= 0 or -1 (missing), found {int(idx.min())}.")
    if found.size and found.max() >= n:
        raise ConfigurationError(
            f"indices hold position {int(found.max())} but only {n} points exist; pass n_points (the size of the "
            "searched set)."
        )
    return np.bincount(found.astype(np.int64, copy=False), minlength=n).astype(np.int64, copy=False)


def _skewness(counts: np.ndarray) -> float:
    """Biased sample skewness; 0 for a constant sample (scipy would return NaN)."""
    if counts.size < 2 or np.all(counts == counts[0]):
        return 0.0
    centred = counts.astype(np.float64) - counts.mean()
    return float((centred**3).mean() / (centred**2).mean() ** 1.5)


def hubness(
    indices: np.ndarray,
    *,
    ids: np.ndarray | None = None,
    n_points: int | None = None,
    top: int = 10,
) -> HubnessReport:
    """Hubness of a kNN graph: skewness and Robin Hood index of the k-occurrence, hubs and anti-hubs.

    Parameters
    ----------
    indices : numpy.ndarray of shape (n, k), int
        A kNN graph in the ``KnnResult`` convention (``knn_graph(...).indices``): each row's neighbours, self
        excluded, -1 for a missing neighbour (ignored). Assumed to come from the engine (already validated).
    ids : numpy.ndarray of shape (n_points,), optional
        Ids of the points, used in ``top_hubs``; positions when omitted.
    n_points : int, optional
        Number of points that can be neighbours; default ``len(ids)`` if given, else ``n``.
    top : int, default=10
        How many of the largest hubs to list.

    Returns
    -------
    HubnessReport

    Raises
    ------
    ConfigurationError
        If ``top`` is negative, ``ids`` and ``n_points`` disagree, or ``indices`` holds an out-of-range position.

    Notes
    -----
    With ``S = sum_x N_k(x)`` (``n k`` for a complete graph), the Robin Hood index is
    ``sum_x |N_k(x) - mean(N_k)| / (2 S)`` and the hub occurrence is ``sum_{x: N_k(x) > 2k} N_k(x) / S``.

    References
    ----------
    Radovanović, Nanopoulos and Ivanović (2010), "Hubs in space: popular nearest neighbors in high-dimensional
    data", Journal of Machine Learning Research 11, 2487-2531 (skewness of N_k).
    Feldbauer, Leodolter, Plant and Flexer (2018), "Fast approximate hubness reduction for large
    high-dimensional data", IEEE International Conference on Big Knowledge (ICBK) (Robin Hood index).
    Flexer and Schnitzer (2015), "Choosing lp norms in high-dimensional spaces based on hub analysis",
    Neurocomputing 169, 281-287 (hub occurrence).

    Examples
    --------
    >>> import numpy as np
    >>> graph = np.array([[1], [0], [0], [0]])  # point 0 is everyone's nearest neighbour
    >>> report = hubness(graph, top=1)
    >>> report.k_occurrence.tolist(), report.antihubs, report.top_hubs
    ([3, 1, 0, 0], 2, ({'id': 0, 'k_occurrence': 3},))
    """
    top = check_int(top, "top", 0)
    if ids is not None:
        ids = np.asarray(ids)
        if n_points is not None and int(n_points) != ids.shape[0]:
            raise ConfigurationError(f"n_points={n_points} but {ids.shape[0]} ids were given.")
        n_points = ids.shape[0]
    counts = k_occurrence(indices, n_points)
    k = int(np.asarray(indices).shape[1])
    total = int(counts.sum())
    is_hub = counts > 2 * k
    if total:
        robin_hood = float(np.abs(counts - counts.mean()).sum() / (2.0 * total))
        hub_occurrence = float(counts[is_hub].sum() / total)
    else:
        robin_hood = hub_occurrence = 0.0
    order = np.argsort(-counts, kind="stable")[:top]
    top_hubs = tuple(
        {"id": plain(ids[i]) if ids is not None else int(i), "k_occurrence": int(counts[i])} for i in order
    )
    report = HubnessReport(
        k=k,
        n_points=int(counts.size),
        skewness=_skewness(counts),
        robin_hood=robin_hood,
        hub_occurrence=hub_occurrence,
        hubs=int(is_hub.sum()),
        antihubs=int((counts == 0).sum()),
        top_hubs=top_hubs,
        k_occurrence=counts,
    )
    logger.debug("hubness at k=%d: skewness %.3f, Robin Hood %.3f", k, report.skewness, report.robin_hood)
    return report
