from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.cluster import STABLE_JACCARD, KMeans, cluster_stability
from embedlab.cluster._stability import _best_jaccard


def test_best_jaccard_matches_a_hand_count():
    reference = np.array([0, 0, 0, 1, 1, 2])
    refitted = np.array([5, 5, 7, 7, 7, 9])
    # cluster 0 {0,1,2}: best is {0,1} -> 2/3; cluster 1 {3,4}: {2,3,4} -> 2/3; cluster 2 {5}: {5} -> 1
    np.testing.assert_allclose(_best_jaccard(reference, refitted, np.array([0, 1, 2, 3])), [2 / 3, 2 / 3, 1, np.nan])


def test_separated_clusters_are_all_stable(rng):
    X = np.concatenate([rng.normal(size=(200, 8)) + 10 * e for e in np.eye(8)[:4]])
    result = cluster_stability(X, np.repeat(np.arange(4), 200), metric="l2", random_state=0)
    assert result.n_stable == 4 and min(result.jaccard) > 0.99 and result.sample_size == 640


def test_clusters_cut_out_of_uniform_noise_are_not(rng):
    """k-means always returns k clusters; on structureless data most of them move between resamples."""
    X = rng.uniform(size=(2000, 6))
    labels = KMeans(12, metric="l2", random_state=0).fit(X).labels_
    result = cluster_stability(X, labels, metric="l2", n_boot=8, random_state=0)
    assert np.mean(result.jaccard) < STABLE_JACCARD and result.n_stable < 6


def test_one_spurious_split_is_flagged_while_the_real_clusters_stay_stable(rng):
    """Three real clusters, one of them cut in two halves by hand: the halves dissolve (<= 0.5, Hennig's reading),
    the real ones stay well above them (k-means with k = 4 must cut some real cluster in each resample, so they
    are not all perfect)."""
    X = np.concatenate([rng.normal(size=(300, 8)) + 10 * e for e in np.eye(8)[:3]])
    labels = np.repeat([0, 1, 2], 300)
    labels[600:750] = 3  # half of cluster 2, split along no real boundary
    result = cluster_stability(X, labels, metric="l2", random_state=0)
    jaccard = dict(zip(result.clusters, result.jaccard, strict=True))
    assert max(jaccard[2], jaccard[3]) < 0.5
    assert min(jaccard[0], jaccard[1]) > 0.75 and result.n_stable == 2


def test_seeded_and_noise_left_out(rng):
    X = np.concatenate([rng.normal(size=(100, 4)) + 8 * e for e in np.eye(4)[:2]])
    labels = np.repeat([0, 1], 100)
    labels[:5] = -1
    first = cluster_stability(X, labels, metric="l2", random_state=3)
    assert first == cluster_stability(X, labels, metric="l2", random_state=3)
    assert first.clusters == [0, 1] and first.to_dict()["threshold"] == STABLE_JACCARD


@pytest.mark.parametrize(
    ("labels", "kwargs", "error", "message"),
    [
        (np.zeros(50, dtype=int), {}, ConfigurationError, "at least 2 clusters, got 1"),
        (np.arange(49) % 2, {}, EmbeddingDataError, "49 labels for 50 rows"),
        (np.arange(50) % 2, {"n_boot": 0}, ConfigurationError, "n_boot must be an integer >= 1, got 0"),
        (np.arange(50) % 2, {"fraction": 1.0}, ConfigurationError, "fraction must be between 0 and 1"),
    ],
)
def test_bad_inputs(rng, labels, kwargs, error, message):
    with pytest.raises(error, match=message):
        cluster_stability(rng.normal(size=(50, 4)), labels, metric="l2", **kwargs)
