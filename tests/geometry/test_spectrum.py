from __future__ import annotations

import numpy as np
import pytest

from embedlab import EmbeddingDataError
from embedlab.geometry.spectrum import covariance_spectrum, effective_rank, power_law_slope
from embedlab.io.synthetic import random_rotation


def test_eigenvalues_match_numpy_covariance(rng):
    X = rng.normal(size=(500, 12)) * np.linspace(0.1, 3, 12)
    spectrum = covariance_spectrum(X)
    np.testing.assert_allclose(spectrum.eigenvalues, np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1], rtol=1e-10)
    assert spectrum.explained_variance[-1] == pytest.approx(1.0)
    assert (np.diff(spectrum.explained_variance) >= -1e-12).all()


def test_effective_rank_of_known_spectra():
    assert effective_rank(np.ones(7)) == pytest.approx(7.0)
    assert effective_rank(np.r_[5.0, np.zeros(9)]) == pytest.approx(1.0)
    s = np.array([3.0, 1.0])
    p = s / s.sum()
    assert effective_rank(s) == pytest.approx(np.exp(-(p * np.log(p)).sum()))


def test_effective_rank_of_a_subspace_is_its_dimension(rng):
    X = np.hstack([rng.normal(size=(4000, 6)), np.zeros((4000, 58))]) @ random_rotation(64, rng)
    assert covariance_spectrum(X).effective_rank == pytest.approx(6.0, rel=0.02)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_power_law_slope_recovered_from_data(rng, alpha):
    scales = np.arange(1, 65.0) ** (-alpha / 2)
    X = rng.normal(size=(20000, 64)) * scales
    assert covariance_spectrum(X).power_law_slope == pytest.approx(alpha, abs=0.08)


def test_power_law_slope_needs_three_usable_eigenvalues():
    assert np.isnan(power_law_slope(np.array([1.0, 0.0, 0.0, 0.0])))


def test_rotation_and_scale_invariance(rng):
    X = rng.normal(size=(800, 16)) * np.linspace(0.2, 2, 16)
    a = covariance_spectrum(X)
    b = covariance_spectrum(3.0 * X @ random_rotation(16, rng))
    assert b.effective_rank == pytest.approx(a.effective_rank, rel=1e-9)
    assert b.power_law_slope == pytest.approx(a.power_law_slope, rel=1e-9)
    np.testing.assert_allclose(b.explained_variance, a.explained_variance, rtol=1e-9)


def test_needs_two_rows():
    with pytest.raises(EmbeddingDataError, match="at least 2 rows"):
        covariance_spectrum(np.ones((1, 3)))
