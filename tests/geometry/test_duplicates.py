from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import median_abs_deviation

import embedlab.geometry.duplicates as duplicates
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.geometry.duplicates import exact_duplicates, knn_outliers, modified_z_scores, near_duplicates
from embedlab.neighbors import knn


@pytest.fixture
def planted() -> np.ndarray:
    """500 x 8 Gaussian rows with two groups of exact copies: {10, 50, 300, 301} and {20, 21}."""
    X = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    X[[50, 300, 301]] = X[10]
    X[21] = X[20]
    return X


# ------------------------------------------------------------------------------------------------ exact duplicates


def test_planted_exact_duplicates(planted):
    ids = np.array([f"r{i}" for i in range(500)])
    found = exact_duplicates(planted, ids=ids)
    assert (found.n_rows, found.groups, found.rows, found.pairs) == (500, 2, 4, 6 + 1)
    assert found.examples == (("r10", "r50", "r300", "r301"), ("r20", "r21"))  # largest group first
    assert np.flatnonzero(~found.keep_mask).tolist() == [21, 50, 300, 301]
    # reference: distinct rows by numpy
    assert found.keep_mask.sum() == np.unique(planted, axis=0).shape[0]
    payload = found.to_dict()
    assert "keep_mask" not in payload and json.loads(json.dumps(payload)) == payload


def test_max_examples_limits_examples_only(planted):
    found = exact_duplicates(planted, max_examples=1)
    assert found.examples == ((10, 50, 300, 301),)
    assert (found.groups, found.rows, found.pairs) == (2, 4, 7)


def test_hash_collision_never_merges_different_rows(planted, monkeypatch):
    honest = exact_duplicates(planted)
    monkeypatch.setattr(duplicates, "row_hashes", lambda v: np.zeros(len(v), dtype=np.uint64))
    colliding = exact_duplicates(planted)
    assert (colliding.groups, colliding.rows, colliding.pairs) == (2, 4, 7)
    assert colliding.examples == honest.examples
    np.testing.assert_array_equal(colliding.keep_mask, honest.keep_mask)


def test_collision_between_two_distinct_rows_only(monkeypatch):
    X = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32)
    monkeypatch.setattr(duplicates, "row_hashes", lambda v: np.array([7, 7, 9], dtype=np.uint64))
    found = exact_duplicates(X)
    assert (found.groups, found.rows, found.pairs, found.examples) == (0, 0, 0, ())
    assert found.keep_mask.all()


