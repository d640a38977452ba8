"""Intrinsic-dimension estimators against manifolds of known dimension and against scikit-dimension.

Documented tolerances (n = 4000 points, rotated into 384 dimensions): relative error at most 10% for d <= 4,
15% for d = 8 and 25% for d = 16; for d = 32 and 64 every kNN estimator is known to underestimate (too few
points per neighbourhood), so the estimates must lie in [0.5 d, 1.05 d] and grow with d. Hyperspheres S^d:
10% for d <= 5, 15% for d = 10; the swiss roll within 0.2 of 2; S^2 x swiss roll within 0.4 of 4. PCA
recovers linear subspaces exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.geometry.intrinsic_dim import (
    gride,
    gride_curve,
    local_id,
    mle_id,
    mle_shards,
    pca_dimensions,
    twonn,
    twonn_decimation,
    twonn_shards,
)
from embedlab.io.synthetic import make_product, make_sphere, make_subspace, make_swiss_roll
from embedlab.neighbors import knn

N = 4000
SUBSPACE_TOLERANCE = {2: 0.10, 4: 0.10, 8: 0.15, 16: 0.25}


def _estimates(X: np.ndarray) -> dict[str, float]:
    distances = knn(X, 64, metric="l2").distances
    return {
        "twonn": twonn(distances, n_boot=0).value,
        "mle": mle_id(distances, n_boot=0).value,
        "gride": gride(distances, n_boot=0).value,
    }


@pytest.fixture(scope="module")
def subspace_estimates() -> dict[int, dict[str, float]]:
    return {d: _estimates(make_subspace(N, d, 384, noise=1e-5, random_state=d)) for d in (2, 4, 8, 16, 32, 64)}


@pytest.mark.parametrize("d", [2, 4, 8, 16])
def test_subspaces_recovered_within_tolerance(subspace_estimates, d):
    for name, value in subspace_estimates[d].items():
        assert abs(value - d) / d <= SUBSPACE_TOLERANCE[d], (name, value)


def test_high_dimensional_subspaces_bounded_and_ordered(subspace_estimates):
    for name in ("twonn", "mle", "gride"):
        values = [subspace_estimates[d][name] for d in (2, 4, 8, 16, 32, 64)]
        assert values == sorted(values), name
        for d in (32, 64):
            assert 0.5 * d <= subspace_estimates[d][name] <= 1.05 * d, (name, d)


@pytest.mark.parametrize(("d", "tolerance"), [(2, 0.10), (5, 0.10), (10, 0.15)])
def test_hyperspheres(d, tolerance):
    for name, value in _estimates(make_sphere(N, d, 384, random_state=d)).items():
        assert abs(value - d) / d <= tolerance, (name, value)


def test_swiss_roll_and_a_product_manifold():
    for value in _estimates(make_swiss_roll(N, 384, random_state=0)).values():
        assert abs(value - 2) <= 0.2
    product = make_product([make_sphere(N, 2, 3, random_state=1), make_swiss_roll(N, 3, random_state=2) / 10], 384)
    for value in _estimates(product).values():
        assert abs(value - 4) <= 0.4


@pytest.mark.parametrize("d", [3, 12, 40])
def test_pca_recovers_linear_subspaces_exactly(d):
    X = make_subspace(2000, d, 384, noise=1e-5, random_state=d)
    result = pca_dimensions(X, (0.99,), n_boot=10)[0.99]
    assert d - 1 <= result.value <= d and result.ci_low <= result.value <= result.ci_high


def test_intervals_cover_and_are_reproducible():
    distances = knn(make_sphere(N, 4, 64, random_state=3), 64, metric="l2").distances
    for estimator in (twonn, mle_id, gride):
        a, b = estimator(distances, random_state=5), estimator(distances, random_state=5)
        assert a == b
        assert a.ci_low <= a.value <= a.ci_high and a.ci_high - a.ci_low < 0.5
        assert a.ci_low <= 4.3 and a.ci_high >= 3.7


def test_mle_scale_curve_and_gride_curve_cover_the_scales():
    distances = knn(make_sphere(2000, 3, 32, random_state=4), 64, metric="l2").distances
    assert set(mle_id(distances, n_boot=0).scale) == {5, 10, 20, 40}
    assert set(gride_curve(distances)) == {2, 4, 8, 16, 32, 64}


def test_decimation_reveals_small_scale_noise():
    X = make_subspace(N, 3, 64, noise=3e-3, random_state=7)
    full = twonn(knn(X, 2, metric="l2").distances, n_boot=0).value
    curve = twonn_decimation(X, random_state=0)
    assert full > 4.0  # noise inflates the estimate at full density
    assert curve[0.125] < full - 1.0  # and coarser scales bring it back towards 3


def test_gride_at_the_smallest_scale_is_twonn_mle():
    distances = knn(make_sphere(1000, 3, 16, random_state=2), 2, metric="l2").distances
    mu = distances[:, 1] / distances[:, 0]
    mu = mu[mu > 1]
    assert gride_curve(distances)[2] == pytest.approx(mu.size / np.log(mu).sum(), rel=1e-9)


def test_local_id_is_the_levina_bickel_formula():
    distances = np.array([[1.0, 2.0, 4.0], [1.0, 1.0, 2.0], [2.0, 2.0, 2.0]])
    expected = [2 / (np.log(4) + np.log(2)), 2 / (2 * np.log(2)), np.inf]
    np.testing.assert_allclose(local_id(distances, 3), expected)


def test_agreement_with_scikit_dimension():
    skdim = pytest.importorskip("skdim")
    X = make_subspace(2000, 8, 384, noise=1e-4, random_state=11).astype(np.float64)
    distances = knn(X, 20, metric="l2", method="exact").distances
    ours_twonn = twonn(distances, discard_fraction=0.1, n_boot=0).value
    ours_mle = mle_id(distances, 20, n_boot=0).value
    ref_twonn = skdim.id.TwoNN(discard_fraction=0.1).fit(X).dimension_
    ref_mle = skdim.id.MLE().fit(X, n_neighbors=20, comb="mle").dimension_
    assert ours_twonn == pytest.approx(ref_twonn, rel=0.03)
    assert ours_mle == pytest.approx(ref_mle, rel=0.03)


def test_zero_distances_and_bad_parameters_are_rejected():
    with pytest.raises(EmbeddingDataError, match="duplicate at distance 0"):
        twonn(np.array([[0.0, 1.0], [1.0, 2.0], [1.0, 3.0]]))
    with pytest.raises(ConfigurationError, match="discard_fraction"):
        twonn(np.ones((5, 2)), discard_fraction=1.0)
    with pytest.raises(ConfigurationError, match="at least 20 neighbours"):
        mle_id(np.ones((5, 10)) + np.arange(10), 20)


def test_twonn_on_shards_is_twonn_of_the_same_queries_in_memory(tmp_path):
    from embedlab.io.shards import open_shards

    X = make_subspace(12_000, 4, 16, random_state=2).astype(np.float32)
    X[11_000:11_300] = X[:300]  # duplicates: the distinct neighbours are used
    path = tmp_path / "x.npy"
    np.save(path, X)
    sharded = open_shards(path, shard_rows=2500)
    estimate = twonn_shards(sharded, n_queries=3000, random_state=5)
    assert estimate.value == pytest.approx(4.0, abs=0.4) and estimate.ci_low < estimate.value < estimate.ci_high
    positions = np.sort(np.random.default_rng(5).choice(len(X), 3000, replace=False))
    Q, rows = X[positions].astype(np.float64), X.astype(np.float64)
    D = np.sqrt(np.maximum((Q**2).sum(1)[:, None] + (rows**2).sum(1) - 2 * Q @ rows.T, 0))
    D[np.arange(3000), positions] = np.inf
    D[D < 1e-6] = np.inf  # copies of the query
    r1 = D.min(axis=1)
    r2 = np.where(D > r1[:, None] * (1 + 1e-6), D, np.inf).min(axis=1)  # the first distinct distance beyond r1
    assert twonn(np.c_[r1, r2]).value == pytest.approx(estimate.value, rel=2e-3)
    with pytest.raises(ConfigurationError, match="metric must be one of"):
        twonn_shards(sharded, metric="ip")


def test_mle_on_shards_is_the_mle_of_the_same_queries_in_memory_copies_skipped(tmp_path):
    from embedlab.io.shards import open_shards

    X = make_subspace(12_000, 4, 16, random_state=3).astype(np.float32)
    X[11_000:11_300] = X[:300]  # copies: their zero distances are skipped
    path = tmp_path / "x.npy"
    np.save(path, X)
    sharded = open_shards(path, shard_rows=2500)
    estimate = mle_shards(sharded, k=10, scales=(5, 10), n_queries=2000, random_state=4)
    assert estimate.value == pytest.approx(4.0, abs=0.4) and estimate.ci_low < estimate.value < estimate.ci_high
    assert set(estimate.scale) == {5, 10}
    positions = np.sort(np.random.default_rng(4).choice(len(X), 2000, replace=False))
    Q, rows = X[positions].astype(np.float64), X.astype(np.float64)
    D = np.sqrt(np.maximum((Q**2).sum(1)[:, None] + (rows**2).sum(1) - 2 * Q @ rows.T, 0))
    D[np.arange(2000), positions] = np.inf
    D[D < 1e-6] = np.inf  # copies of the query
    nearest = np.sort(D, axis=1)[:, :10]
    expected = mle_id(nearest, 10, scales=(5, 10))
    assert expected.n == estimate.n == 2000
    assert estimate.value == pytest.approx(expected.value, rel=1e-3)
    with pytest.raises(ConfigurationError, match="k must be"):
        mle_shards(sharded, k=1)
