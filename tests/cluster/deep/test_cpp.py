from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.cluster.deep import CPP
from embedlab.cluster.deep.cpp import coding_rate, compressed_coding_rate, membership

torch = pytest.importorskip("torch")


def _unit(rng, shape):
    Z = rng.normal(size=shape)
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def test_coding_rates_match_their_definitions():
    rng = np.random.default_rng(0)
    Z, Pi = _unit(rng, (12, 5)), rng.uniform(size=(12, 12))
    m, p, eps = 12, 5, 0.1
    expected = 0.5 * np.linalg.slogdet(np.eye(p) + p / (m * eps) * Z.T @ Z)[1]
    compressed = sum(
        Pi[i].sum() / (2 * m) * np.linalg.slogdet(np.eye(p) + p / (Pi[i].sum() * eps) * (Z.T * Pi[i]) @ Z)[1]
        for i in range(m)
    )
    assert coding_rate(torch.from_numpy(Z), eps).item() == pytest.approx(expected, rel=1e-10)
    assert compressed_coding_rate(torch.from_numpy(Z), torch.from_numpy(Pi), eps).item() == pytest.approx(
        compressed, rel=1e-8
    )


def test_rate_reduction_is_largest_for_orthogonal_groups():
    """Two groups on orthogonal lines reduce the rate more than the same groups on one line (Yu et al. 2020)."""
    rng = np.random.default_rng(1)
    signs = rng.choice([-1.0, 1.0], size=20)
    orthogonal = np.zeros((40, 4))
    orthogonal[:20, 0], orthogonal[20:, 1] = signs, signs
    collinear = np.zeros((40, 4))
    collinear[:, 0] = np.r_[signs, signs]
    Pi = torch.from_numpy(np.kron(np.eye(2), np.ones((20, 20))) / 20)  # rows sum to 1, as membership() gives

    def reduction(Z):
        Z = torch.from_numpy(Z)
        return (coding_rate(Z, 0.1) - compressed_coding_rate(Z, Pi, 0.1)).item()

    assert reduction(orthogonal) > reduction(collinear) + 0.5


def test_membership_is_doubly_stochastic_and_groups_aligned_rows():
    rng = np.random.default_rng(2)
    C = torch.from_numpy(np.repeat(np.eye(3, 8), 10, axis=0) + 0.05 * rng.normal(size=(30, 8)))
    C = torch.nn.functional.normalize(C, dim=1)
    Pi = membership(C, 0.05, 50).numpy()
    np.testing.assert_allclose(Pi.sum(axis=0), 1.0, atol=1e-3)
    np.testing.assert_allclose(Pi.sum(axis=1), 1.0, atol=1e-3)
    same = np.kron(np.eye(3), np.ones((10, 10))).astype(bool)
    assert Pi[same].sum() / Pi.sum() > 0.99


def test_clusters_are_near_orthogonal_subspaces(fitted, blobs):
    model, _ = fitted["CPP"]
    assert len(model.subspaces_) == 4 and all(basis.shape[1] == 16 for basis in model.subspaces_)
    features = model._features(blobs[0])
    means = np.stack([features[model.labels_ == c].mean(axis=0) for c in range(4)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    cosines = np.abs(means @ means.T)[~np.eye(4, dtype=bool)]
    assert cosines.max() < 0.5
    assert model.history_.shape == (20, 3) and model.history_[-1, 2] < model.history_[0, 2]


@pytest.mark.parametrize(("params", "match"), [({"eta": 0}, "eta"), ({"spectral_sample": 1}, "spectral_sample")])
def test_bad_parameters(blobs, params, match):
    with pytest.raises(ConfigurationError, match=match):
        CPP(4, **params).fit(blobs[0])
