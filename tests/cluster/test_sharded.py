"""k-means on shards against k-means in memory on the same rows and seed: the same seeds, the same Lloyd
iterations, the same labels (up to the order of float64 additions); empty clusters, bad rows and parameters."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from embedlab import ConfigurationError, EmbeddingDataError, load
from embedlab.cluster import KMeans
from embedlab.io.shards import open_shards


@pytest.fixture
def blobs(tmp_path):
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(6, 10)) * 6
    truth = rng.integers(0, 6, 2500)
    X = (centres[truth] + rng.normal(size=(2500, 10))).astype(np.float32)
    path = tmp_path / "blobs.npy"
    np.save(path, X)
    return path, truth


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("n_init", [1, 2])
def test_shards_give_what_memory_gives(blobs, metric, n_init):
    path, truth = blobs
    params = dict(n_clusters=6, metric=metric, n_init=n_init, init_size=800, random_state=3, tol=1e-6)
    memory = KMeans(**params).fit(load(path).vectors)
    sharded = KMeans(**params).fit(open_shards(path, shard_rows=700))
    assert sharded.n_iter_ == memory.n_iter_
    np.testing.assert_allclose(sharded.cluster_centers_, memory.cluster_centers_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sharded.inertia_history_, memory.inertia_history_, rtol=1e-6)
    assert np.mean(sharded.labels_ == memory.labels_) > 0.999
    np.testing.assert_allclose(sharded.confidence_, memory.confidence_, atol=1e-4)
    assert sharded.inertia_ == pytest.approx(memory.inertia_, rel=1e-6)
    assert adjusted_rand_score(truth, sharded.labels_) > 0.99


def test_random_and_given_seeds_and_an_empty_cluster(blobs):
    path, _ = blobs
    X = load(path).vectors
    sharded = open_shards(path, shard_rows=1000)
    for init in ("random", np.r_[X[:5], np.full((1, 10), 1e3, np.float32)]):  # the far centre gets no rows
        memory = KMeans(n_clusters=6, metric="l2", init=init, random_state=1).fit(X)
        on_shards = KMeans(n_clusters=6, metric="l2", init=init, random_state=1).fit(sharded)
        np.testing.assert_allclose(on_shards.cluster_centers_, memory.cluster_centers_, rtol=1e-5, atol=1e-5)
        assert np.mean(on_shards.labels_ == memory.labels_) > 0.999


def test_bad_rows_and_parameters_are_named(tmp_path, blobs):
    path, _ = blobs
    with pytest.raises(ConfigurationError, match="max_points_per_centroid"):
        KMeans(n_clusters=3, max_points_per_centroid=10).fit(open_shards(path))
    with pytest.raises(ConfigurationError, match="only 2500 rows"):
        KMeans(n_clusters=3000).fit(open_shards(path))
    X = np.load(path)
    X[1800, 2] = np.nan
    bad = tmp_path / "bad.npy"
    np.save(bad, X)
    with pytest.raises(EmbeddingDataError, match=r"bad.npy \(rows 1500-1999\)"):
        KMeans(n_clusters=3, metric="l2").fit(open_shards(bad, shard_rows=500))
