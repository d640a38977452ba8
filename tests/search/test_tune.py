"""The tuner's grid: candidates by method and budget, memory estimates against faiss, effort capped."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab._progress import NULL_PROGRESS
from embedlab.io.validation import prepare
from embedlab.neighbors import ExactSearcher, HNSWParams, IVFParams, IVFPQParams, recall_at_k
from embedlab.search._tune import (
    Candidate,
    build,
    build_cost,
    candidates,
    confirm,
    estimated_bytes,
    measure,
    search_time_groups,
    sweep,
    variants,
)


def test_estimates_are_close_to_what_faiss_holds():
    rows = prepare(np.random.default_rng(0).normal(size=(4000, 32)), "l2")
    for params in (HNSWParams(M=16, storage="flat"), HNSWParams(M=16), IVFParams(storage="flat")):
        candidate = candidates("hnsw", 4000, 32, 12.0, memory_budget=None, codec=None)[0]
        built = build(type(candidate)(params), rows, random_state=np.random.default_rng(0), progress=NULL_PROGRESS)
        assert estimated_bytes(params, 4000, 32) == pytest.approx(built.memory_bytes, rel=0.3), params


def test_grid_order_budget_and_effort_cap():
    low = [c.params for c in candidates("hnsw", 10**5, 64, 12.0, memory_budget=None, codec=None, target=0.9)]
    high = [c.params for c in candidates("hnsw", 10**5, 64, 12.0, memory_budget=None, codec=None, target=0.99)]
    assert [(p.M, p.ef_construction) for p in low] == [(32, 200), (16, 200)]
    assert [(p.M, p.ef_construction) for p in high] == [(32, 200), (48, 200), (32, 400)]
    assert {p.storage for p in low + high} == {"flat"}  # the 8-bit codes are a variant of each graph
    flat_bytes = estimated_bytes(HNSWParams(M=32, ef_construction=200, storage="flat"), 10**5, 64)
    codes_only = candidates("hnsw", 10**5, 64, 12.0, memory_budget=flat_bytes - 1, codec=None, target=0.9)
    assert codes_only[0].params.storage == "sq8"
    small = candidates("auto", 10**5, 64, 12.0, memory_budget=10 * 10**6, codec=None)
    assert {c.params.method for c in small} <= {"ivf", "ivfpq"}
    with pytest.raises(ConfigurationError, match="fits a memory budget"):
        candidates("auto", 10**5, 64, 12.0, memory_budget=10, codec=None)
    rows = prepare(np.random.default_rng(0).normal(size=(1000, 8)), "l2")
    built = build(
        candidates("hnsw", 1000, 8, 5.0, memory_budget=None, codec=None)[0],
        rows,
        random_state=np.random.default_rng(0),
        progress=NULL_PROGRESS,
    )
    (efs,) = [[p.ef_search for p in group] for group in search_time_groups(built, 10)]
    assert efs[0] == 10 and max(efs) <= 250  # never beyond a quarter of an exact scan


def _build(params: HNSWParams, rows):
    return build(Candidate(params), rows, random_state=np.random.default_rng(0), progress=NULL_PROGRESS)


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, d))
    return (centers[rng.integers(20, size=n)] + 0.6 * rng.normal(size=(n, d))).astype(np.float32)


def test_the_codes_variant_searches_the_same_graph():
    rows = prepare(_clustered(3000, 24, 1), "l2")
    queries = prepare(_clustered(200, 24, 2), "l2")
    flat = _build(HNSWParams(M=16, ef_construction=100, storage="flat"), rows)
    same, codes = variants(flat, rows, random_state=np.random.default_rng(0))
    assert same is flat and codes.candidate.params.storage == "sq8"
    assert codes.build_s >= flat.build_s and codes.graph_s == flat.graph_s
    assert flat.memory_bytes - codes.memory_bytes == 3 * 24 * 3000  # one byte a dimension instead of four
    graph, copied = flat.searcher.index.hnsw, codes.searcher.index.hnsw
    assert graph.entry_point == copied.entry_point and graph.neighbors.size() == copied.neighbors.size()
    truth = ExactSearcher(rows, "l2").search(queries, 10)
    for variant in (flat, codes):
        found = variant.searcher.configure(
            HNSWParams(M=16, ef_construction=100, ef_search=64, storage=variant.candidate.params.storage)
        ).search(queries, 10)
        assert recall_at_k(found.distances, truth.distances) > 0.97
        np.testing.assert_allclose(found.distances, np.sort(found.distances, axis=1), rtol=1e-6)


def test_build_costs_scale_with_the_construction_beam_and_degree():
    reference = build_cost(Candidate(HNSWParams(M=16, ef_construction=100, storage="flat")))
    longer = build_cost(Candidate(HNSWParams(M=16, ef_construction=400, storage="flat")))
    assert longer == pytest.approx(4 * reference)
    denser = build_cost(Candidate(HNSWParams(M=32, ef_construction=100, storage="flat")))
    assert denser == pytest.approx(2**0.3 * reference)
    assert build_cost(Candidate(IVFParams())) == build_cost(Candidate(IVFPQParams(m=8))) == 1.0


def test_work_is_counted_from_the_distances_faiss_computed():
    rows = prepare(_clustered(3000, 24, 1), "l2")
    queries = prepare(_clustered(100, 24, 2), "l2")
    truth = ExactSearcher(rows, "l2").search(queries, 10)
    built = _build(HNSWParams(M=16, ef_construction=100, storage="flat"), rows)
    works = []
    for ef in (16, 64, 64):
        searcher = built.searcher.configure(HNSWParams(M=16, ef_construction=100, ef_search=ef, storage="flat"))
        works.append(measure(searcher, rows, queries, truth, 10, 0.9, runs=2).point.multiply_adds)
    assert works[0] < works[1] == works[2]  # a wider beam computes more distances; the count is reproducible
    assert 10 * 24 < works[0] < rows.n * 24  # at least the k found, far fewer than a scan
    ivf = _build(IVFParams(nlist=30, nprobe=3), rows)
    lists = ivf.searcher.index.invlists
    scanned = measure(ivf.searcher, rows, queries, truth, 10, 0.9).point.multiply_adds - 30 * 24
    assert 0 < scanned / 24 <= 3 * max(lists.list_size(i) for i in range(30))


def test_the_sweep_bisects_to_the_least_beam_that_meets_the_target():
    rows = prepare(_clustered(4000, 32, 3), "l2")
    queries = prepare(_clustered(300, 32, 4), "l2")
    built = _build(HNSWParams(M=8, ef_construction=40, storage="flat"), rows)
    truth = ExactSearcher(rows, "l2").search(queries, 10)
    target = 0.97
    measured = sweep(built, rows, queries, truth, 10, target)
    passing = [m for m in measured if m.point.meets_target]
    assert len(passing) == 1 and passing[-1] is measured[-1]
    chosen = passing[0].params.ef_search
    # every narrower beam falls short: the one just below was measured (bisected) and failed, or is k itself
    narrower = measure(
        built.searcher.configure(replace_ef(passing[0].params, chosen - 1)), rows, queries, truth, 10, target
    )
    assert chosen == 10 or not narrower.point.meets_target
    assert {m.params.ef_search for m in measured[:-1]} >= {chosen - 1} or chosen == 10


def test_confirming_steps_the_effort_up_until_the_validation_bound_meets_the_target():
    rows = prepare(_clustered(4000, 32, 3), "l2")
    queries = prepare(_clustered(300, 32, 5), "l2")
    built = _build(HNSWParams(M=8, ef_construction=40, storage="flat"), rows)
    truth = ExactSearcher(rows, "l2").search(queries, 10)
    target = 0.97
    least = replace_ef(built.searcher.params, 10)
    assert not measure(built.searcher.configure(least), rows, queries, truth, 10, target).point.meets_target
    confirmed = confirm(built, rows, queries, truth, 10, target, least)
    assert confirmed.point.meets_target and confirmed.params.ef_search > 10
    group = next(search_time_groups(built, 10))
    below = max(p.ef_search for p in group if p.ef_search < confirmed.params.ef_search)
    short = measure(built.searcher.configure(replace_ef(least, below)), rows, queries, truth, 10, target)
    assert below == 10 or not short.point.meets_target
    # a setting that already meets the target is kept as it is
    again = confirm(built, rows, queries, truth, 10, target, confirmed.params)
    assert again.params == confirmed.params
    assert confirm(built, rows, queries, truth, 10, None, least).params == least


def replace_ef(params: HNSWParams, ef: int) -> HNSWParams:
    return HNSWParams(M=params.M, ef_construction=params.ef_construction, ef_search=ef, storage=params.storage)
