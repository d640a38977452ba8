"""The similarity scores against brute-force oracles, their invariances and their input checks."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import EmbeddingSet
from embedlab.compare import (
    cknna,
    linear_cka,
    mutual_knn_alignment,
    procrustes_distance,
    rbf_cka,
    retrieval_overlap,
    similarity_rank_correlation,
    svcca,
)
from embedlab.compare._scores import _permuted_neighbours
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.neighbors import knn

SIMILARITIES = [
    linear_cka,
    rbf_cka,
    mutual_knn_alignment,
    cknna,
    retrieval_overlap,
    svcca,
    similarity_rank_correlation,
]


def _rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    return np.linalg.qr(rng.normal(size=(d, d)))[0]


def _cka_oracle(X: np.ndarray, Y: np.ndarray, debiased: bool) -> float:
    """CKA from explicit n x n linear Gram matrices of the uncentred rows."""
    K, L = X @ X.T, Y @ Y.T
    n = K.shape[0]

    def hsic(K: np.ndarray, L: np.ndarray) -> float:
        if not debiased:
            H = np.eye(n) - 1.0 / n
            return float(np.trace(K @ H @ L @ H)) / (n - 1) ** 2
        Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
        one = np.ones(n)
        value = np.trace(Kt @ Lt) + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
        return float(value - 2.0 / (n - 2) * (one @ Kt @ Lt @ one)) / (n * (n - 3))

    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


@pytest.fixture
def paired(rng):
    """A set with a few dominant directions and a rotated, scaled copy of higher dimension (cosine geometry kept)."""
    X = (rng.normal(size=(150, 12)) * np.linspace(3.0, 0.5, 12)).astype(np.float32)
    embed = _rotation(rng, 20)[:12]  # orthonormal rows: an isometry from 12 into 20 dimensions
    return X, (2.5 * X @ embed).astype(np.float32)


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_matches_the_gram_matrix_oracle(rng, debiased):
    X = rng.normal(size=(40, 5)) + 3.0  # an offset: the fast form centres, the oracle's unbiased HSIC does not
    Y = np.tanh(X @ rng.normal(size=(5, 7))) + 0.3 * rng.normal(size=(40, 7))
    X32, Y32 = X.astype(np.float32).astype(np.float64), Y.astype(np.float32).astype(np.float64)
    assert linear_cka(X, Y, debiased=debiased) == pytest.approx(_cka_oracle(X32, Y32, debiased), rel=1e-6)


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_is_invariant_to_rotation_and_isotropic_scaling_only(rng, debiased):
    X = rng.normal(size=(300, 10))
    Y = np.tanh(X @ rng.normal(size=(10, 10)))
    base = linear_cka(X, Y, debiased=debiased)
    moved = linear_cka(0.1 * X @ _rotation(rng, 10), 7.0 * Y @ _rotation(rng, 10), debiased=debiased)
    assert moved == pytest.approx(base, abs=1e-6)
    anisotropic = np.diag(np.geomspace(20.0, 0.05, 10))  # invertible, but stretches one axis 400 times another
    assert linear_cka(X, X, debiased=debiased) - linear_cka(X, X @ anisotropic, debiased=debiased) > 0.05


def test_every_similarity_is_near_its_maximum_for_an_isometric_copy_of_another_dimension(paired):
    X, Y = paired
    for score in SIMILARITIES:
        assert score(X, Y) == pytest.approx(1.0, abs=1e-3), score.__name__
    assert procrustes_distance(X, Y) == pytest.approx(0.0, abs=2e-3)


def test_scores_of_independent_sets_are_low(rng):
    X, Y = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    assert linear_cka(X, Y, debiased=True) == pytest.approx(0.0, abs=0.02)
    assert linear_cka(X, Y) < 0.1
    assert rbf_cka(X, Y) < 0.1
    assert mutual_knn_alignment(X, Y, k=10) < 0.1
    assert retrieval_overlap(X, Y, k=10) < 0.05
    assert abs(cknna(X, Y, k=10)) < 0.1
    assert abs(similarity_rank_correlation(X, Y, n_pairs=20_000)) < 0.05
    assert procrustes_distance(X, Y) > 0.8
    assert svcca(X, Y) < 0.35  # CCA overfits 16 + 16 directions on 400 rows: judged against the null


def test_svcca_ignores_invertible_maps_within_the_kept_subspace(rng):
    X = rng.normal(size=(500, 8))
    mixed = X @ (np.eye(8) + 0.5 * rng.normal(size=(8, 8)))
    assert svcca(X, mixed, keep=1.0) == pytest.approx(1.0, abs=1e-6)


def test_permuted_neighbour_lists_equal_a_fresh_search(rng):
    Y = rng.normal(size=(200, 6)).astype(np.float32)
    perm = rng.permutation(200)
    fresh = knn(Y[perm], 5, metric="cosine").indices
    reused = _permuted_neighbours(knn(Y, 5, metric="cosine").indices, perm)
    np.testing.assert_array_equal(np.sort(reused, axis=1), np.sort(fresh, axis=1))


def test_sets_are_paired_by_id_not_by_position(paired):
    X, Y = paired
    ids = [f"item-{i}" for i in range(len(X))]
    order = np.random.default_rng(0).permutation(len(X))
    first = EmbeddingSet(X, ids)
    second = EmbeddingSet(Y[order], [ids[i] for i in order])
    assert linear_cka(first, second) == pytest.approx(1.0, abs=1e-5)
    assert mutual_knn_alignment(first, second) == pytest.approx(1.0)


def test_bad_inputs_get_clear_errors(rng):
    X = rng.normal(size=(30, 4))
    with pytest.raises(EmbeddingDataError, match="same number of rows"):
        linear_cka(X, X[:20])
    with pytest.raises(EmbeddingDataError, match="share no id"):
        linear_cka(EmbeddingSet(X, [f"a{i}" for i in range(30)]), EmbeddingSet(X, [f"b{i}" for i in range(30)]))
    with pytest.raises(EmbeddingDataError, match="at least 4"):
        svcca(X[:3], X[:3])
    broken = X.copy()
    broken[2, 1] = np.nan
    with pytest.raises(EmbeddingDataError, match="NaN"):
        procrustes_distance(X, broken)
    with pytest.raises(ConfigurationError, match="k=30"):
        mutual_knn_alignment(X, X, k=30)
    with pytest.raises(EmbeddingDataError, match="no variance"):
        linear_cka(X, np.ones((30, 4)))
