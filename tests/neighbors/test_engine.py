from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet, knn, knn_graph
from embedlab.neighbors import HNSWParams, IVFParams


def _sklearn(X, k, metric, queries=None):
    """Brute-force reference in the KnnResult convention (self excluded when queries is None)."""
    nn = NearestNeighbors(n_neighbors=k + (queries is None), metric="euclidean" if metric == "l2" else metric)
    nn.fit(X)
    dist, idx = nn.kneighbors(X if queries is None else queries)
    return (dist[:, 1:], idx[:, 1:]) if queries is None else (dist, idx)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_exact_matches_scikit_learn(vectors, metric):
    result = knn(vectors, 7, metric=metric, method="exact")
    dist, idx = _sklearn(vectors.astype(np.float64), 7, metric)
    assert result.method == "exact" and result.recall == 1.0
    np.testing.assert_allclose(result.distances, dist, atol=2e-5)
    assert (result.indices == idx).mean() > 0.999  # ties at float32 precision may swap
    assert result.distances.dtype == np.float32 and result.indices.dtype == np.int64


def test_inner_product_distances_are_negative_scores(vectors):
    result = knn(vectors, 3, metric="ip", method="exact")
    np.testing.assert_allclose(
        -result.distances[:, 0], np.einsum("ij,ij->i", vectors, vectors[result.indices[:, 0]]), rtol=1e-5
    )
    assert (np.diff(result.distances, axis=1) >= 0).all()


def test_queries_against_a_set(vectors, rng):
    queries = rng.normal(size=(20, 16)).astype(np.float32)
    result = knn(vectors, 5, queries=queries, metric="l2")
    dist, idx = _sklearn(vectors, 5, "l2", queries)
    np.testing.assert_allclose(result.distances, dist, atol=1e-4)
    np.testing.assert_array_equal(result.indices, idx)


def test_self_match_removed_even_with_duplicates(degenerate):
    X = degenerate["duplicates"]  # rows 5, 6, 7 equal
    result = knn(X, 3, metric="l2", method="exact")
    assert not (result.indices == np.arange(len(X))[:, None]).any()
    for row in (5, 6, 7):
        assert set(result.indices[row, :2]) == {5, 6, 7} - {row}
        np.testing.assert_allclose(result.distances[row, :2], 0.0, atol=1e-6)


@pytest.mark.parametrize("method", ["hnsw", "ivf"])
def test_approximate_methods_report_measured_recall(rng, method):
    centres = rng.normal(size=(20, 32)) * 4
    X = (centres[rng.integers(0, 20, 5000)] + rng.normal(size=(5000, 32))).astype(np.float32)
    result = knn(X, 10, method=IVFParams(nprobe=16) if method == "ivf" else method, recall_sample=500)
    exact = knn(X, 10, method="exact")
    truth_kth = exact.distances[:, -1:]
    measured = float((result.distances <= truth_kth + 1e-5).mean())
    assert result.recall_sample == 500
    assert result.recall == pytest.approx(measured, abs=0.03)
    assert result.recall > 0.9
    assert result.method == method and result.params.to_dict()["method"] == method


def test_auto_picks_exact_for_small_sets(vectors):
    assert knn(vectors, 5).method == "exact"


def test_auto_switches_to_hnsw(monkeypatch, vectors):
    monkeypatch.setattr("embedlab.neighbors.engine.AUTO_EXACT_MAX_PAIRS", 100)
    result = knn(vectors, 5)
    assert result.method == "hnsw" and 0.9 <= result.recall <= 1.0 and result.recall_sample == 300


def test_scaling_and_cosine_invariance(vectors):
    a = knn(vectors, 5, metric="cosine")
    b = knn(vectors * 7.5, 5, metric="cosine")
    np.testing.assert_array_equal(a.indices, b.indices)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"k": 300}, ConfigurationError, "k=300 but only 299"),
        ({"k": 0}, ConfigurationError, "k must be an integer >= 1"),
        ({"metric": "manhattan"}, ConfigurationError, "metric"),
        ({"method": "lsh"}, ConfigurationError, "method"),
    ],
)
def test_bad_parameters(vectors, kwargs, error, message):
    with pytest.raises(error, match=message):
        knn(vectors, **{"k": 5, **kwargs})


def test_bad_inputs(degenerate, vectors):
    with pytest.raises(EmbeddingDataError, match="all-zero"):
        knn(degenerate["zero_row"], 3, metric="cosine")
    assert knn(degenerate["zero_row"], 3, metric="l2").k == 3
    with pytest.raises(EmbeddingDataError, match="at least 2"):
        knn(vectors[:1], 1)
    with pytest.raises(EmbeddingDataError, match="queries has 5 features, but it is expecting 16 features"):
        knn(vectors, 3, queries=vectors[:, :5])


def test_graph_is_cached_and_sliced(labelled_set, monkeypatch):
    first = knn_graph(labelled_set, 10)
    calls = []
    monkeypatch.setattr("embedlab.neighbors.engine.knn", lambda *a, **k: calls.append(1))
    smaller = knn_graph(labelled_set, 4)
    assert calls == [] and knn_graph(labelled_set, 10) is first
    np.testing.assert_array_equal(smaller.indices, first.indices[:, :4])


