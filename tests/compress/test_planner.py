from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.compress import default_codecs, plan_compression


@pytest.fixture
def rows(rng):
    basis = np.linalg.qr(rng.normal(size=(32, 32)))[0]
    X = rng.normal(size=(3000, 32)) * np.r_[np.full(6, 3.0), np.full(26, 0.3)] @ basis.T
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_recall_matches_an_independent_brute_force_count(rows, rng):
    queries = rows[:100] + 0.1 * rng.normal(size=(100, 32)).astype(np.float32)
    corpus = rows[100:]
    plan = plan_compression(corpus, queries, k=10, codecs=["int4", "binary"], rescore_max=5, random_state=0)
    # the evaluation half of the queries, drawn as the planner draws it
    evaluate = queries[np.random.RandomState(0).permutation(100)[:50]]
    Qn = evaluate / np.linalg.norm(evaluate, axis=1, keepdims=True)
    truth = np.argsort(-(Qn @ corpus.T), axis=1)[:, :10]
    from embedlab.compress import Codec, CodecSearcher

    for point in plan.points:
        codec = Codec(point.codec.split("+rescore")[0], random_state=0).fit(corpus, queries=None)
        codes = codec.encode(corpus)
        if point.rescore is None:
            found = CodecSearcher(codec, codes).search(evaluate, 10).indices
        else:
            shortlist = CodecSearcher(codec, codes).search(evaluate, 10 * point.rescore).indices
            exact = np.take_along_axis(Qn @ corpus.T, shortlist, axis=1)
            found = np.take_along_axis(shortlist, np.argsort(-exact, axis=1)[:, :10], axis=1)
        count = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
        assert point.recall_at_k == pytest.approx(count, abs=1e-9), point.codec
    assert plan.n_queries == 50 and plan.n_rows == 2900


def test_frontier_and_recommendations(rows):
    plan = plan_compression(rows, k=5, n_queries=100, codecs=["float32", "int8", "int4", "binary"], rescore_max=10)
    assert plan.n_rows == 2800 and plan.n_queries == 100 and "held out" in plan.queries
    frontier = plan.frontier
    for point in frontier:
        same_regime = [o for o in plan.points if (o.rescore is None) == (point.rescore is None)]
        assert not any(
            o.bytes_per_vector <= point.bytes_per_vector and o.recall_at_k > point.recall_at_k for o in same_regime
        )
    codes_alone = [p for p in frontier if p.rescore is None]
    assert codes_alone == frontier[: len(codes_alone)] and len(codes_alone) >= 2  # binary and a wider codec
    assert [p.bytes_per_vector for p in codes_alone] == sorted(p.bytes_per_vector for p in codes_alone)
    assert {p.codec for p in plan.points} >= {"float32", "int8", "binary+rescore:2", "binary+rescore:10"}
    float32 = next(p for p in plan.points if p.codec == "float32")
    assert float32.recall_at_k == 1.0 and float32.bytes_per_vector == 128
    within = plan_compression(rows, k=5, n_queries=100, codecs=["int8", "int4", "binary"], budget_bytes=16)
    assert within.recommended.bytes_per_vector <= 16
    assert within.recommended.recall_at_k == max(p.recall_at_k for p in within.points if p.bytes_per_vector <= 16)
    target = plan_compression(rows, k=5, n_queries=100, codecs=["int8", "int4", "binary"], target_recall=0.9)
    assert target.recommended.recall_at_k >= 0.9
    assert target.recommended.bytes_per_vector == min(p.bytes_per_vector for p in target.points if p.recall_at_k >= 0.9)
    document = target.to_dict()
    assert set(document["frontier"][0]) == {"codec", "bytes_per_vector", "recall_at_k", "rescore", "on_frontier"}
    assert [t["query_ms"] for t in document["timings"]["points"]] == [p.query_ms for p in target.points]


