from __future__ import annotations

import numpy as np
import pytest

from embedlab.geometry.anisotropy import (
    alignment,
    anisotropy,
    isoscore,
    mean_pairwise_cosine,
    partition_isotropy,
    spectral_entropy,
    uniformity,
)
from embedlab.geometry.spectrum import covariance_spectrum
from embedlab.io.synthetic import random_rotation


def test_mean_pairwise_cosine_matches_brute_force(rng):
    X = rng.normal(size=(300, 8)) + 0.5
    u = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = u @ u.T
    expected = (cos.sum() - np.trace(cos)) / (300 * 299)
    assert mean_pairwise_cosine(X) == pytest.approx(expected, rel=1e-10)


def test_isotropic_cloud_versus_a_common_direction(rng):
    iso = rng.normal(size=(5000, 32))
    shifted = iso + 5.0
    a = anisotropy(iso, covariance_spectrum(iso))
    b = anisotropy(shifted, covariance_spectrum(shifted))
    assert abs(a.mean_cosine) < 0.01 and b.mean_cosine > 0.9
    assert a.isoscore > 0.95 and a.spectral_entropy > 0.99 and a.partition_isotropy > 0.8
    assert b.partition_isotropy < a.partition_isotropy
    assert a.first_pc_variance < 0.05


def test_isoscore_matches_the_reference_implementation(rng):
    reference = pytest.importorskip("IsoScore.IsoScore")
    for scales in (np.ones(10), np.r_[5.0, 1, 1, 1, 1, 0.2, 0.2, 0.1, 0.1, 0.1]):
        X = rng.normal(size=(3000, 10)) * scales
        ours = isoscore(covariance_spectrum(X).eigenvalues, 10)
        assert ours == pytest.approx(float(reference.IsoScore(X)), abs=1e-6)


def test_isoscore_extremes():
    assert isoscore(np.ones(16), 16) == pytest.approx(1.0)
    assert isoscore(np.r_[1.0, np.zeros(15)], 16) == pytest.approx(0.0)


def test_spectral_entropy_extremes():
    assert spectral_entropy(np.ones(8), 8) == pytest.approx(1.0)
    assert spectral_entropy(np.r_[1.0, np.zeros(7)], 8) == pytest.approx(0.0)


def test_partition_isotropy_is_one_for_a_symmetric_set():
    X = np.vstack([np.eye(4), -np.eye(4)])
    assert partition_isotropy(X, np.eye(4)) == pytest.approx(1.0)


def test_uniformity_and_alignment_known_values():
    # Two antipodal points: ||u - v||^2 = 4, so uniformity = -2 * 4.
    assert uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-8.0)
    X = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 3.0], [0.0, 1.0]])
    assert alignment(X, np.array([[0, 2], [1, 3]])) == pytest.approx((2.0 + 0.0) / 2)
    assert alignment(X, np.array([[0, 2], [1, 3]]), block=1) == pytest.approx(1.0)


def test_measures_invariant_to_rotation_and_scale(rng):
    X = rng.normal(size=(1000, 12)) * np.linspace(0.3, 3, 12) + 1.0
    Y = 4.0 * X @ random_rotation(12, rng)
    a, b = anisotropy(X, covariance_spectrum(X)), anisotropy(Y, covariance_spectrum(Y))
    for name in (
        "mean_cosine",
        "first_pc_variance",
        "isoscore",
        "spectral_entropy",
        "uniformity",
        "partition_isotropy",
    ):
        assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-6, abs=1e-9), name
