"""Recall of approximate neighbours against exact ones, tolerant of ties in distance."""

from __future__ import annotations

import numpy as np

__all__ = ["recall_at_k", "recall_per_query"]


def recall_at_k(
    found_distances: np.ndarray, true_distances: np.ndarray, *, rtol: float = 1e-5, atol: float = 1e-6
) -> float:
    """Share of returned neighbours that are true k nearest neighbours, counting ties as correct.

    A returned neighbour counts as correct when its distance is no larger than the query's true k-th
    distance (within tolerance), so equidistant points (duplicates, ties) are never counted as errors. This
    is the criterion of ann-benchmarks (Aumüller et al. 2020, "ANN-Benchmarks: A benchmarking tool for
    approximate nearest neighbor algorithms").

    Parameters
    ----------
    found_distances : numpy.ndarray of shape (n, k)
        Exact distances to the neighbours the approximate search returned; ``inf`` marks missing ones.
    true_distances : numpy.ndarray of shape (n, k)
        Distances to the exact k nearest neighbours, ascending.
    rtol, atol : float
        Tolerance on the k-th distance.

    Returns
    -------
    float
        Mean over queries of the share of correct neighbours, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> recall_at_k(np.array([[0.1, 0.3]]), np.array([[0.1, 0.2]]))
    0.5
    """
    return float(recall_per_query(found_distances, true_distances, rtol=rtol, atol=atol).mean())


def recall_per_query(
    found_distances: np.ndarray, true_distances: np.ndarray, *, rtol: float = 1e-5, atol: float = 1e-6
) -> np.ndarray:
    """Each query's share of returned neighbours that are true k nearest neighbours (see :func:`recall_at_k`).

    Parameters
    ----------
    found_distances, true_distances : numpy.ndarray of shape (n, k)
        As in :func:`recall_at_k`.
    rtol, atol : float
        Tolerance on the k-th distance.

    Returns
    -------
    numpy.ndarray of shape (n,), float64
        One recall in [0, 1] per query; their mean is :func:`recall_at_k`.

    Examples
    --------
    >>> import numpy as np
    >>> recall_per_query(np.array([[0.1, 0.3], [0.1, 0.2]]), np.array([[0.1, 0.2], [0.1, 0.2]])).tolist()
    [0.5, 1.0]
    """
    found = np.asarray(found_distances, dtype=np.float64)
    truth = np.asarray(true_distances, dtype=np.float64)
    kth = truth[:, -1:]
    correct = found <= kth + atol + rtol * np.abs(kth)
    return correct.mean(axis=1)
