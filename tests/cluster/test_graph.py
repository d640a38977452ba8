from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet, MissingDependencyError
from embedlab.cluster._graph import LeidenClusterer, _by_size, _edge_weights, _symmetric_edges
from embedlab.neighbors import HNSWParams, KnnResult, knn, knn_graph


def _blobs(rng, n_per=80, k=5, d=32, spread=0.3, scale=5.0):
    centres = rng.normal(size=(k, d)) * scale
    truth = np.repeat(np.arange(k), n_per)
    X = (centres[truth] + rng.normal(size=(k * n_per, d)) * spread).astype(np.float32)
    return X, truth


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_recovers_planted_clusters(rng, metric):
    X, truth = _blobs(rng)
    leiden = LeidenClusterer(metric=metric, random_state=0).fit(X)
    assert adjusted_rand_score(truth, leiden.labels_) >= 0.95
    assert leiden.labels_.dtype == np.int64 and leiden.n_clusters_ == leiden.labels_.max() + 1
    sizes = np.bincount(leiden.labels_)
    assert np.all(np.diff(sizes) <= 0)  # numbered by decreasing size


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_precomputed_graph_gives_the_same_labels(rng, metric):
    X, _ = _blobs(rng, spread=5.0)  # overlapping: the partition depends on every edge
    own = LeidenClusterer(metric=metric, random_state=5).fit(X)
    wider = knn(X, 20, metric=metric)  # more columns than n_neighbors: the first 15 are used
    np.testing.assert_array_equal(
        LeidenClusterer(metric=metric, random_state=5).fit(X, graph=wider).labels_, own.labels_
    )
    cached = knn_graph(EmbeddingSet(X), 15, metric=metric)
    np.testing.assert_array_equal(
        LeidenClusterer(metric=metric, random_state=5).fit(X, graph=cached).labels_, own.labels_
    )


@pytest.mark.parametrize(("target", "start"), [(5, 1.0), (5, 0.01), (5, 100.0), (8, 1.0)])
def test_target_clusters_is_reached_on_clean_blobs(rng, target, start):
    X, truth = _blobs(rng)
    leiden = LeidenClusterer(target_clusters=target, resolution=start, random_state=0).fit(X)
    assert leiden.n_clusters_ == target
    if target == 5:
        assert adjusted_rand_score(truth, leiden.labels_) >= 0.95


def test_target_below_the_connected_components_stops_there(rng, caplog):
    X, _ = _blobs(rng)  # five blobs, no kNN edge between them
    with caplog.at_level("INFO", logger="embedlab.cluster._graph"):
        leiden = LeidenClusterer(target_clusters=2, random_state=0).fit(X)
    assert leiden.n_clusters_ == 5
    assert "5 connected components" in caplog.text


def test_fixed_seed_identical_and_resolution_orders_cluster_counts(rng):
    X, _ = _blobs(rng, spread=5.0)
    first = LeidenClusterer(random_state=3)
    assert clone(first).get_params() == first.get_params()
    labels = first.fit_predict(X)
    np.testing.assert_array_equal(labels, first.labels_)
    np.testing.assert_array_equal(LeidenClusterer(random_state=3).fit(X).labels_, labels)
    coarse = LeidenClusterer(resolution=0.05, random_state=3).fit(X).n_clusters_
    fine = LeidenClusterer(resolution=5.0, random_state=3).fit(X).n_clusters_
    assert coarse <= first.n_clusters_ < fine


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_edge_weights_and_symmetrisation_match_brute_force(rng, metric):
    X = rng.normal(size=(40, 6)).astype(np.float32)
    X[7] = X[3]  # a duplicate pair
    graph = knn(X, 5, metric=metric)
    X64 = X.astype(np.float64)
    if metric == "cosine":
        unit = X64 / np.linalg.norm(X64, axis=1, keepdims=True)
        dense = np.clip(unit @ unit.T, 0.0, None)
    else:
        sq = ((X64[:, None] - X64[None]) ** 2).sum(axis=2)
        sigma = np.sqrt(np.sort(sq, axis=1)[:, 5])  # column 0 is the row itself
        dense = np.exp(-sq / np.maximum(np.outer(sigma, sigma), 1e-300))
    expected = np.take_along_axis(dense, graph.indices, axis=1)
    np.testing.assert_allclose(_edge_weights(graph), expected, atol=1e-5)
    edges, weights = _symmetric_edges(graph)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges, weights = edges[order], weights[order]
    linked = np.zeros((40, 40), dtype=bool)
    linked[np.repeat(np.arange(40), 5), graph.indices.ravel()] = True
    linked |= linked.T
    linked &= dense > 0
    i, j = np.nonzero(np.triu(linked, k=1))
    np.testing.assert_array_equal(edges, np.column_stack([i, j]))
    np.testing.assert_allclose(weights, dense[i, j], atol=1e-5)


