"""DANCo against its closed forms and manifolds of known dimension.

Tolerances: the rho divergence equals numerical integration to 1e-8; on 2,000 points DANCo recovers cubes
and spheres of dimension 2-24 within 10%, where TwoNN reads a 24-cube about 20% low.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from embedlab import EmbeddingDataError
from embedlab.geometry import danco, danco_statistics, twonn
from embedlab.geometry.danco import _kl_dimension, _kl_von_mises
from embedlab.io.synthetic import make_sphere, make_subspace
from embedlab.neighbors import knn


@pytest.mark.parametrize(("d1", "d2"), [(3.0, 5.0), (10.0, 8.0), (20.0, 25.0), (7.0, 7.0)])
def test_rho_divergence_is_the_integral(d1, d2):
    k = 10

    def density(r: float, d: float) -> float:
        return k * d * r ** (d - 1) * (1 - r**d) ** (k - 1)

    integral = quad(lambda r: density(r, d1) * np.log(density(r, d1) / density(r, d2)), 0, 1, limit=200)[0]
    assert _kl_dimension(d1, d2, k) == pytest.approx(integral, abs=1e-8)


def test_von_mises_divergence_is_zero_on_itself_and_positive_elsewhere():
    assert _kl_von_mises(1.2, 20.0, 1.2, 20.0) == pytest.approx(0.0, abs=1e-12)
    assert _kl_von_mises(1.2, 20.0, 1.3, 25.0) > 0.0
    assert np.isfinite(_kl_von_mises(1.2, 900.0, 1.25, 800.0))  # no overflow at high concentration


def test_statistics_of_a_ball_read_its_dimension():
    rng = np.random.default_rng(0)
    ball = rng.normal(size=(4000, 3))
    ball *= rng.uniform(size=(4000, 1)) ** (1 / 3) / np.linalg.norm(ball, axis=1, keepdims=True)
    stats = danco_statistics(ball, 10)
    assert stats.dimension == pytest.approx(3.0, rel=0.08)
    assert 0.0 < stats.angle_location < np.pi and stats.angle_concentration > 0


@pytest.mark.parametrize(
    ("X", "d"),
    [
        (make_subspace(2000, 2, 16, random_state=0), 2),
        (make_sphere(2000, 6, 16, random_state=1), 6),
        (make_subspace(2000, 24, 32, random_state=2), 24),
    ],
    ids=["plane", "6-sphere", "24-cube"],
)
def test_danco_recovers_known_dimensions(X, d):
    value, divergences = danco(X, random_state=0)
    assert abs(value - d) / d <= 0.10
    assert min(divergences, key=divergences.get) == pytest.approx(value, abs=1.0)
    if d == 24:
        assert twonn(knn(X, 2, metric="l2").distances, n_boot=0).value < 0.85 * d
    assert danco(X, random_state=0)[0] == value


def test_danco_refuses_duplicates_and_tiny_sets():
    with pytest.raises(EmbeddingDataError, match="duplicate"):
        danco(np.vstack([np.eye(20), np.eye(20)]))
    with pytest.raises(EmbeddingDataError, match="at least 12 rows"):
        danco(np.eye(5))
