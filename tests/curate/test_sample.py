from __future__ import annotations

import numpy as np
import pytest

from embedlab.cluster import HierarchicalKMeans, KMeans
from embedlab.curate import (
    Sample,
    balanced_caps,
    default_levels,
    sample,
    sensitivity_probabilities,
)
from embedlab.curate._sample import _systematic, _tree_quota
from embedlab.exceptions import ConfigurationError
from embedlab.io import EmbeddingSet

SIZES = np.array([4000, 1500, 600, 250, 100, 40, 10])


@pytest.fixture
def unequal(rng):
    """Seven well-separated clusters of very unequal sizes, and each row's cluster."""
    centers = 4 * rng.normal(size=(SIZES.size, 24))
    X = np.concatenate([c + rng.normal(size=(s, 24)) for c, s in zip(centers, SIZES, strict=True)])
    return X.astype(np.float32), np.repeat(np.arange(SIZES.size), SIZES)


@pytest.mark.parametrize("target", [0, 1, 7, 69, 70, 71, 500, 1000, 6499, 6500])
def test_balanced_caps_sum_to_the_target_and_are_as_equal_as_the_sizes_allow(target):
    sizes = np.array([3000, 2000, 900, 400, 150, 40, 10])
    taken = balanced_caps(sizes, target, random_state=1)
    assert taken.sum() == target and (taken <= sizes).all() and (taken >= 0).all()
    short = taken < sizes
    if short.any():  # every cluster not taken whole gets the cap or one more, and the cap is above the others
        assert taken[short].max() - taken[short].min() <= 1
        assert (taken[~short] <= taken[short].min() + 1).all()


def test_balanced_caps_by_hand():
    # cap 22 takes 22 + 5 + 22 + 2 = 51 > 50, so cap 21 (49) and one more row from a cluster above 21
    taken = balanced_caps(np.array([100, 5, 40, 2]), 50, random_state=0)
    assert sorted(taken.tolist()) == [2, 5, 21, 22] and taken[1] == 5 and taken[3] == 2
    with pytest.raises(ConfigurationError, match="target must be an integer between 0 and 147"):
        balanced_caps(np.array([100, 5, 40, 2]), 148)


def test_tree_quota_is_balanced_at_every_level(unequal):
    X, _ = unequal
    tree = HierarchicalKMeans((40, 7), n_resamples=1, random_state=0).fit(X)
    quota = _tree_quota(tree, 300, np.random.RandomState(0))
    assert quota.sum() == 300
    bottom, top = tree.levels_[0].assignment, tree.labels_per_level_[:, 1]
    counts = np.bincount(bottom, minlength=40)
    assert (quota <= counts).all()
    parent = tree.levels_[1].assignment
    per_top = np.bincount(parent, weights=quota, minlength=7).astype(int)
    # the caps of each level, up to which clusters got the one extra row
    np.testing.assert_array_equal(np.sort(per_top), np.sort(balanced_caps(np.bincount(top, minlength=7), 300, 5)))
    for p in range(7):
        children = np.flatnonzero(parent == p)
        expected = balanced_caps(counts[children], int(per_top[p]), 5)
        np.testing.assert_array_equal(np.sort(quota[children]), np.sort(expected))


def test_balanced_sampling_evens_out_unequal_clusters(unequal):
    X, y = unequal
    found = sample(X, 280, method="balanced", n_clusters=(60, 7), random_state=0)
    per_class = np.bincount(y[found.rows], minlength=SIZES.size)
    # 7 clusters, 280 rows: 10 from the smallest (all it has), 45 from each of the others
    assert per_class[-1] == 10 and per_class[:-1].min() >= 40 and per_class.max() <= 50
    assert found.size == 280 and np.unique(found.rows).size == 280
    assert found.weight.sum() == pytest.approx(X.shape[0])  # each row stands for its bottom cluster's share
    uniform = sample(X, 280, method="random", random_state=0)
    assert np.bincount(y[uniform.rows], minlength=SIZES.size)[-1] <= 3


def test_closest_takes_the_rows_nearest_each_bottom_centre(unequal):
    X, _ = unequal
    found = sample(X, 7, method="balanced", n_clusters=(7,), within="closest", random_state=0)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    tree = HierarchicalKMeans((7,), n_resamples=3, max_iter=20, random_state=np.random.RandomState(0)).fit(X)
    centers = tree.levels_[0].centers
    nearest = [int(np.argmin(((Xn - c) ** 2).sum(1) + 10 * (tree.labels_ != i))) for i, c in enumerate(centers)]
    assert sorted(nearest) == found.rows.tolist()


