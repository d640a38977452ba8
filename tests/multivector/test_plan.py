"""plan_multivector on planted multi-vector data: its recall equals an independent count, codecs trade bytes for
candidates, bad settings are refused."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingSet
from embedlab.multivector import MultiVectorSearcher, MuveraEncoder, maxsim_scores, plan_multivector
from tests.multivector.test_search import _planted


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
    # the work is counted: encodings scanned, then query tokens x document tokens x dimension per candidate
    per_document = docs.n_tokens / len(docs) * queries.n_tokens / len(queries) * docs.dim
    assert point.multiply_adds == pytest.approx(len(docs) * point.dim + 10 * per_document)
    single = next(p for p in plan.points if p.method == "single" and p.candidates == 40)
    assert single.multiply_adds == pytest.approx(len(docs) * means.dim + 40 * per_document)
    document = plan.to_dict()
    assert "query_ms" not in document["points"][0] and "exact_query_ms" not in document
    assert [t["query_ms"] for t in document["timings"]["points"]] == [p.query_ms for p in plan.points]


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
