"""Near-duplicate groups: planted groups found exactly, chains joined, the first row kept."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.curate import duplicate_groups
from embedlab.neighbors import knn


def _unit(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_planted_groups_are_found_exactly_with_their_first_row_kept(rng):
    X = _unit(rng.normal(size=(500, 32)))  # random directions: no pair near 0.99
    planted = {10: [200, 300], 40: [41], 7: [450, 451, 452]}
    for source, copies in planted.items():
        X[copies] = _unit(X[source] + 0.003 * rng.normal(size=(len(copies), 32)))
    groups = duplicate_groups(knn(X, 5, metric="cosine", method="exact"), 0.99)
    found = {tuple(np.flatnonzero(groups.group == g)) for g in range(groups.n_groups)}
    assert found == {(source, *copies) for source, copies in planted.items()}
    assert groups.representative.tolist() == [7, 10, 40]  # groups numbered by their first row
    assert sorted(groups.sizes().tolist()) == [2, 3, 4]
    assert (~groups.keep_mask).sum() == 6 and groups.keep_mask[[7, 10, 40]].all()
    assert groups.a.size == 3 + 1 + 6 and (groups.similarity >= 0.99).all() and (groups.a < groups.b).all()


def test_a_chain_of_close_pairs_is_one_group_though_its_ends_are_far():
    angles = np.radians([0.0, 6.0, 12.0, 18.0, 90.0])  # neighbours 6 degrees apart: cos 0.9945
    X = np.c_[np.cos(angles), np.sin(angles)].astype(np.float32)
    groups = duplicate_groups(knn(X, 2, metric="cosine", method="exact"), 0.99)
    assert groups.group.tolist() == [0, 0, 0, 0, -1]
    assert float(X[0] @ X[3]) < 0.99  # the ends alone would not pair
    assert groups.keep_mask.tolist() == [True, False, False, False, True]


def test_no_pairs_leave_every_row_alone(rng):
    X = _unit(rng.normal(size=(50, 16)))
    groups = duplicate_groups(knn(X, 3, metric="cosine"), 0.999)
    assert groups.n_groups == 0 and (groups.group == -1).all() and groups.keep_mask.all()


@pytest.mark.parametrize("threshold", [0, -0.5, 1.01, "0.9", True])
def test_a_threshold_outside_the_interval_is_refused(rng, threshold):
    graph = knn(_unit(rng.normal(size=(20, 4))), 3, metric="cosine")
    with pytest.raises(ConfigurationError, match=r"threshold must be a cosine similarity in \(0, 1\]"):
        duplicate_groups(graph, threshold)


def test_a_graph_of_another_metric_is_refused(rng):
    with pytest.raises(ConfigurationError, match="needs a cosine kNN graph"):
        duplicate_groups(knn(rng.normal(size=(20, 4)), 3, metric="l2"), 0.9)


def test_the_relative_threshold_follows_the_spacing_of_the_set():
    from embedlab.curate import deduplicate, relative_threshold

    # 200 unit vectors 0.01 rad apart on a circle (each one's nearest neighbour at cosine distance 1 - cos 0.01),
    # and two near copies, 0.0005 rad from rows 10 and 100
    angles = np.r_[np.arange(200) * 0.01, 0.1005, 1.0005]
    X = np.c_[np.cos(angles), np.sin(angles)].astype(np.float32)
    graph = knn(X, 3, metric="cosine")
    spacing = 1 - np.cos(0.01)
    assert relative_threshold(graph, 0.13) == pytest.approx(1 - 0.13 * spacing, abs=1e-6)
    found = deduplicate(X, method="near", relative=0.13, k=3)
    assert sorted(np.flatnonzero(~found.keep).tolist()) == [200, 201]
    assert found.duplicate_of[200] == 10 and found.duplicate_of[201] == 100
    assert found.parameters["relative"] == 0.13
    # a fixed 0.98 would call every neighbour on the circle a duplicate
    assert (~deduplicate(X, method="near", threshold=0.98, k=3).keep).sum() == 201
    with pytest.raises(ConfigurationError, match="relative is a rule of method='near'"):
        deduplicate(X, method="semdedup", relative=0.1)
    with pytest.raises(ConfigurationError, match=r"relative factor must be a number in \(0, 1\]"):
        relative_threshold(graph, 0)
