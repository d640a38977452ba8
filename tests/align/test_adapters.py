from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg

from embedlab.align import (
    ADAPTER_TYPES,
    IdentityAdapter,
    LowRankAdapter,
    MLPAdapter,
    ProcrustesAdapter,
    RidgeAdapter,
    SubspaceAdapter,
    adapter_from_dict,
    load_adapter,
)
from embedlab.exceptions import ConfigurationError, EmbeddingDataError


def _rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    return np.linalg.qr(rng.normal(size=(d, d)))[0]


def _fast(method: str) -> dict:
    return {"epochs": 3, "hidden_units": 16, "random_state": 0} if method == "mlp" else {}


def test_procrustes_recovers_a_rotation_on_noiseless_data(rng):
    X = rng.normal(size=(500, 24)).astype(np.float32)
    R = _rotation(rng, 24)
    Y = X @ R + 0.5
    adapter = ProcrustesAdapter().fit(X, Y)
    assert np.abs(adapter.rotation_ - R).max() < 1e-5
    assert np.abs(adapter.transform(X) - Y).max() < 1e-5
    reference, _ = scipy.linalg.orthogonal_procrustes(X - X.mean(0), Y - Y.mean(0))
    assert np.abs(adapter.rotation_ - reference).max() < 1e-5
    assert adapter.scale_ == pytest.approx(1.0, abs=1e-6)


def test_procrustes_with_scale_recovers_rotation_and_scaling(rng):
    X = rng.normal(size=(500, 16))
    R = _rotation(rng, 16)
    Y = 2.5 * X @ R - 1.0
    unscaled = ProcrustesAdapter().fit(X, Y)
    scaled = ProcrustesAdapter(scale=True).fit(X, Y)
    assert scaled.scale_ == pytest.approx(2.5, rel=1e-5)
    assert np.abs(scaled.transform(X) - Y).max() < 1e-4
    assert np.abs(unscaled.transform(X) - Y).max() > 1.0


@pytest.mark.parametrize(("d_in", "d_out"), [(48, 32), (32, 48)])
def test_procrustes_between_different_dimensions_is_semi_orthogonal(rng, d_in, d_out):
    X = rng.normal(size=(400, d_in))
    basis = np.linalg.qr(rng.normal(size=(max(d_in, d_out), min(d_in, d_out))))[0]
    Y = X @ basis if d_in > d_out else X @ basis.T
    adapter = ProcrustesAdapter().fit(X, Y)
    R = adapter.rotation_.astype(np.float64)
    small = R.T @ R if d_in > d_out else R @ R.T
    assert np.abs(small - np.eye(min(d_in, d_out))).max() < 1e-5
    assert adapter.transform(X).shape == (400, d_out)
    if d_in < d_out:  # an isometric embedding of the smaller space is recovered exactly
        assert np.abs(adapter.transform(X) - Y).max() < 1e-4


def test_ridge_recovers_an_affine_map(rng):
    X = rng.normal(size=(400, 12))
    A, b = rng.normal(size=(12, 20)), rng.normal(size=20)
    adapter = RidgeAdapter(alpha=1e-8).fit(X, X @ A + b)
    assert np.abs(adapter.weight_ - A).max() < 1e-3
    assert np.abs(adapter.bias_ - b).max() < 1e-3


def test_low_rank_recovers_a_rank_r_map_that_rank_r_minus_1_misses(rng):
    X = rng.normal(size=(600, 20))
    A = rng.normal(size=(20, 4)) @ rng.normal(size=(4, 20))
    Y = X @ A + 0.3
    exact = LowRankAdapter(rank=4, alpha=1e-8).fit(X, Y)
    short = LowRankAdapter(rank=3, alpha=1e-8).fit(X, Y)
    assert np.linalg.matrix_rank(exact.weight_, tol=1e-3) == 4
    exact_error = np.abs(exact.transform(X) - Y).max()
    short_error = np.abs(short.transform(X) - Y).max()
    assert exact_error < 1e-3
    assert short_error > 100 * exact_error