def test_graph_cache_is_per_set(vectors):
    a, b = EmbeddingSet(vectors), EmbeddingSet(vectors[::-1].copy())
    assert knn_graph(a, 3) is not knn_graph(b, 3)


def test_graph_table_maps_positions_to_ids_and_marks_missing(rng):
    X = rng.normal(size=(200, 8)).astype(np.float32)
    ids = np.array([f"r{i}" for i in range(200)], dtype=object)
    result = knn(X, 5, method=IVFParams(nlist=20, nprobe=1), recall_sample=0)
    assert result.params == IVFParams(nlist=20, nprobe=1, storage="sq8")
    table = result.to_graph_table(ids)
    rows = table.to_pylist()
    for row, (positions, distances) in enumerate(zip(result.indices, result.distances, strict=True)):
        assert rows[row]["id"] == f"r{row}"
        assert rows[row]["neighbor_ids"] == [None if p < 0 else f"r{p}" for p in positions]
        assert rows[row]["distances"] == pytest.approx(distances.tolist())


@pytest.mark.parametrize("method", ["exact", "hnsw"])
def test_query_rows_search_a_subset_without_self_matches(vectors, method):
    rows = np.array([3, 50, 299, 7])
    subset = knn(vectors, 6, query_rows=rows, metric="l2", method=method)
    full = knn(vectors, 6, metric="l2", method="exact")
    assert not (subset.indices == rows[:, None]).any()
    np.testing.assert_array_equal(subset.indices, full.indices[rows])
    np.testing.assert_allclose(subset.distances, full.distances[rows], rtol=1e-6)


def test_l2_distances_of_close_pairs_are_exact(rng):
    base = rng.normal(size=(50, 384)).astype(np.float32) * 100
    X = np.vstack([base, base + 1e-3])  # each row has a twin at distance about 0.02
    result = knn(X, 1, metric="l2", method="exact")
    expected = np.linalg.norm(X[:50].astype(np.float64) - X[50:], axis=1)
    np.testing.assert_allclose(result.distances[:50, 0], expected, rtol=1e-3)


@pytest.mark.parametrize("n_hidden", [5, 400])  # fetched-and-filtered, and searched in a copy
@pytest.mark.parametrize("method", ["exact", "hnsw"])
def test_searchable_rows_are_the_only_neighbours(rng, n_hidden, method):
    X = rng.normal(size=(1000, 16)).astype(np.float32)
    searchable = np.ones(len(X), dtype=bool)
    searchable[rng.choice(len(X), n_hidden, replace=False)] = False
    rows = np.arange(0, 1000, 7)  # hidden and searchable queries alike
    result = knn(X, 5, query_rows=rows, searchable=searchable, metric="l2", method=method)
    brute = np.linalg.norm(X[rows, None, :].astype(np.float64) - X[None, :, :], axis=2)
    brute[:, ~searchable] = np.inf
    brute[np.arange(rows.size), rows] = np.inf
    expected = np.argsort(brute, axis=1)[:, :5]
    assert searchable[result.indices].all()
    assert not (result.indices == rows[:, None]).any()
    found = np.mean([np.isin(a, b).mean() for a, b in zip(result.indices, expected, strict=True)])
    assert (found == 1.0) if method == "exact" else (found > 0.95)
    if method == "exact":
        np.testing.assert_allclose(result.distances, np.sort(brute, axis=1)[:, :5], rtol=1e-5)


@pytest.mark.parametrize("method", ["hnsw", "ivf"])
def test_compressed_index_keeps_recall_and_returns_exact_distances(rng, method):
    centres = rng.normal(size=(20, 32)) * 4
    X = (centres[rng.integers(0, 20, 5000)] + rng.normal(size=(5000, 32))).astype(np.float32)
    kind = {"hnsw": HNSWParams, "ivf": lambda storage: IVFParams(nprobe=16, storage=storage)}[method]
    flat = knn(X, 10, method=kind(storage="flat"), recall_sample=1000)
    sq8 = knn(X, 10, method=kind(storage="sq8"), recall_sample=1000)
    assert sq8.params.storage == "sq8" and sq8.params.rerank == 2 and flat.params.rerank == 1
    assert sq8.recall >= flat.recall - 0.01
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    exact_distances = 1.0 - np.einsum("ij,ikj->ik", unit, unit[sq8.indices])
    np.testing.assert_allclose(sq8.distances, exact_distances, atol=1e-5)
    assert (np.diff(sq8.distances, axis=1) >= 0).all()


def test_bad_searchable_and_storage(vectors):
    with pytest.raises(ConfigurationError, match="searchable must be a boolean mask"):
        knn(vectors, 3, searchable=np.ones(5, dtype=bool))
    with pytest.raises(ConfigurationError, match="storage must be one of 'sq8', 'flat', got 'pq'"):
        knn(vectors, 3, method=HNSWParams(storage="pq"))
    with pytest.raises(ConfigurationError, match="k=3 but only"):
        knn(vectors, 3, searchable=np.arange(len(vectors)) < 3)