def test_missing_neighbours_get_no_edge(rng):
    graph = knn(rng.normal(size=(10, 4)), 3, metric="cosine")
    indices = graph.indices.copy()
    indices[0, 2] = -1
    broken = KnnResult(np.where(indices < 0, np.inf, graph.distances), indices, "cosine", params=HNSWParams())
    assert _edge_weights(broken)[0, 2] == 0.0
    assert np.all(_symmetric_edges(broken)[0] >= 0)


def test_by_size_relabels_largest_first():
    np.testing.assert_array_equal(_by_size(np.array([2, 0, 2, 1, 2, 1])), [0, 2, 0, 1, 0, 1])


@pytest.mark.parametrize(
    ("kwargs", "fit_kwargs", "X_kind", "error", "message"),
    [
        ({"n_neighbors": 20}, {}, "tiny", ConfigurationError, "n_neighbors=20"),
        ({"n_neighbors": 0}, {}, "tiny", ConfigurationError, "n_neighbors must be"),
        ({"target_clusters": 21}, {}, "tiny", ConfigurationError, "target_clusters must be"),
        ({"target_clusters": 0}, {}, "tiny", ConfigurationError, "target_clusters must be"),
        ({"resolution": 0.0}, {}, "tiny", ConfigurationError, "resolution must be"),
        ({"metric": "manhattan"}, {}, "tiny", ConfigurationError, "metric must be"),
        ({}, {}, "nan", EmbeddingDataError, "NaN"),
        ({}, {}, "one", EmbeddingDataError, "at least 2"),
        ({"n_neighbors": 5}, {"graph": "l2"}, "tiny", ConfigurationError, "metric 'l2'"),
        ({"n_neighbors": 5}, {"graph": "short"}, "tiny", ConfigurationError, "use n_neighbors <= 3"),
        ({"n_neighbors": 5}, {"graph": "other rows"}, "tiny", ConfigurationError, "holds 10 rows"),
        ({"n_neighbors": 5}, {"graph": "array"}, "tiny", ConfigurationError, "must be a KnnResult"),
    ],
)
def test_bad_inputs(kwargs, fit_kwargs, X_kind, error, message):
    tiny = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    X = {"tiny": tiny, "nan": np.where(np.arange(20)[:, None] == 4, np.nan, tiny), "one": tiny[:1]}[X_kind]
    graphs = {
        "l2": lambda: knn(tiny, 5, metric="l2"),
        "short": lambda: knn(tiny, 3),
        "other rows": lambda: knn(tiny[:10], 5),
        "array": lambda: knn(tiny, 5).indices,
    }
    fit_kwargs = {name: graphs[value]() for name, value in fit_kwargs.items()}
    with pytest.raises(error, match=message):
        LeidenClusterer(**kwargs).fit(X, **fit_kwargs)


@pytest.mark.parametrize("module", ["leidenalg", "igraph"])
def test_missing_graph_extra(rng, monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match=r'pip install "embedlab\[graph\]"'):
        LeidenClusterer().fit(_blobs(rng, n_per=10, k=2)[0])
