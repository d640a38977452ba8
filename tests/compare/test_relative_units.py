"""Relative representations, zero-shot stitching, and unit matching."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.compare import (
    choose_anchors,
    match_units,
    relative_transform,
    sparse_unit_regression,
    zero_shot_stitching,
)
from embedlab.exceptions import ConfigurationError, EmbeddingDataError


@pytest.fixture
def labelled(rng):
    """Six overlapping Gaussian classes in 24 dimensions, 80 rows each."""
    centres = 1.5 * rng.normal(size=(6, 24))
    labels = np.repeat(np.arange(6), 80)
    return (centres[labels] + rng.normal(size=(480, 24))).astype(np.float32), labels


@pytest.mark.parametrize("method", ["random", "kmeans", "farthest"])
def test_anchors_are_distinct_rows_and_seeded(labelled, method):
    X, _ = labelled
    anchors = choose_anchors(X, 12, method=method, random_state=4)
    assert anchors.dtype == np.int64 and anchors.size == 12 and np.unique(anchors).size == 12
    assert anchors.min() >= 0 and anchors.max() < len(X)
    np.testing.assert_array_equal(anchors, choose_anchors(X, 12, method=method, random_state=4))


def test_kmeans_anchors_cover_every_class_and_bad_parameters_fail(labelled):
    X, labels = labelled
    assert set(labels[choose_anchors(X, 6, method="kmeans")]) == set(range(6))
    with pytest.raises(ConfigurationError, match="n_anchors"):
        choose_anchors(X, 0)
    with pytest.raises(ConfigurationError, match="method"):
        choose_anchors(X, 3, method="spectral")


def test_relative_vectors_ignore_rotation_and_scale(rng, labelled):
    X, _ = labelled
    anchors = choose_anchors(X, 10, method="farthest")
    moved = 4.0 * X @ np.linalg.qr(rng.normal(size=(24, 24)))[0]
    np.testing.assert_allclose(relative_transform(moved, moved[anchors]), relative_transform(X, X[anchors]), atol=1e-5)
    with pytest.raises(EmbeddingDataError, match="dimension"):
        relative_transform(X, X[:3, :10])


def test_stitching_works_across_a_rotation_and_fails_on_unrelated_data(rng, labelled):
    A, labels = labelled
    rotated = (A @ np.linalg.qr(rng.normal(size=(24, 24)))[0] + 0.05 * rng.normal(size=A.shape)).astype(np.float32)
    same = zero_shot_stitching(A, rotated, labels, n_anchors=60, random_state=0)
    assert same.within_accuracy > 0.8 and same.absolute_accuracy > 0.8  # separable classes: both probes learn them
    assert abs(same.stitched_accuracy - same.within_accuracy) <= 0.05
    unrelated = zero_shot_stitching(A, rng.normal(size=(480, 32)), labels, n_anchors=60, random_state=0)
    assert unrelated.stitched_accuracy < unrelated.chance_accuracy + 0.1
    assert (unrelated.n_train, unrelated.n_test, unrelated.n_anchors) == (336, 144, 60)
    with pytest.raises(EmbeddingDataError, match="one label per row"):
        zero_shot_stitching(A, rotated, labels[:-1])


def test_a_permuted_sign_flipped_copy_is_matched_exactly(rng):
    X = rng.normal(size=(500, 10)) * np.linspace(1, 3, 10)
    perm = rng.permutation(10)
    signs = np.where(rng.random(10) < 0.5, -1.0, 1.0)
    extra = rng.normal(size=(500, 3))  # Y has 3 more units than X
    Y = np.c_[(X * signs)[:, perm], extra]
    matching = match_units(X, Y)
    # unit perm[j] of X became unit j of Y
    np.testing.assert_array_equal(matching.units_x, np.arange(10))
    np.testing.assert_array_equal(perm[matching.units_y], matching.units_x)
    np.testing.assert_allclose(matching.correlations, signs[matching.units_x], atol=1e-6)
    assert matching.mean_abs_correlation == pytest.approx(1.0, abs=1e-6)


def test_sparse_regression_finds_a_unit_spread_over_two(rng):
    X = rng.normal(size=(1000, 8))
    Y = np.c_[X[:, 1] + X[:, 5], rng.normal(size=1000)]
    result = sparse_unit_regression(X, Y, alpha=0.01)
    assert result.coefficients.shape == (2, 8)
    assert result.r2[0] > 0.99 and result.n_nonzero[0] == 2
    assert set(np.flatnonzero(result.coefficients[0])) == {1, 5}
    assert result.r2[1] < 0.05
    with pytest.raises(ConfigurationError, match="alpha"):
        sparse_unit_regression(X, Y, alpha=0.0)
