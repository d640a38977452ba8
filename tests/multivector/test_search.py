"""The two-stage search and the planner on planted multi-vector data: candidates found, the heuristic's union,
and a planner whose recall equals an independent count."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.multivector import (
    MultiVectorSearcher,
    MultiVectorSet,
    MuveraEncoder,
    maxsim_scores,
    token_candidates,
)


def _planted(n_docs=120, n_queries=25, dim=32, seed=0):
    """Documents of 6-10 unit tokens; each query is 3 noisy tokens of one document (its relevant one)."""
    rng = np.random.default_rng(seed)

    def unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    docs = [unit(rng.normal(size=(int(rng.integers(6, 11)), dim))) for _ in range(n_docs)]
    owners = rng.choice(n_docs, n_queries, replace=False)
    queries = [
        unit(docs[o][rng.choice(len(docs[o]), 3, replace=False)] + 0.2 * rng.normal(size=(3, dim))) for o in owners
    ]
    return (
        MultiVectorSet.from_matrices(docs, ids=[f"d{i}" for i in range(n_docs)]),
        MultiVectorSet.from_matrices(queries),
        np.array([f"d{o}" for o in owners], dtype=object),
    )


def test_the_two_stage_search_finds_the_exact_top_with_enough_candidates():
    docs, queries, relevant = _planted()
    truth = np.argsort(-maxsim_scores(queries, docs), axis=1, kind="stable")[:, :5]
    found = MultiVectorSearcher(docs, MuveraEncoder(4, 16, 10), candidates=len(docs)).search(queries, 5)
    np.testing.assert_array_equal(found.indices, truth)
    few = MultiVectorSearcher(docs, MuveraEncoder(4, 16, 10), candidates=20).search(queries, 1)
    assert np.mean(few.ids[:, 0] == relevant) >= 0.9
    with pytest.raises(ConfigurationError, match="excludes no rows"):
        MultiVectorSearcher(docs, candidates=5).search(queries, 1, exclude=np.arange(25))


def test_token_candidates_are_the_union_of_the_nearest_tokens_documents():
    docs, queries, _ = _planted(40, 6)
    pool = token_candidates(docs, queries, 2)
    similarity = queries.vectors @ docs.vectors.T
    owner = docs.row_of_token
    for i in range(len(queries)):
        nearest = np.argsort(-similarity[queries.offsets[i] : queries.offsets[i + 1]], axis=1)[:, :2]
        assert pool[i][pool[i] >= 0].tolist() == sorted(set(owner[nearest.ravel()].tolist()))
