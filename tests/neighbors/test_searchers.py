"""Every Searcher against brute force: the one search convention, exclusions, re-ranking and block merging."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.compress import Codec, CodecSearcher, CompressedCollection
from embedlab.io.validation import prepare
from embedlab.neighbors import (
    ExactSearcher,
    FaissSearcher,
    HNSWParams,
    IVFParams,
    IVFPQParams,
    Searcher,
    merge_top_k,
    refine_l2,
    rerank,
)


@pytest.fixture
def clustered(rng):
    centres = rng.normal(size=(25, 24)) * 3
    X = (centres[rng.integers(0, 25, 4000)] + rng.normal(size=(4000, 24))).astype(np.float32)
    Q = (centres[rng.integers(0, 25, 60)] + rng.normal(size=(60, 24))).astype(np.float32)
    return X, Q


def _brute(X, Q, metric):
    """Exact distances in float64, the KnnResult convention."""
    X64, Q64 = X.astype(np.float64), Q.astype(np.float64)
    if metric == "l2":
        return np.linalg.norm(Q64[:, None, :] - X64[None, :, :], axis=2)
    if metric == "cosine":
        X64 = X64 / np.linalg.norm(X64, axis=1, keepdims=True)
        Q64 = Q64 / np.linalg.norm(Q64, axis=1, keepdims=True)
        return 1.0 - Q64 @ X64.T
    return -(Q64 @ X64.T)


def _recall(result, truth, k):
    kth = np.sort(truth, axis=1)[:, k - 1 : k]
    found = np.take_along_axis(truth, np.maximum(result.indices, 0), axis=1)
    return float(((found <= kth + 1e-5) & (result.indices >= 0)).mean())


def _searchers(X, metric):
    yield "exact", ExactSearcher(X, metric), 1.0
    flat = FaissSearcher.build(X, HNSWParams(storage="flat", ef_search=128), metric)
    yield "hnsw-flat", flat, 0.98
    yield "hnsw-sq8", FaissSearcher.build(X, HNSWParams(ef_search=128), metric), 0.98
    yield "hnsw-flat-graph-sq8", flat.recoded("sq8"), 0.98
    yield "ivf", FaissSearcher.build(X, IVFParams(nlist=32, nprobe=32), metric), 0.99
    yield "ivfpq", FaissSearcher.build(X, IVFPQParams(nlist=32, nprobe=32, m=12, rerank_factor=20), metric), 0.97
    if metric != "l2":
        rows = prepare(X, metric)
        codec = Codec("int8", metric=metric).fit(rows)
        yield "codec", CodecSearcher(codec, codec.encode(rows), vectors=rows.vectors, rescore=5), 0.99
        yield "collection", CompressedCollection.build(X, "int8+rescore:5", metric=metric), 0.99


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_every_searcher_against_brute_force(clustered, metric):
    X, Q = clustered
    truth = _brute(X, Q, metric)
    k = 10
    for name, searcher, least in _searchers(X, metric):
        assert isinstance(searcher, Searcher), name
        assert len(searcher) == 4000 and searcher.dim == 24 and searcher.metric == metric
        result = searcher.search(Q, k)
        assert result.indices.shape == (60, k) and result.indices.dtype == np.int64, name
        assert result.distances.dtype == np.float32 and (np.diff(result.distances, axis=1) >= 0).all(), name
        assert _recall(result, truth, k) >= least, (name, _recall(result, truth, k))
        # distances are exact (re-ranked) for every searcher here: they equal brute force at the found rows
        np.testing.assert_allclose(
            result.distances, np.take_along_axis(truth, result.indices, axis=1), atol=2e-4, err_msg=name
        )
        assert result.exact_distances


def test_exact_searcher_is_exact_to_the_row(clustered):
    X, Q = clustered
    truth = _brute(X, Q, "l2")
    result = ExactSearcher(X, "l2").search(Q, 7)
    np.testing.assert_array_equal(result.indices, np.argsort(truth, axis=1, kind="stable")[:, :7])
    assert result.recall == 1.0 and result.method == "exact"


@pytest.mark.parametrize("kind", ["exact", "hnsw", "codec"])
def test_exclusions_are_never_returned(clustered, kind):
    X, _ = clustered
    queries = np.arange(0, 4000, 97)
    if kind == "exact":
        searcher = ExactSearcher(X, "cosine")
    elif kind == "hnsw":
        searcher = FaissSearcher.build(X, HNSWParams(ef_search=200), "cosine")
    else:
        searcher = CompressedCollection.build(X, "float32+rescore:2")
    own = searcher.search(X[queries], 5, exclude=queries)
    assert not (own.indices == queries[:, None]).any()
    two = np.stack([queries, (queries + 1) % 4000], axis=1)
    both = searcher.search(X[queries], 5, exclude=two)
    for row, pair in zip(both.indices, two, strict=True):
        assert not np.isin(row, pair).any()
    if kind == "exact":  # exclusion removes exactly the excluded rows; the others keep their ranks
        plain = searcher.search(X[queries], 8)
        for row, pair, wanted in zip(plain.indices, two, both.indices, strict=True):
            assert list(wanted) == [i for i in row if i not in pair][:5]


def test_exclusion_checks(clustered):
    X, Q = clustered
    searcher = ExactSearcher(X[:10], "l2")
    with pytest.raises(ConfigurationError, match="one row .* per query"):
        searcher.search(Q[:3], 2, exclude=np.arange(4))
    with pytest.raises(ConfigurationError, match="outside the 10 searched rows"):
        searcher.search(Q[:3], 2, exclude=np.array([0, 1, 10]))
    with pytest.raises(ConfigurationError, match="k=10 but only 9 neighbour"):
        searcher.search(Q[:3], 10, exclude=np.zeros(3, dtype=np.int64))
    with pytest.raises(ConfigurationError, match="k must be an integer between 1 and 8"):
        searcher.search(Q[:3], 9, exclude=np.zeros((3, 2), dtype=np.int64))
    assert searcher.search(Q[:3], 2, exclude=np.full(3, -1)).k == 2


def test_queries_are_checked_against_the_searcher(clustered):
    X, Q = clustered
    searcher = FaissSearcher.build(X, HNSWParams(), "cosine")
    with pytest.raises(EmbeddingDataError, match="queries has 5 features, but it is expecting 24 features"):
        searcher.search(Q[:, :5], 3)
    with pytest.raises(EmbeddingDataError, match="all-zero"):
        searcher.search(np.zeros((2, 24)), 3)
    with pytest.raises(ConfigurationError, match="k=4001 but only 4000"):
        searcher.search(Q, 4001)


def test_configure_changes_search_time_parameters_only(clustered):
    X, Q = clustered
    searcher = FaissSearcher.build(X, HNSWParams(M=8, storage="flat"), "l2")
    low = searcher.configure(HNSWParams(M=8, storage="flat", ef_search=10)).search(Q, 10)
    high = searcher.configure(HNSWParams(M=8, storage="flat", ef_search=400)).search(Q, 10)
    truth = _brute(X, Q, "l2")
    assert low.params.ef_search == 10 and high.params.ef_search == 400
    assert _recall(high, truth, 10) >= _recall(low, truth, 10)
    with pytest.raises(ConfigurationError, match="only search-time parameters can change"):
        searcher.configure(HNSWParams(M=16, storage="flat"))
    ivf = FaissSearcher.build(X, IVFParams(nlist=40), "cosine")
    assert ivf.configure(IVFParams(nlist=40, nprobe=40)).search(Q, 5).params.nprobe == 40


def test_recoding_keeps_the_graph_and_changes_the_storage(clustered):
    X, Q = clustered
    flat = FaissSearcher.build(X, HNSWParams(M=12, ef_construction=60, storage="flat", ef_search=64), "l2")
    codes = flat.recoded("sq8")
    back = codes.recoded("flat")
    assert codes.params == HNSWParams(M=12, ef_construction=60, storage="sq8", ef_search=64)
    assert codes.index_bytes == flat.index_bytes - 3 * X.size  # one byte a coordinate instead of four
    for searcher in (codes, back):
        assert searcher.index.hnsw.entry_point == flat.index.hnsw.entry_point
    np.testing.assert_array_equal(back.search(Q, 10).indices, flat.search(Q, 10).indices)
    with pytest.raises(ConfigurationError, match="storage"):
        flat.recoded("pq")
    with pytest.raises(ConfigurationError, match="only an HNSW index"):
        FaissSearcher.build(X, IVFParams(nlist=16), "l2").recoded("sq8")


def test_rerank_reads_candidates_and_sorts_them(rng):
    X = rng.normal(size=(300, 16)).astype(np.float32)
    Q = rng.normal(size=(4, 16)).astype(np.float32)
    candidates = np.stack([rng.permutation(300)[:20] for _ in range(4)])
    candidates[:, -3:] = -1
    for metric in ("l2", "ip", "cosine"):
        rows, queries = prepare(X, metric).vectors, prepare(Q, metric).vectors
        distances, indices = rerank(rows, queries, candidates, metric, 17)
        truth = np.take_along_axis(_brute(X, Q, metric), candidates[:, :17], axis=1)
        np.testing.assert_allclose(distances, np.sort(truth, axis=1), atol=1e-5)
        assert (indices >= 0).all()
    distances, indices = rerank(X, Q, candidates, "l2", 20)
    assert np.isinf(distances[:, -3:]).all() and (indices[:, -3:] == -1).all()


def test_merge_top_k_equals_one_sort(rng):
    scores = rng.normal(size=(5, 100)).astype(np.float32)
    blocks = [
        (scores[:, i : i + 30], np.broadcast_to(np.arange(i, min(i + 30, 100)), (5, min(30, 100 - i))))
        for i in range(0, 100, 30)
    ]
    top, rows = merge_top_k(blocks, 5, 8, largest=True)
    np.testing.assert_array_equal(rows, np.argsort(-scores, axis=1)[:, :8])
    np.testing.assert_allclose(top, -np.sort(-scores, axis=1)[:, :8])
    low, _ = merge_top_k(blocks, 5, 8, largest=False)
    np.testing.assert_allclose(low, np.sort(scores, axis=1)[:, :8])


def test_a_subset_of_rows_is_searched_without_copying_the_index_answers(clustered, rng):
    X, Q = clustered
    searchable = rng.random(4000) < 0.5
    for searcher in (
        ExactSearcher(X, "l2", searchable=searchable),
        FaissSearcher.build(X, HNSWParams(ef_search=200), "l2", searchable=searchable),
    ):
        result = searcher.search(Q, 5)
        assert searchable[result.indices].all() and len(searcher) == 4000


def test_l2_indexes_keep_the_small_distances_of_near_duplicates(rng):
    base = rng.normal(size=(2000, 64)).astype(np.float32) * 50
    X = np.vstack([base, base[:200] + 1e-3])  # 200 twins at distance about 0.008, norms about 400
    searcher = FaissSearcher.build(X, HNSWParams(storage="flat", ef_search=64), "l2")
    result = searcher.search(X[:200], 2)
    twins = np.linalg.norm(X[:200].astype(np.float64) - X[2000:], axis=1)
    np.testing.assert_allclose(result.distances[:, 1], twins, rtol=1e-3)
    assert (result.distances[:, 0] == 0).all()


def test_refine_l2_equals_rerank_but_reads_only_risky_rows(rng):
    X = np.vstack([rng.normal(size=(500, 16)), rng.normal(size=(5, 16)) * 1e-4 + 30]).astype(np.float32)
    Q = np.vstack([X[:20] + 0.5, X[500:505]]).astype(np.float32)
    exact = ExactSearcher(X, "l2").search(Q, 6)
    squared = (exact.distances.astype(np.float64) ** 2 * (1 + 1e-3)).astype(np.float32)  # faiss-like error
    squared[-5:] = 0.0  # cancelled completely for the cluster of near-identical far rows
    distances, indices = refine_l2(X, np.einsum("ij,ij->i", X, X), Q, squared, exact.indices)
    np.testing.assert_allclose(distances[-5:], exact.distances[-5:], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(distances[:20], exact.distances[:20], rtol=1e-3)
    np.testing.assert_array_equal(indices[:20], exact.indices[:20])
