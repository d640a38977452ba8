"""Exact Chamfer / MaxSim against a plain loop, in any blocking; top-k search and reranking agree with it."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.multivector import MultiVectorSet, maxsim_rerank, maxsim_scores, maxsim_search


def _set(n, dim=8, seed=0, most=7):
    rng = np.random.default_rng(seed)
    return MultiVectorSet.from_matrices([rng.normal(size=(int(rng.integers(1, most)), dim)) for _ in range(n)])


def _loop(queries, documents):
    return np.array(
        [
            [sum(max(float(q @ p) for p in documents[j]) for q in queries[i]) for j in range(len(documents))]
            for i in range(len(queries))
        ]
    )


@pytest.mark.parametrize("block_bytes", [64, 4096, 2**27])
def test_scores_equal_the_definition_in_any_blocking(block_bytes):
    queries, documents = _set(9, seed=1), _set(40, seed=2)
    np.testing.assert_allclose(
        maxsim_scores(queries, documents, block_bytes=block_bytes), _loop(queries, documents), rtol=1e-5, atol=1e-5
    )


def test_search_returns_the_top_k_and_rerank_agrees():
    queries, documents = _set(12, seed=3), _set(60, seed=4)
    truth = _loop(queries, documents)
    found = maxsim_search(queries, documents, 5, block_bytes=2048)
    expected = np.argsort(-truth, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(found.indices, expected)
    np.testing.assert_allclose(found.scores, np.take_along_axis(truth, expected, 1), rtol=1e-5, atol=1e-5)
    everything = np.tile(np.arange(60), (12, 1))
    reranked = maxsim_rerank(queries, documents, everything, 5)
    np.testing.assert_array_equal(reranked.indices, found.indices)
    few = np.full((12, 3), -1)
    few[:, 0], few[:, 1] = 7, 7  # a repeated candidate counts once
    partial = maxsim_rerank(queries, documents, few, 2)
    assert (partial.indices[:, 0] == 7).all() and (partial.indices[:, 1] == -1).all()
    assert np.isinf(partial.distances[:, 1]).all()
    assert partial.ids[0, 0] == documents.ids[7]


def test_bad_inputs():
    with pytest.raises(EmbeddingDataError, match="dimension"):
        maxsim_scores(_set(2, dim=4), _set(2, dim=5))
    with pytest.raises(ConfigurationError, match="shape"):
        maxsim_rerank(_set(2), _set(3), np.zeros((3, 2), int))
    with pytest.raises(ConfigurationError, match="below 3"):
        maxsim_rerank(_set(2), _set(3), np.full((2, 2), 3))