def test_mlp_fits_a_nonlinear_map_better_than_ridge_on_held_out_rows(rng, one_torch_thread):
    X = rng.normal(size=(2500, 8)).astype(np.float32)
    A, B = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    Y = (X @ A + 2.0 * np.tanh(X @ B)).astype(np.float32)
    train, test = slice(0, 2000), slice(2000, None)
    ridge = RidgeAdapter().fit(X[train], Y[train])
    network = MLPAdapter(hidden_units=64, epochs=30, learning_rate=3e-3, random_state=0).fit(X[train], Y[train])
    ridge_error = np.mean((ridge.transform(X[test]) - Y[test]) ** 2)
    mlp_error = np.mean((network.transform(X[test]) - Y[test]) ** 2)
    assert mlp_error < 0.5 * ridge_error


def test_mlp_is_reproducible_with_a_seed(rng, one_torch_thread):
    X, Y = rng.normal(size=(100, 6)), rng.normal(size=(100, 5))
    first = MLPAdapter(**_fast("mlp")).fit(X, Y)
    second = MLPAdapter(**_fast("mlp")).fit(X, Y)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))


def test_mlp_without_torch_names_the_extra(rng, monkeypatch):
    import embedlab._optional

    def missing(name, *args, **kwargs):
        raise ImportError(name)

    monkeypatch.setattr(embedlab._optional.importlib, "import_module", missing)
    with pytest.raises(ImportError, match=r'pip install "embedlab\[deep\]"'):
        MLPAdapter().fit(rng.normal(size=(20, 4)), rng.normal(size=(20, 4)))


@pytest.mark.parametrize("method", list(ADAPTER_TYPES))
def test_serialisation_round_trip_gives_identical_transforms(rng, tmp_path, method, request):
    if method == "mlp":
        request.getfixturevalue("one_torch_thread")
    d_out = 32 if method == "identity" else 48
    X, Y = rng.normal(size=(200, 32)), rng.normal(size=(200, d_out))
    params = {"rank": 8} if method in ("low-rank", "subspace") else _fast(method)
    adapter = ADAPTER_TYPES[method](**params).fit(X, Y)
    path = adapter.save(tmp_path / "adapter.json")
    loaded = load_adapter(path)
    assert type(loaded) is type(adapter)
    assert loaded.get_params() == {**adapter.get_params(), **({"random_state": None} if method == "mlp" else {})}
    np.testing.assert_array_equal(loaded.transform(X), adapter.transform(X))
    assert adapter_from_dict(json.loads(json.dumps(adapter.to_dict()))).n_features_out_ == d_out


def test_identity_maps_rows_unchanged_and_needs_equal_dimensions(rng):
    X = rng.normal(size=(20, 6)).astype(np.float32)
    np.testing.assert_array_equal(IdentityAdapter().fit(X, 3 * X).transform(X), X)
    with pytest.raises(EmbeddingDataError, match="equal dimension, got 6 and 4"):
        IdentityAdapter().fit(X, X[:, :4])


def test_transform_rejects_a_wrong_dimension_naming_the_input(rng):
    adapter = RidgeAdapter().fit(rng.normal(size=(50, 6)), rng.normal(size=(50, 4)))
    with pytest.raises(EmbeddingDataError, match="queries.npy has 5 features, but RidgeAdapter is expecting 6"):
        adapter.transform(rng.normal(size=(3, 5)), name="queries.npy")


def test_fit_rejects_nan_rows_and_mismatched_lengths(rng):
    X = rng.normal(size=(30, 4))
    X[3, 1] = np.nan
    with pytest.raises(EmbeddingDataError, match="X: 1 of 30 rows have NaN or Inf values"):
        RidgeAdapter().fit(X, rng.normal(size=(30, 4)))
    with pytest.raises(EmbeddingDataError, match="X has 30 rows and y 29"):
        RidgeAdapter().fit(rng.normal(size=(30, 4)), rng.normal(size=(29, 4)))


