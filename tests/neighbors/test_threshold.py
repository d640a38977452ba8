"""threshold_neighbors against a brute-force pass: every pair at the threshold, each row's best k, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.neighbors import threshold_neighbors


def _brute_force(X: np.ndarray, threshold: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Xn @ Xn.T
    np.fill_diagonal(S, -np.inf)
    indices = np.full((len(X), k), -1)
    similarity = np.full((len(X), k), -np.inf)
    for i, row in enumerate(S):
        order = np.lexsort((np.arange(row.size), -row))[:k]
        order = order[row[order] >= threshold]
        indices[i, : order.size] = order
        similarity[i, : order.size] = row[order]
    return indices, similarity


@pytest.fixture
def planted(rng):
    """3,000 rows in 30 clusters, with 300 near copies (cosine about 0.99-0.9999) of the first rows."""
    centers = 2.5 * rng.normal(size=(30, 16))
    X = centers[rng.integers(0, 30, 2700)] + rng.normal(size=(2700, 16))
    noise = rng.uniform(0.005, 0.1, size=(300, 1))
    X = np.r_[X, X[:300] + noise * rng.normal(size=(300, 16))]
    return X.astype(np.float32)


@pytest.mark.parametrize(("threshold", "k"), [(0.999, 5), (0.99, 10), (0.95, 10), (0.5, 3)])
def test_every_pair_at_the_threshold_is_found(planted, threshold, k):
    found = threshold_neighbors(planted, threshold, k, random_state=3)
    indices, similarity = _brute_force(planted.astype(np.float64), threshold, k)
    expected_count = (indices >= 0).sum(axis=1)
    np.testing.assert_array_equal((found.indices >= 0).sum(axis=1), expected_count)
    hit = found.indices >= 0
    np.testing.assert_allclose(found.scores[hit], similarity[hit], atol=1e-5)
    # the same neighbours, up to float32 ties at the k-th place
    agree = (found.indices == indices) | ~hit
    assert agree.mean() > 0.999
    assert found.recall == 1.0 and found.method == "exact"


def test_the_partition_changes_the_time_not_the_result(planted):
    a = threshold_neighbors(planted, 0.98, 4, random_state=0)
    b = threshold_neighbors(planted, 0.98, 4, random_state=9)
    np.testing.assert_array_equal(a.indices, b.indices)


def test_a_clump_of_copies_keeps_each_rows_k_best(rng):
    X = np.r_[np.tile(rng.normal(size=(1, 8)), (50, 1)), rng.normal(size=(200, 8))].astype(np.float32)
    found = threshold_neighbors(X, 0.999, 3)
    assert (found.indices[:50] >= 0).all() and (found.indices[:50] < 50).all()
    assert all(i not in row for i, row in enumerate(found.indices[:50].tolist()))  # never itself
    assert (found.indices[50:] == -1).all()


def test_tiny_sets_and_bad_thresholds():
    X = np.array([[1.0, 0.0], [1.0, 0.001], [0.0, 1.0]], dtype=np.float32)
    assert threshold_neighbors(X, 0.99, 2).indices.tolist() == [[1, -1], [0, -1], [-1, -1]]
    with pytest.raises(ConfigurationError, match=r"threshold must be a cosine similarity in \(0, 1\]"):
        threshold_neighbors(X, 1.5)
