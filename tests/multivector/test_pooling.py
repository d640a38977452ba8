"""Token pooling: factor 1 is no pooling, planted pairs of tokens are found and merged, protected tokens stay."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.multivector import MultiVectorSet, maxsim_scores, pool_tokens


def _paired(n=20, dim=24, seed=0):
    """Rows whose tokens come in near-identical pairs: pooling by 2 should merge each pair."""
    rng = np.random.default_rng(seed)
    rows, centres = [], []
    for _ in range(n):
        c = rng.normal(size=(int(rng.integers(1, 6)), dim))
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        pairs = np.repeat(c, 2, axis=0) + 1e-3 * rng.normal(size=(2 * len(c), dim))
        rows.append(rng.permutation(pairs))
        centres.append(c)
    return MultiVectorSet.from_matrices(rows, ids=[f"r{i}" for i in range(n)]), centres


def test_factor_one_is_no_pooling():
    rows, _ = _paired()
    assert pool_tokens(rows, 1) is rows


@pytest.mark.parametrize("method", ["hierarchical", "kmeans"])
def test_planted_pairs_are_merged(method):
    rows, centres = _paired()
    pooled = pool_tokens(rows, 2, method=method, random_state=3)
    assert pooled.lengths.tolist() == [len(c) for c in centres]
    assert pooled.ids.tolist() == rows.ids.tolist()
    for i, c in enumerate(centres):
        similarity = pooled[i] @ c.T
        assert np.allclose(np.sort(similarity.max(axis=0)), 1.0, atol=1e-4)  # every pair found
    np.testing.assert_allclose(np.linalg.norm(pooled.vectors, axis=1), 1.0, rtol=1e-5)
    queries, _ = _paired(5, seed=9)
    np.testing.assert_allclose(maxsim_scores(queries, pooled), maxsim_scores(queries, rows), atol=1e-2)


def test_counts_protected_tokens_and_bad_input():
    rng = np.random.default_rng(1)
    rows = MultiVectorSet.from_matrices([rng.normal(size=(t, 8)) for t in (1, 2, 7, 12)])
    pooled = pool_tokens(rows, 3, protected=1)
    assert pooled.lengths.tolist() == [1, 2, 1 + 2, 1 + 3]
    for i in range(4):
        np.testing.assert_array_equal(pooled[i][0], rows[i][0])
    with pytest.raises(ConfigurationError):
        pool_tokens(rows, 0)
    with pytest.raises(ConfigurationError, match="method"):
        pool_tokens(rows, 2, method="mean")