@pytest.mark.parametrize(
    ("adapter", "message"),
    [
        (RidgeAdapter(alpha=0.0), "alpha must be positive, got 0.0"),
        (LowRankAdapter(rank=5), r"rank must be an integer between 1 and 4 \(min\(d_in, d_out\)\), got 5"),
        (SubspaceAdapter(rank=5), r"rank must be an integer between 1 and 4 \(min\(d_in, d_out\)\), got 5"),
        (SubspaceAdapter(variance=1.5), "variance must be"),
    ],
)
def test_bad_hyper_parameters_are_configuration_errors(rng, adapter, message):
    with pytest.raises(ConfigurationError, match=message):
        adapter.fit(rng.normal(size=(30, 4)), rng.normal(size=(30, 6)))


def test_unfit_or_bad_documents_are_refused(rng, tmp_path):
    document = RidgeAdapter().fit(rng.normal(size=(20, 3)), rng.normal(size=(20, 3))).to_dict()
    with pytest.raises(EmbeddingDataError, match="has format 99"):
        adapter_from_dict({**document, "format": 99})
    with pytest.raises(EmbeddingDataError, match="unknown adapter method 'magic'"):
        adapter_from_dict({**document, "method": "magic"})
    with pytest.raises(EmbeddingDataError, match="says 3 -> 5 dimensions"):
        adapter_from_dict({**document, "n_features_out": 5})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(EmbeddingDataError, match="broken.json is not a readable adapter"):
        load_adapter(broken)
    other = tmp_path / "other.json"
    other.write_text('{"kind": "codec"}')
    with pytest.raises(EmbeddingDataError, match="other.json: not an embedlab adapter document"):
        load_adapter(other)


def test_the_shared_subspace_has_the_canonical_correlations_of_a_reference_cca(rng):
    from sklearn.cross_decomposition import CCA

    shared = rng.normal(size=(2000, 2))
    X = np.c_[shared, rng.normal(size=(2000, 4))] @ rng.normal(size=(6, 6))
    Y = np.c_[shared @ rng.normal(size=(2, 2)) + 0.5 * rng.normal(size=(2000, 2)), rng.normal(size=(2000, 3))]
    adapter = SubspaceAdapter(rank=3, variance=1.0, alpha=1e-10).fit(X, Y)
    u, v = CCA(n_components=3, max_iter=5000, tol=1e-10).fit(X, Y).transform(X, Y)
    reference = [np.corrcoef(u[:, i], v[:, i])[0, 1] for i in range(3)]
    np.testing.assert_allclose(adapter.canonical_correlations_[:3], reference, atol=1e-4)
    assert adapter.n_components_ == 3


def test_at_full_rank_the_subspace_map_is_least_squares(rng):
    X, A = rng.normal(size=(300, 5)), rng.normal(size=(5, 4))
    Y = X @ A + 0.1 * rng.normal(size=(300, 4)) + 1.0
    subspace = SubspaceAdapter(rank=4, variance=1.0, alpha=1e-10).fit(X, Y)
    ridge = RidgeAdapter(alpha=1e-10).fit(X, Y)
    np.testing.assert_allclose(subspace.weight_, ridge.weight_, atol=1e-4)
    np.testing.assert_allclose(subspace.bias_, ridge.bias_, atol=1e-4)


def test_with_few_pairs_the_shared_subspace_maps_better_than_the_full_space(rng):
    # 4 shared directions under 60 dimensions of noise on each side, 120 pairs: a full map fits the noise
    shared = rng.normal(size=(1120, 4))
    X = np.c_[3 * shared, rng.normal(size=(1120, 60))] @ np.linalg.qr(rng.normal(size=(64, 64)))[0]
    target = shared @ rng.normal(size=(4, 64))
    Y = target + rng.normal(size=(1120, 64))
    fit, held = slice(0, 120), slice(120, None)
    subspace = SubspaceAdapter(rank=4).fit(X[fit], Y[fit])
    ridge = RidgeAdapter().fit(X[fit], Y[fit])
    assert subspace.score(X[held], target[held]) > ridge.score(X[held], target[held]) + 0.1  # 0.97 against 0.83