def test_impossible_constraints_name_the_nearest_point(rows):
    with pytest.raises(ConfigurationError, match=r"No configuration reaches recall@k 1 within 4 bytes.*The nearest is"):
        plan_compression(rows, k=5, n_queries=50, codecs=["binary"], rescore_max=0, target_recall=1.0, budget_bytes=4)
    with pytest.raises(ConfigurationError, match="No configuration fits 2 bytes per vector. The smallest is binary"):
        plan_compression(rows, k=5, n_queries=50, codecs=["binary", "int8"], rescore_max=0, budget_bytes=2)


def test_bad_plan_inputs(rows):
    with pytest.raises(EmbeddingDataError, match="queries: the input is empty"):
        plan_compression(rows, np.empty((0, 32), dtype=np.float32))
    with pytest.raises(ConfigurationError, match="target_recall must be positive and at most 1"):
        plan_compression(rows, target_recall=1.5)
    with pytest.raises(ConfigurationError, match="list codecs without rescore"):
        plan_compression(rows, n_queries=20, codecs=["int8+rescore:2"])
    plan = plan_compression(rows, n_queries=20, codecs=["int8", "pq:5"], rescore_max=0)
    assert "pq:5" in plan.failures and "divide" in plan.failures["pq:5"]


def test_default_codecs_fit_the_dimension():
    specs = default_codecs(384)
    assert {"pq:48", "opq:96", "pqfs:96", "pca:192+int8", "rabitq:1"} <= set(specs)
    assert not any("leanvec-ood" in s for s in specs)
    assert "leanvec-ood:96+int8" in default_codecs(384, query_aware=True)
    odd = default_codecs(30)
    assert all(30 % int(s.split(":")[1]) == 0 for s in odd if s.startswith(("pq:", "opq:", "pqfs:")))
    assert "pqfs:15" in odd and not any(s.startswith("pq:") for s in odd)


def test_faiss_anchors_are_measured_on_the_same_queries_and_kept_off_the_frontier(rows):
    plan = plan_compression(
        rows, k=5, n_queries=100, codecs=["int8"], rescore_max=0, anchors=["Flat", "SQ8", "PQ4", "NoSuchIndex"]
    )
    anchors = {point.codec: point for point in plan.anchors}
    assert set(anchors) == {"faiss:Flat", "faiss:SQ8", "faiss:PQ4"}
    assert anchors["faiss:Flat"].recall_at_k == 1.0 and anchors["faiss:Flat"].bytes_per_vector == 4 * 32
    assert anchors["faiss:SQ8"].bytes_per_vector == 32 and anchors["faiss:SQ8"].recall_at_k > 0.9
    assert anchors["faiss:PQ4"].bytes_per_vector == 4 and anchors["faiss:PQ4"].recall_at_k < 0.9
    assert "faiss:NoSuchIndex" in plan.failures
    assert all(not point.codec.startswith("faiss:") for point in plan.frontier)
    assert [a["codec"] for a in plan.to_dict()["anchors"]] == ["faiss:Flat", "faiss:SQ8", "faiss:PQ4"]


def test_the_choice_never_depends_on_measured_time():
    from embedlab.compress import PlanPoint
    from embedlab.compress._planner import _mark_frontier, _recommend

    # equal bytes and recall: fewer candidates rescored wins, however slow it was timed
    slow = PlanPoint("int4+rescore:2", 16, 1.0, 2, query_ms=900.0, encode_s=1.0)
    fast = PlanPoint("int4+rescore:5", 16, 1.0, 5, query_ms=0.1, encode_s=1.0)
    points = _mark_frontier([fast, slow])
    assert [p.on_frontier for p in points] == [False, True]
    assert _recommend(points, None, 0.9).codec == "int4+rescore:2"
    assert _recommend(points, 32, None).codec == "int4+rescore:2"


def test_the_same_seed_gives_the_same_plan(rows):
    documents = [
        plan_compression(rows, k=5, n_queries=50, codecs=["pq:8", "int4"], target_recall=0.5, random_state=3).to_dict()
        for _ in range(2)
    ]
    assert documents[0].pop("timings") != documents[1].pop("timings")  # measured: it differs
    assert documents[0] == documents[1] and documents[0]["recommended"] is not None
