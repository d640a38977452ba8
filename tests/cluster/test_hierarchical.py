from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.cluster._hierarchical import HierarchicalKMeans, _closest_per_cluster
from embedlab.cluster._kmeans import KMeans


def _long_tail(rng):
    """Ten concepts whose sizes span 6,000 to 15 points (the setting of Vo et al.'s toy example)."""
    sizes = [6000, 2000, 800, 300, 120, 60, 40, 30, 20, 15]
    concepts = rng.normal(size=(10, 16)) * 6
    truth = np.repeat(np.arange(10), sizes)
    X = (concepts[truth] + rng.normal(size=(truth.size, 16))).astype(np.float32)
    return X, concepts


def _concepts_covered(centers, concepts):
    nearest = np.argmin(((centers[:, None, :] - concepts[None]) ** 2).sum(axis=2), axis=1)
    return np.unique(nearest).size


def test_resampling_spreads_centres_over_the_long_tail():
    covered_flat, covered_tree = [], []
    for seed in range(3):
        X, concepts = _long_tail(np.random.default_rng(seed))
        flat = KMeans(10, metric="l2", random_state=seed).fit(X)
        tree = HierarchicalKMeans((200, 10), metric="l2", random_state=seed).fit(X)
        covered_flat.append(_concepts_covered(flat.cluster_centers_, concepts))
        covered_tree.append(_concepts_covered(tree.cluster_centers_, concepts))
    # Flat k-means spends its centres on the dense concepts (7-8 of 10 covered on these seeds); the tree
    # reaches (nearly) all of them on every seed.
    assert min(covered_tree) >= 9 and np.mean(covered_tree) >= 9.5
    assert max(covered_flat) <= 8 and np.mean(covered_tree) - np.mean(covered_flat) >= 1.5


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_tree_is_consistent(rng, metric):
    X = rng.normal(size=(800, 8)).astype(np.float32)
    tree = HierarchicalKMeans((40, 8, 3), metric=metric, n_resamples=2, random_state=0).fit(X)
    assert [level.centers.shape[0] for level in tree.levels_] == [40, 8, 3]
    assert [level.assignment.size for level in tree.levels_] == [800, 40, 8]
    paths = tree.labels_per_level_
    for lower, level in enumerate(tree.levels_[1:]):
        np.testing.assert_array_equal(paths[:, lower + 1], level.assignment[paths[:, lower]])
    np.testing.assert_array_equal(tree.predict(X), tree.labels_)
    assert tree.levels_[0].sample_size == 10 and tree.levels_[1].sample_size == 2  # half the mean cluster size
    if metric == "cosine":
        np.testing.assert_allclose(np.linalg.norm(tree.cluster_centers_, axis=1), 1.0, atol=1e-5)


def test_seeded_runs_are_identical(rng):
    X = rng.normal(size=(500, 8)).astype(np.float32)
    a = HierarchicalKMeans((25, 5), metric="l2", n_resamples=3, random_state=7).fit(X)
    b = HierarchicalKMeans((25, 5), metric="l2", n_resamples=3, random_state=7).fit(X)
    np.testing.assert_array_equal(a.labels_per_level_, b.labels_per_level_)


def test_closest_per_cluster_keeps_the_nearest_points():
    sq = np.array([5.0, 1.0, 3.0, 0.5, 2.0, 9.0])
    labels = np.array([0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(_closest_per_cluster(sq, labels, 2), [1, 2, 3, 4, 5])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_clusters": ()}, "non-empty, non-increasing"),
        ({"n_clusters": (5, 10)}, "non-increasing"),
        ({"n_clusters": (10, 0)}, "positive integers"),
        ({"n_clusters": (10, 5), "sample_sizes": (3,)}, "sample_sizes has 1 entries"),
        ({"n_clusters": (50,)}, "level 0 asks for 50 clusters but has only 20 points"),
        ({"n_clusters": True}, "non-empty, non-increasing"),
    ],
)
def test_bad_levels(degenerate, kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        HierarchicalKMeans(**{"metric": "l2", **kwargs}).fit(degenerate["constant_dim"])


def test_an_integer_is_one_level(rng):
    X = rng.normal(size=(300, 8)).astype(np.float32)
    as_int = HierarchicalKMeans(6, metric="l2", n_resamples=1, random_state=0).fit(X)
    as_tuple = HierarchicalKMeans((6,), metric="l2", n_resamples=1, random_state=0).fit(X)
    np.testing.assert_array_equal(as_int.labels_, as_tuple.labels_)
    assert as_int.labels_per_level_.shape == (300, 1)
