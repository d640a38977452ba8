"""k-means and hierarchical k-means on shards against the same in memory on the same rows and seed: the same
seeds, the same Lloyd iterations, the same labels (up to the order of float64 additions); a subset of the rows as
a bit mask; empty clusters, bad rows and parameters."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

from embedlab import ConfigurationError, EmbeddingDataError, load
from embedlab.cluster import HierarchicalKMeans, KMeans, cluster_shards
from embedlab.cluster._sharded import _kept, fit_centers, row_mask
from embedlab.io.shards import open_shards
from embedlab.scale import LocalBackend


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


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_hierarchical_kmeans_on_shards_builds_the_tree_memory_builds(blobs, metric):
    path, truth = blobs
    # 40 clusters on 6 blobs hold near-ties that decide later iterations: compare a few exactly
    params = dict(n_clusters=(40, 6), metric=metric, n_resamples=2, max_iter=5, random_state=2)
    memory = HierarchicalKMeans(**params).fit(load(path).vectors)
    sharded = HierarchicalKMeans(**params).fit(open_shards(path, shard_rows=600))
    for on_shards, in_memory in zip(sharded.levels_, memory.levels_, strict=True):
        np.testing.assert_allclose(on_shards.centers, in_memory.centers, rtol=1e-4, atol=1e-4)
        assert on_shards.sample_size == in_memory.sample_size
        assert np.mean(on_shards.assignment == in_memory.assignment) > 0.999
    assert np.mean(sharded.labels_per_level_ == memory.labels_per_level_) > 0.999
    assert adjusted_rand_score(truth, sharded.labels_) > 0.99


def test_a_subset_mask_keeps_exactly_its_rows():
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 9, 1000):
        positions = np.sort(rng.choice(n, max(1, n // 3), replace=False))
        mask = row_mask(positions, n)
        assert mask.nbytes == (n + 7) // 8
        for start, stop in ((0, n), (n // 2, n), (max(0, n - 3), n)):
            expected = np.isin(np.arange(start, stop), positions)
            np.testing.assert_array_equal(_kept(mask, start, stop), expected)


def test_kmeans_on_a_subset_of_the_shards_is_kmeans_of_those_rows(blobs):
    path, _ = blobs
    X = load(path).vectors
    subset = np.sort(np.random.default_rng(4).choice(len(X), 900, replace=False))
    memory = KMeans(n_clusters=6, metric="l2", random_state=0).fit(X[subset])
    on_shards = KMeans(n_clusters=6, metric="l2", random_state=0)
    fit_centers(on_shards, open_shards(path, shard_rows=700), LocalBackend(), subset=subset)
    assert on_shards.n_training_points_ == 900 and on_shards.n_iter_ == memory.n_iter_
    np.testing.assert_allclose(on_shards.cluster_centers_, memory.cluster_centers_, rtol=1e-5, atol=1e-5)


def test_cluster_shards_writes_what_the_estimators_find(blobs, tmp_path):
    path, truth = blobs
    sharded = open_shards(path, shard_rows=700)
    found = cluster_shards(sharded, 6, metric="l2", output=tmp_path / "kmeans", random_state=3)
    model = KMeans(6, metric="l2", random_state=3).fit(sharded)
    table = pq.read_table(tmp_path / "kmeans")
    np.testing.assert_array_equal(table.column("cluster").to_numpy(), model.labels_)
    np.testing.assert_array_equal(table.column("id").to_numpy(), np.arange(2500))
    assert found.sizes == np.bincount(model.labels_).tolist() and found.inertia == pytest.approx(model.inertia_)
    assert found.to_dict()["n_shards"] == 4 and found.levels == [6]
    tree = cluster_shards(path, 6, method="hierarchical", metric="l2", shard_rows=700, output=tmp_path / "tree")
    assert tree.levels == [60, 6] and tree.inertia is None
    table = pq.read_table(tmp_path / "tree")
    assert table.column_names == ["id", "cluster", "level_0", "level_1"]
    np.testing.assert_array_equal(table.column("cluster").to_numpy(), tree.model.labels_)
    assert adjusted_rand_score(truth, tree.model.labels_) > 0.99
    with pytest.raises(ConfigurationError, match="must end in n_clusters=6"):
        cluster_shards(sharded, 6, method="hierarchical", levels=(60, 5))
    with pytest.raises(ConfigurationError, match="method must be one of"):
        cluster_shards(sharded, 6, method="gmm")