def test_no_duplicates_and_signed_zero_is_a_different_row():
    X = np.array([[0.0, 1.0], [-0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    found = exact_duplicates(X)
    assert (found.groups, found.rows, found.pairs, found.examples) == (0, 0, 0, ())


def test_one_repeated_vector(degenerate):
    X = degenerate["one_vector_repeated"]
    found = exact_duplicates(X)
    assert (found.groups, found.rows, found.pairs) == (1, 9, 45)
    assert found.keep_mask.tolist() == [True] + [False] * 9


def test_exact_duplicates_rejects_bad_ids_and_counts(planted):
    with pytest.raises(EmbeddingDataError):
        exact_duplicates(planted, ids=np.arange(3))
    with pytest.raises(ConfigurationError):
        exact_duplicates(planted, max_examples=-1)


# ------------------------------------------------------------------------------------------------- near duplicates


@pytest.fixture
def with_copies() -> tuple[np.ndarray, set, set]:
    """1000 x 64 Gaussian rows, then 30 noisy copies and 5 exact copies of distinct rows."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(1000, 64))
    sources = rng.choice(1000, size=35, replace=False)
    copies = base[sources] + 0.005 * rng.normal(size=(35, 64))
    copies[30:] = base[sources[30:]]
    X = np.r_[base, copies].astype(np.float32)
    noisy = {(int(s), 1000 + i) for i, s in enumerate(sources[:30])}
    exact = {(int(s), 1030 + i) for i, s in enumerate(sources[30:])}
    return X, noisy, exact


def _brute_force_pairs(X: np.ndarray, threshold: float) -> set:
    unit = X.astype(np.float64) / np.linalg.norm(X, axis=1, keepdims=True)
    a, b = np.nonzero(np.triu(unit @ unit.T, k=1) >= threshold)
    return set(zip(a.tolist(), b.tolist(), strict=True))


def test_planted_near_duplicates_are_all_found(with_copies):
    X, noisy, exact = with_copies
    found = near_duplicates(knn(X, 10, metric="cosine"), vectors=X, threshold=0.98, max_examples=100)
    assert found.pairs == 35 and found.pairs_not_exact == 30 and found.rows == 70
    assert (found.k, found.threshold) == (10, 0.98)
    assert {(e["a"], e["b"]) for e in found.examples} == noisy  # exact copies left out of the examples
    assert _brute_force_pairs(X, 0.98) == noisy | exact
    similarities = [e["similarity"] for e in found.examples]
    assert similarities == sorted(similarities, reverse=True) and min(similarities) > 0.999
    assert json.loads(json.dumps(found.to_dict())) == found.to_dict()


def test_without_vectors_exact_pairs_are_not_told_apart(with_copies):
    X, noisy, exact = with_copies
    ids = np.array([f"x{i}" for i in range(len(X))], dtype=object)
    found = near_duplicates(knn(X, 10, metric="cosine"), ids=ids, max_examples=100)
    assert found.pairs == 35 and found.pairs_not_exact is None
    assert {(e["a"], e["b"]) for e in found.examples} == {(f"x{a}", f"x{b}") for a, b in noisy | exact}
    assert all(e["similarity"] <= 1.0 for e in found.examples)


def test_random_gaussian_data_has_no_near_duplicates():
    X = np.random.default_rng(2).normal(size=(2000, 64)).astype(np.float32)
    found = near_duplicates(knn(X, 10, metric="cosine"), vectors=X)
    assert (found.pairs, found.pairs_not_exact, found.rows, found.examples) == (0, 0, 0, ())  # max cos ~0.6


def test_each_unordered_pair_is_counted_once_and_limited_to_k():
    # Four copies of one direction: 6 pairs, but with k = 1 each row sees only one of the others.
    X = np.r_[np.tile([[1.0, 0.0, 0.0]], (4, 1)), np.eye(3)[1:]].astype(np.float32)
    assert near_duplicates(knn(X, 3, metric="cosine")).pairs == 6
    assert near_duplicates(knn(X, 1, metric="cosine")).pairs < 6


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.01])
def test_threshold_out_of_range_raises(vectors, threshold):
    with pytest.raises(ConfigurationError):
        near_duplicates(knn(vectors, 3, metric="cosine"), threshold=threshold)


def test_a_non_cosine_graph_raises(vectors):
    with pytest.raises(ConfigurationError, match="cosine"):
        near_duplicates(knn(vectors, 3, metric="l2"))


# -------------------------------------------------------------------------------------------------------- outliers


def _cloud(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2000, 16))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_far_outliers_are_all_found(seed):
    rng = np.random.default_rng(100 + seed)
    directions = rng.normal(size=(10, 16))
    far = 12.0 * directions / np.linalg.norm(directions, axis=1, keepdims=True)  # the cloud has radius ~4
    X = np.r_[_cloud(seed), far]
    found = knn_outliers(knn(X, 10, metric="l2").distances, threshold=5.0, top=10)
    assert found.count == 10
    assert set(found.ids) == set(range(2000, 2010))
    assert list(found.scores) == sorted(found.scores, reverse=True)
    assert min(found.z_scores) > 8.0  # measured 9.1 to 9.3


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_clean_gaussian_cloud_has_no_outliers(seed):
    X = _cloud(seed)
    distances = knn(X, 10, metric="l2").distances
    # Over 20 seeds the largest modified z-score of a clean cloud (n=2000, d=16, k=10) is 3.3-4.5: the
    # Gaussian's own extreme tail. Nothing reaches 5; at the default 3.5 only a few of the largest-norm rows.
    assert knn_outliers(distances, threshold=5.0).count == 0
    flagged = knn_outliers(distances).mask
    largest_norms = np.argsort(-np.linalg.norm(X, axis=1))[:5]
    assert flagged.sum() <= 5 and set(np.flatnonzero(flagged)) <= set(largest_norms.tolist())


def test_repeated_vector_with_far_points_uses_the_mean_deviation():
    rng = np.random.default_rng(3)
    X = np.r_[np.tile(rng.normal(size=(1, 8)), (50, 1)), 30.0 + rng.normal(size=(3, 8)) * 10.0]
    found = knn_outliers(knn(X, 5, metric="l2").distances, ids=np.array([f"p{i}" for i in range(53)]))
    assert found.count == 3 and set(found.ids) == {"p50", "p51", "p52"}
    assert np.isfinite(found.z).all() and np.isfinite(found.score).all()
    # MAD = 0 here: the fallback is 0.7979 (x - median) / mean|x - median| on the log scores, zeros raised to
    # half the smallest positive score.
    score = found.score
    logs = np.log(np.maximum(score, 0.5 * score[score > 1e-6].min()))
    deviation = logs - np.median(logs)
    np.testing.assert_allclose(found.z, 0.7979 * deviation / np.abs(deviation).mean(), rtol=1e-12)
    assert json.loads(json.dumps(found.to_dict())) == found.to_dict()


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_one_repeated_vector_gives_no_nan(degenerate, metric):
    X = degenerate["one_vector_repeated"]
    found = knn_outliers(knn(X, 3, metric=metric).distances)
    # cosine distances between identical vectors come out as 0 or ~6e-8 (float32 round-off), not all 0
    assert found.count == 0 and found.ids == () and found.median_score < 1e-6
    assert np.array_equal(found.z, np.zeros(10))
    near = near_duplicates(knn(X, 3, metric="cosine"), vectors=X)
    assert near.pairs_not_exact == 0 and all(np.isfinite(e["similarity"]) for e in near.examples)


def test_round_off_distances_are_not_read_as_outliers():
    distances = np.zeros((10, 3), dtype=np.float32)
    distances[4] = 5.9604645e-08  # float32 round-off of the cosine distance between identical vectors
    distances[5] = 1.2e-07
    assert knn_outliers(distances).count == 0
    distances[-1] = 1e-6 * 1.5  # one real score: every score at or below min_score is alike, below it
    assert knn_outliers(distances).z[:-1].tolist() == [knn_outliers(distances).z[0]] * 9
    distances[-1] = 0.0
    assert knn_outliers(distances, min_score=0.0).ids == (5,)  # round-off ratios read as a large z-score


def test_modified_z_scores_match_the_reference_formula():
    x = np.random.default_rng(4).lognormal(size=301)
    expected = 0.6745 * (x - np.median(x)) / median_abs_deviation(x)
    np.testing.assert_allclose(modified_z_scores(x), expected, rtol=1e-12)


def test_missing_kth_neighbour_falls_back_to_the_farthest_found():
    distances = np.array([[1.0, 2.0], [1.0, np.inf], [1.0, 2.0]] * 5)
    assert knn_outliers(distances).score[1] == 1.0
    with pytest.raises(EmbeddingDataError):
        knn_outliers(np.array([[np.inf, np.inf], [1.0, 2.0]]))


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"threshold": float("nan")}, {"top": -1}, {"min_score": -1.0}])
def test_outlier_parameters_are_checked(kwargs):
    with pytest.raises(ConfigurationError):
        knn_outliers(np.ones((5, 2)), **kwargs)
