"""The two-stage search and the planner on planted multi-vector data: candidates found, the heuristic's union,
and a planner whose recall equals an independent count."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet
from embedlab.multivector import (
    MultiVectorSearcher,
    MultiVectorSet,
    MuveraEncoder,
    maxsim_scores,
    plan_multivector,
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


def test_the_planners_recall_equals_an_independent_count():
    docs, queries, relevant = _planted()
    means = EmbeddingSet(np.stack([docs[i].mean(0) for i in range(len(docs))]))
    query_means = EmbeddingSet(np.stack([queries[i].mean(0) for i in range(len(queries))]))
    plan = plan_multivector(
        docs,
        queries,
        k=5,
        target_recall=0.9,
        encodings=[(3, 8, 4), (4, 16, 10)],
        pool_factors=[1, 2],
        candidates=[5, 10, 40, 120],
        per_token=[1, 4],
        single_vectors=(means, query_means),
        relevant=relevant,
    )
    assert len(plan.points) == 2 * (2 * 4 + 2) + 4
    truth = np.argsort(-maxsim_scores(queries, docs), axis=1, kind="stable")[:, :5]
    point = next(
        p for p in plan.points if p.method == "muvera" and p.k_sim == 4 and p.pool_factor == 1 and p.candidates == 10
    )
    found = MultiVectorSearcher(docs, MuveraEncoder(4, 16, 10), candidates=10).search(queries, 5).indices
    independent = np.mean([len(set(found[i]) & set(truth[i])) / 5 for i in range(len(queries))])
    assert point.maxsim_recall == pytest.approx(independent)
    assert point.relevance_recall == pytest.approx(np.mean([relevant[i] in docs.ids[found[i]] for i in range(25)]))
    full = [p for p in plan.points if p.method == "muvera" and p.pool_factor == 1 and p.candidates == 120]
    assert all(p.maxsim_recall == 1.0 for p in full)  # every document reranked: exact
    assert plan.recommended is not None and plan.recommended.maxsim_recall >= 0.9
    assert plan.recommended.bytes_per_document == min(
        p.bytes_per_document for p in plan.points if p.maxsim_recall >= 0.9
    )
    assert plan.candidates_needed["muvera k_sim=4 d_proj=16 R=10 pool=1"] <= 120
    assert plan.exact_relevance_recall >= 0.9 and plan.to_dict()["recommended"]["method"] in (
        "muvera",
        "tokens",
        "single",
    )
    assert set(plan.frontier) <= set(plan.points)


def test_codecs_trade_bytes_for_candidates():
    docs, queries, _ = _planted()
    plan = plan_multivector(
        docs,
        queries,
        k=5,
        encodings=[(4, 16, 10)],
        pool_factors=[1],
        candidates=[20, 120],
        codecs=["float32", "int8"],
        per_token=None,
    )
    by_codec = {(p.codec, p.candidates): p for p in plan.points}
    assert by_codec[("int8", 20)].bytes_per_document < by_codec[("float32", 20)].bytes_per_document
    assert by_codec[("int8", 120)].maxsim_recall == 1.0
    assert "muvera k_sim=4 d_proj=16 R=10 codec=int8 pool=1" in plan.candidates_needed


def test_planner_refuses_bad_settings():
    docs, queries, _ = _planted(30, 4)
    with pytest.raises(ConfigurationError, match="below the 30"):
        plan_multivector(docs, queries, k=30)
    with pytest.raises(ConfigurationError, match="at least k"):
        plan_multivector(docs, queries, k=10, candidates=[5])
    with pytest.raises(ConfigurationError, match="exceeds"):
        plan_multivector(docs, queries, k=5, encodings=[(10, 64, 20)])
    with pytest.raises(ConfigurationError, match="one document id per query"):
        plan_multivector(docs, queries, k=5, relevant=["d0"])


def test_an_index_built_in_shards_equals_one_built_whole(tmp_path):
    import pyarrow.parquet as pq

    from embedlab.multivector import MultiVectorIndex, build_multivector_index

    docs, queries, _ = _planted(90, 8)
    pq.write_table(docs.to_table(), tmp_path / "docs.parquet", row_group_size=10)
    encoder = dict(k_sim=3, d_proj=8, repetitions=4, random_state=5)
    whole = build_multivector_index(
        tmp_path / "docs.parquet", tmp_path / "whole", encoder=MuveraEncoder(**encoder), shard_rows=1000, candidates=90
    )
    sharded = build_multivector_index(
        tmp_path / "docs.parquet",
        tmp_path / "sharded",
        encoder=MuveraEncoder(**encoder),
        shard_rows=25,
        batch_rows=7,
        candidates=90,
    )
    assert len(list((tmp_path / "sharded" / "encodings").iterdir())) == 5  # row groups of 10: parts of 20 (and 10)
    a, b = MultiVectorIndex.open(tmp_path / "whole"), MultiVectorIndex.open(tmp_path / "sharded")
    np.testing.assert_allclose(
        a.searcher.searcher.search(np.eye(256)[:2], 5).distances,
        b.searcher.searcher.search(np.eye(256)[:2], 5).distances,
        rtol=1e-6,
    )
    np.testing.assert_array_equal(a.search(queries, 4).indices, b.search(queries, 4).indices)
    assert b.manifest["n_documents"] == 90 and sharded["n_tokens"] == docs.n_tokens
    assert whole["encoding_dim"] == 4 * 8 * 8
    pq.write_table(pa_concat(docs), tmp_path / "twice.parquet", row_group_size=50)
    with pytest.raises(EmbeddingDataError, match="repeat an earlier row's id"):
        build_multivector_index(tmp_path / "twice.parquet", tmp_path / "twice", shard_rows=50)
    assert not (tmp_path / "twice").exists()


def pa_concat(docs):
    import pyarrow as pa

    return pa.concat_tables([docs.to_table(), docs.to_table()])
