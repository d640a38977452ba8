from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)

from embedlab.cluster.metrics import (
    NOISE,
    calibration_error,
    external_scores,
    hungarian_accuracy,
    internal_scores,
    match_clusters,
    size_distribution,
)
from embedlab.exceptions import ConfigurationError, EmbeddingDataError

EXACT = 1e-12  # tolerance for results that are ratios of small integers or copied from scikit-learn


def _brute_force_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Best share of matched rows over every one-to-one map of clusters to labels (padding the smaller side)."""
    labels, clusters = np.unique(y_true), np.unique(y_pred[y_pred != NOISE])
    size = max(labels.size, clusters.size)
    best = 0
    for perm in itertools.permutations(range(size)):
        hits = sum(
            int(((y_pred == c) & (y_true == labels[perm[i]])).sum())
            for i, c in enumerate(clusters)
            if perm[i] < labels.size
        )
        best = max(best, hits)
    return best / y_true.size


def _blobs(seed: int, *, n_per: int = 40, k: int = 3, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    y = np.repeat(np.arange(k), n_per)
    return (centres[y] + rng.normal(size=(y.size, d))).astype(np.float32), y


# --- Hungarian matching and accuracy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y_true", "y_pred", "expected"),
    [
        ([0, 0, 1, 1, 2, 2], [2, 2, 0, 0, 1, 1], 1.0),  # permuted labels
        (["a", "a", "b", "b"], ["y", "y", "x", "x"], 1.0),  # str labels on both sides
        ([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1], 5 / 6),
        ([0, 0, 1, 1, 2, 2], [5, 5, 9, 9, 9, 9], 4 / 6),  # fewer clusters: label 2 unmatched
        ([0, 0, 0, 0], [0, 0, 1, 2], 0.5),  # more clusters: 1 and 2 unmatched
        ([0, 1, 2, 3], [0, 0, 0, 0], 0.25),
        (["cat", "cat", "dog"], [1, 1, 1], 2 / 3),
    ],
)
def test_hungarian_accuracy_hand_computed(y_true, y_pred, expected):
    assert hungarian_accuracy(y_true, y_pred) == pytest.approx(expected, abs=EXACT)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "expected"),
    [
        ([0, 0, 1, 1], [1, 1, 0, 0], {0: 1, 1: 0}),
        (["a", "a", "b", "b", "b"], [7, 7, 3, 3, -1], {3: "b", 7: "a"}),
        ([0, 0, 0, 1], [4, 4, 5, 6], {4: 0, 6: 1}),  # 3 clusters, 2 labels: cluster 5 unmatched
        ([0, 0, 1, 2], [3, 3, 3, 3], {3: 0}),  # 1 cluster, 3 labels
        ([0, 0, 1, 1], [-1, -1, -1, -1], {}),  # only noise
    ],
)
def test_match_clusters(y_true, y_pred, expected):
    mapping = match_clusters(y_true, y_pred)
    assert mapping == expected
    assert all(type(key) in (int, str) and type(value) in (int, str) for key, value in mapping.items())


@pytest.mark.parametrize("seed", range(12))
def test_hungarian_accuracy_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_labels, n_clusters = rng.integers(1, 6, size=2)
    y_true = rng.integers(0, n_labels, size=40)
    y_pred = np.where(rng.random(40) < 0.5, y_true, rng.integers(0, n_clusters, size=40))
    if seed % 3 == 0:
        y_pred[rng.random(40) < 0.2] = NOISE
    assert hungarian_accuracy(y_true, y_pred) == pytest.approx(_brute_force_accuracy(y_true, y_pred), abs=EXACT)


@pytest.mark.parametrize("seed", range(5))
def test_accuracy_invariant_to_renaming_clusters(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, size=200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 5, size=200))
    renamed = np.array([f"c{v}" for v in rng.permutation(5)])[y_pred]
    shifted = rng.permutation(5)[y_pred] + 100
    reference = hungarian_accuracy(y_true, y_pred)
    assert hungarian_accuracy(y_true, renamed) == pytest.approx(reference, abs=EXACT)
    assert hungarian_accuracy(y_true, shifted) == pytest.approx(reference, abs=EXACT)


# --- External scores -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("noise", [False, True])
def test_external_scores_match_sklearn(seed, noise):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 5, size=300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 7, size=300))
    if noise:
        y_pred[rng.random(300) < 0.1] = NOISE  # noise is one more cluster for NMI and ARI, as sklearn sees it
    scores = external_scores(y_true, y_pred)
    assert scores.nmi == pytest.approx(normalized_mutual_info_score(y_true, y_pred), abs=EXACT)
    assert scores.ari == pytest.approx(adjusted_rand_score(y_true, y_pred), abs=EXACT)
    assert scores.accuracy == pytest.approx(hungarian_accuracy(y_true, y_pred), abs=EXACT)
    assert scores.n_labels == 5
    assert scores.n_clusters == np.unique(y_pred[y_pred != NOISE]).size
    assert scores.noise_fraction == pytest.approx((y_pred == NOISE).mean(), abs=EXACT)
    assert json.loads(json.dumps(scores.to_dict())) == scores.to_dict()


def test_noise_is_never_matched():
    y_true = [0, 0, 0, 1]
    y_pred = [-1, -1, -1, 3]  # noise would be the best match for label 0, but it is not a cluster
    scores = external_scores(y_true, y_pred)
    assert scores.accuracy == pytest.approx(0.25, abs=EXACT)
    assert (scores.n_clusters, scores.n_labels) == (1, 2)
    assert scores.noise_fraction == pytest.approx(0.75, abs=EXACT)
    assert match_clusters(y_true, y_pred) == {3: 1}


def test_str_predictions_have_no_noise_marker():
    scores = external_scores(["a", "b"], ["-1", "x"])
    assert (scores.noise_fraction, scores.n_clusters, scores.accuracy) == (0.0, 2, 1.0)


# --- Internal scores -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_internal_scores_match_sklearn(seed, metric):
    X, y = _blobs(seed)
    scores = internal_scores(X, y, metric=metric, sample=len(y))
    points = X / np.linalg.norm(X, axis=1, keepdims=True) if metric == "cosine" else X
    silhouette_metric = "cosine" if metric == "cosine" else "euclidean"
    assert scores.silhouette == pytest.approx(silhouette_score(X, y, metric=silhouette_metric), rel=1e-6)
    assert scores.davies_bouldin == pytest.approx(davies_bouldin_score(points, y), rel=1e-6)
    assert scores.calinski_harabasz == pytest.approx(calinski_harabasz_score(points, y), rel=1e-6)
    assert (scores.n_rows, scores.n_sampled, scores.n_noise, scores.n_clusters) == (120, 120, 0, 3)
    assert scores.metric == metric


def test_internal_scores_sample_is_seeded():
    X, y = _blobs(0, n_per=200)
    first = internal_scores(X, y, metric="l2", sample=150, random_state=7)
    again = internal_scores(X, y, metric="l2", sample=150, random_state=7)
    other = internal_scores(X, y, metric="l2", sample=150, random_state=8)
    full = internal_scores(X, y, metric="l2", sample=len(y))
    assert first == again
    assert first.n_sampled == 150
    assert first.silhouette != other.silhouette  # a different sample; the difference is measured at 5.5e-3
    assert first.silhouette == pytest.approx(full.silhouette, abs=0.05)  # a 150-row estimate of the mean
    assert first.davies_bouldin == pytest.approx(full.davies_bouldin, rel=1e-12)  # DB and CH use every row


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_internal_scores_exclude_noise(metric):
    X, y = _blobs(3)
    noisy = y.copy()
    noisy[np.random.default_rng(3).random(y.size) < 0.2] = NOISE
    keep = noisy != NOISE
    scores = internal_scores(X, noisy, metric=metric)
    clean = internal_scores(X[keep], noisy[keep], metric=metric)
    assert scores.n_noise == int((~keep).sum())
    assert scores.n_sampled == clean.n_rows == int(keep.sum())
    for name in ("silhouette", "davies_bouldin", "calinski_harabasz"):
        assert getattr(scores, name) == pytest.approx(getattr(clean, name), rel=1e-12)


@pytest.mark.parametrize(
    "labels",
    [np.zeros(30, dtype=int), np.arange(30), np.full(30, NOISE), np.r_[np.zeros(29, dtype=int), NOISE]],
    ids=["one-cluster", "all-singletons", "all-noise", "one-cluster-and-noise"],
)
def test_internal_scores_undefined_give_nan(labels):
    X = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    scores = internal_scores(X, labels, metric="l2")
    assert math.isnan(scores.silhouette) and math.isnan(scores.davies_bouldin)
    assert math.isnan(scores.calinski_harabasz)
    payload = scores.to_dict()
    assert payload["silhouette"] is None and json.loads(json.dumps(payload)) == payload


def test_internal_scores_nan_silhouette_when_sample_holds_one_cluster():
    X, _ = _blobs(0, n_per=50, k=2)
    y = np.r_[np.zeros(99, dtype=int), 1]
    scores = internal_scores(X, y, metric="l2", sample=2, random_state=0)
    assert math.isnan(scores.silhouette)  # 2 sampled rows of 100: at most 2 clusters, both singletons
    assert scores.davies_bouldin >= 0.0  # defined on all rows


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "ip"}, "metric"),
        ({"sample": 1}, "sample"),
        ({"sample": 2.5}, "sample"),
        ({"sample": True}, "sample"),
    ],
)
def test_internal_scores_bad_parameters(kwargs, message):
    X, y = _blobs(0)
    with pytest.raises(ConfigurationError, match=message):
        internal_scores(X, y, **kwargs)


# --- Size distribution -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "sizes", "n_noise", "cv", "entropy", "imbalance"),
    [
        ([0, 0, 1, 1, 2, 2], (2, 2, 2), 0, 0.0, 1.0, 1.0),
        (["b", "a", "b", "a"], (2, 2), 0, 0.0, 1.0, 1.0),
        ([3, 3, 3, 3], (4,), 0, 0.0, 0.0, 1.0),
        ([0, 0, 0, 1, -1, -1], (3, 1), 2, 0.5, -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2), 3.0),
        ([5, 5, 5, 5, 5, 5, 7, 7, 9], (6, 2, 1), 0, math.sqrt(14 / 3) / 3, None, 6.0),
    ],
)
def test_size_distribution(labels, sizes, n_noise, cv, entropy, imbalance):
    s = size_distribution(labels)
    assert s.sizes == sizes and s.n_noise == n_noise
    assert (s.min_size, s.max_size) == (min(sizes), max(sizes))
    assert s.mean_size == pytest.approx(np.mean(sizes), abs=EXACT)
    assert s.cv == pytest.approx(cv, abs=EXACT)
    p = np.array(sizes) / sum(sizes)
    expected_entropy = entropy if entropy is not None else float(-(p * np.log(p)).sum() / math.log(len(sizes)))
    assert s.entropy == pytest.approx(expected_entropy, abs=EXACT)
    assert s.imbalance_ratio == pytest.approx(imbalance, abs=EXACT)
    assert json.loads(json.dumps(s.to_dict())) == s.to_dict()


def test_size_distribution_ids_ascending_and_all_noise():
    assert size_distribution([9, 2, 2, 5]).cluster_ids == (2, 5, 9)
    s = size_distribution([-1, -1])
    assert (s.sizes, s.n_noise) == ((), 2) and math.isnan(s.entropy)
    assert s.to_dict()["entropy"] is None


# --- Calibration -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_calibration_perfect(n_bins):
    y = np.repeat(["a", "b", "c"], 5)
    proba = np.eye(3)[np.repeat([2, 0, 1], 5)]  # confident, and correct after matching columns to labels
    report = calibration_error(proba, y, n_bins=n_bins)
    assert report.ece == pytest.approx(0.0, abs=EXACT) and report.mce == pytest.approx(0.0, abs=EXACT)
    assert report.accuracy == 1.0 and sum(report.bin_count) == 15 and report.bin_count[-1] == 15


def test_calibration_hand_computed():
    # 5 rows at confidence 0.85 (4 correct) and 5 rows at 0.55 (2 correct); columns 0 -> "a", 1 -> "b"
    # bins of width 0.1: |0.8 - 0.85| = 0.05 and |0.4 - 0.55| = 0.15, so ECE = 0.5 * 0.05 + 0.5 * 0.15 = 0.1
    proba = np.array([[0.85, 0.15]] * 5 + [[0.45, 0.55]] * 5)
    y = ["a", "a", "a", "a", "b", "b", "b", "a", "a", "a"]
    report = calibration_error(proba, y, n_bins=10)
    assert report.ece == pytest.approx(0.1, abs=1e-12)
    assert report.mce == pytest.approx(0.15, abs=1e-12)
    assert report.accuracy == pytest.approx(0.6, abs=EXACT)
    assert report.bin_count == (0, 0, 0, 0, 0, 5, 0, 0, 5, 0)
    assert report.bin_accuracy[8] == pytest.approx(0.8, abs=EXACT) and math.isnan(report.bin_accuracy[0])
    assert report.bin_confidence[5] == pytest.approx(0.55, abs=EXACT)
    assert report.bin_lower[5] == pytest.approx(0.5, abs=EXACT) and report.bin_upper[5] == pytest.approx(0.6, abs=EXACT)
    payload = report.to_dict()
    assert payload["bin_accuracy"][0] is None and json.loads(json.dumps(payload)) == payload


@pytest.mark.parametrize("seed", range(4))
def test_calibration_matches_direct_formula(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(500, 4))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.where(rng.random(500) < 0.7, proba.argmax(axis=1), rng.integers(0, 4, size=500))
    report = calibration_error(proba, y, n_bins=15)
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == y  # the identity matching is the best here
    assert report.accuracy == pytest.approx(hungarian_accuracy(y, proba.argmax(axis=1)), abs=EXACT)
    which = np.minimum((np.ceil(confidence * 15) - 1).astype(int), 14)
    ece = sum(abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).sum() for b in set(which))
    assert report.ece == pytest.approx(ece / 500, abs=1e-12)


@pytest.mark.parametrize(
    ("proba", "message"),
    [
        ([0.5, 0.5], "2-D"),
        (np.empty((0, 3)), "2-D"),
        ([["a", "b"], ["c", "d"]], "numeric"),
        ([[0.5, 0.5], [np.nan, 1.0], [0.5, 0.5]], r"1 of 3 rows have NaN or Inf values \(rows 1\)"),
        ([[0.5, 0.5], [1.5, -0.5], [1.2, -0.2]], r"2 of 3 rows have negative values \(rows 1, 2\)"),
        ([[0.5, 0.5], [0.5, 0.5], [0.5, 0.6]], r"1 of 3 rows have sums further than 0.0001 from 1 \(rows 2\)"),
        ([[0.2, 0.2]] * 7 + [[0.5, 0.5]], r"7 of 8 rows have sums .*\(rows 0, 1, 2, 3, 4, \.\.\.\)"),
    ],
)
def test_calibration_bad_proba(proba, message):
    y = np.zeros(len(proba) if np.ndim(proba) == 2 else 2, dtype=int)
    with pytest.raises(EmbeddingDataError, match=message):
        calibration_error(proba, y)


def test_calibration_tolerates_rounding_and_checks_bins():
    proba = np.array([[0.5, 0.5 + 5e-5], [1.0, 0.0]])
    assert calibration_error(proba, [0, 1]).n_rows == 2
    with pytest.raises(ConfigurationError, match="n_bins"):
        calibration_error(proba, [0, 1], n_bins=0)


# --- Input errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [match_clusters, hungarian_accuracy, external_scores])
def test_length_mismatch_names_both_lengths(function):
    with pytest.raises(EmbeddingDataError, match="y_true has 3 labels but y_pred has 4"):
        function([0, 1, 1], [0, 1, 1, 0])


def test_length_mismatch_in_internal_scores_and_calibration():
    X, _ = _blobs(0)
    with pytest.raises(EmbeddingDataError, match="119 labels for 120 rows"):
        internal_scores(X, np.zeros(119, dtype=int))
    with pytest.raises(EmbeddingDataError, match="proba has 2 rows but y_true has 3 labels"):
        calibration_error([[1.0, 0.0], [0.0, 1.0]], [0, 1, 1])


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([], [], "non-empty 1-D"),
        ([[0, 1]], [[0, 1]], "non-empty 1-D"),
        (np.array(["a", 1, 2.0], dtype=object), [0, 1, 1], "cannot be compared"),
    ],
)
def test_bad_label_inputs(y_true, y_pred, message):
    with pytest.raises(EmbeddingDataError, match=message):
        external_scores(y_true, y_pred)