def test_sensitivity_probabilities_sum_to_the_size_and_follow_the_sensitivity():
    sq = np.array([0.0, 1.0, 1.0, 2.0, 8.0, 0.0])
    labels = np.array([0, 0, 0, 0, 1, 1])
    probability = sensitivity_probabilities(sq, labels, 3)
    sensitivity = sq / sq.sum() + 1 / np.array([4, 4, 4, 4, 2, 2])
    assert probability.sum() == pytest.approx(3) and probability.max() <= 1
    capped = probability >= 1 - 1e-12
    assert capped.tolist() == [False, False, False, False, True, False]  # row 4: 8/12 + 1/2 is the largest
    ratio = probability[~capped] / sensitivity[~capped]
    np.testing.assert_allclose(ratio, ratio[0])


def test_systematic_sampling_draws_distinct_rows_with_the_given_probabilities():
    probability = np.array([1.0, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.0])
    rng = np.random.RandomState(0)
    draws = 20_000
    counts = np.zeros(probability.size)
    for _ in range(draws):
        rows = _systematic(probability, rng)
        assert rows.size == 3 and np.unique(rows).size == 3
        counts[rows] += 1
    # binomial standard error at p = 0.5 over 20,000 draws is 0.0035: 5 of them
    np.testing.assert_allclose(counts / draws, probability, atol=0.018)


def test_sensitivity_weights_estimate_the_kmeans_cost_without_bias(unequal):
    X, _ = unequal
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    samples = [sample(X, 200, method="sensitivity", n_clusters=20, random_state=seed) for seed in range(30)]
    assert np.mean([s.weight.sum() for s in samples]) == pytest.approx(X.shape[0], rel=0.03)  # estimates n
    # the weighted cost of another clustering (k = 7) estimates its full cost
    centers = KMeans(7, random_state=0).fit(X).cluster_centers_
    cost = ((Xn[:, None, :] - centers[None]) ** 2).sum(-1).min(1)
    weighted = np.array([cost[s.rows] @ s.weight for s in samples])
    assert weighted.mean() == pytest.approx(cost.sum(), rel=0.05)
    uniform = np.array(
        [cost[sample(X, 200, method="random", random_state=s).rows].sum() * 6500 / 200 for s in range(30)]
    )
    assert weighted.std() < uniform.std()  # importance sampling has the lower variance on this set


def test_representatives_are_medoids_weighted_by_their_cluster(rng):
    sizes = np.array([400, 300, 200, 100])
    X = np.concatenate([4 * rng.normal(size=(1, 24)) + rng.normal(size=(s, 24)) for s in sizes]).astype(np.float32)
    y = np.repeat(np.arange(4), sizes)
    found = sample(X, 4, method="representatives", random_state=0)
    assert sorted(y[found.rows].tolist()) == [0, 1, 2, 3]  # one medoid per planted cluster
    np.testing.assert_array_equal(found.weight, sizes[y[found.rows]])


def test_table_and_summary(unequal):
    X, _ = unequal
    ids = np.array([f"r{i}" for i in range(X.shape[0])])
    found = sample(EmbeddingSet(X, ids), 70, method="balanced", n_clusters=(20, 7), random_state=3)
    table = found.to_table(ids)
    assert table.column_names == ["id", "keep", "reason", "group", "weight"]
    keep = np.array(table.column("keep").to_pylist())
    assert keep.sum() == 70 and set(np.asarray(table.column("reason"))[~keep]) == {"not sampled"}
    assert (np.asarray(table.column("weight"))[~keep] == 0).all()
    document = found.to_dict()
    assert document["size"] == 70 and sum(c["sampled"] for c in document["clusters"]) == 70


def test_a_seed_gives_the_same_sample_and_another_seed_another(unequal):
    X, _ = unequal
    for method in ("balanced", "sensitivity", "random"):
        a, b = (sample(X, 50, method=method, n_clusters=None, random_state=s) for s in (4, 4))
        np.testing.assert_array_equal(a.rows, b.rows)
        assert not np.array_equal(a.rows, sample(X, 50, method=method, random_state=5).rows)


def test_default_levels():
    assert default_levels(117_659) == (343, 34)
    assert default_levels(10_000_000) == (3162, 316, 31)
    assert default_levels(50) == (7,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 6501}, "size must be an integer between 1 and 6500 (the set has 6,500 rows)"),
        ({"size": 0}, "size must be an integer between 1 and 6500"),
        ({"size": 10, "method": "stratified"}, "method must be one of"),
        ({"size": 10, "within": "far"}, "within must be one of"),
        ({"size": 10, "method": "representatives", "n_clusters": 3}, "n_clusters is the size"),
        ({"size": 10, "method": "sensitivity", "n_clusters": 11}, "n_clusters must be an integer between 1 and 10"),
    ],
)
def test_bad_requests_are_refused(unequal, kwargs, message):
    X, _ = unequal
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sample(X, **kwargs)


def test_sample_is_a_frozen_record():
    found = Sample("random", {}, np.array([1]), np.array([2.0]), np.array([-1, -1]))
    assert found.keep.tolist() == [False, True] and found.per_cluster()[0].size == 0
