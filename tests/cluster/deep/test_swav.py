from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from embedlab import ConfigurationError
from embedlab.cluster.deep import SwAV
from embedlab.cluster.deep.swav import _batch_neighbours
from embedlab.cluster.metrics import hungarian_accuracy

from .conftest import gaussian_blobs

torch = pytest.importorskip("torch")

SMALL = {"n_neighbors": 10, "hidden_dim": 64, "projection_dim": 32, "epochs": 10, "batch_size": 64}


@pytest.fixture(scope="module")
def skewed() -> tuple[np.ndarray, np.ndarray]:
    return gaussian_blobs([400, 200, 100, 50])


def test_prototypes_are_unit_rows_and_frozen_in_the_first_epoch(blobs):
    X, _ = blobs
    one_epoch = [SwAV(4, **{**SMALL, "epochs": 1}, learning_rate=rate, random_state=0).fit(X) for rate in (1e-3, 1e-1)]
    weights = [model.network_["prototypes"].weight.detach().numpy() for model in one_epoch]
    np.testing.assert_allclose(np.linalg.norm(weights[0], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(weights[0], weights[1])  # only the projection moved
    projections = [model.network_["projection"][0].weight.detach().numpy() for model in one_epoch]
    assert not np.allclose(projections[0], projections[1])


def test_random_prototypes_are_unit_vectors_too(blobs):
    model = SwAV(4, **{**SMALL, "epochs": 2}, prototype_init="random", random_state=0).fit(blobs[0])
    np.testing.assert_allclose(np.linalg.norm(model.network_["prototypes"].weight.detach().numpy(), axis=1), 1.0)


@pytest.mark.parametrize("codes", ["sinkhorn", "p2ot", "sp2ot"])
def test_every_code_recovers_even_blobs(blobs, codes):
    X, truth = blobs
    model = SwAV(4, **SMALL, learning_rate=1e-2, codes=codes, random_state=0).fit(X)
    assert hungarian_accuracy(truth, model.labels_) >= 0.99
    assert model.history_[-1] < model.history_[0]


def test_partial_codes_keep_imbalanced_clusters_that_balanced_codes_split(skewed):
    """Per-batch equal-size codes spread the 400-row blob over two prototypes; P2OT's relaxed marginal and SP2OT's
    neighbour pull keep the four blobs whole (seeds 0-2 measured: SwAV 1 of 3 recovered, P2OT and SP2OT 3 of 3)."""
    X, truth = skewed
    accuracy = {
        codes: hungarian_accuracy(
            truth, SwAV(4, **SMALL, learning_rate=1e-2, codes=codes, random_state=0).fit(X).labels_
        )
        for codes in ("sinkhorn", "p2ot", "sp2ot")
    }
    assert accuracy["sinkhorn"] < 0.9
    assert accuracy["p2ot"] >= 0.99 and accuracy["sp2ot"] >= 0.99


def test_codes_of_a_batch(blobs):
    X, _ = blobs
    model = SwAV(4, **{**SMALL, "epochs": 1}, random_state=0).fit(X)
    x = torch.from_numpy(model._check_new(X[:64]))
    scores = model._scores(x).detach()
    balanced = model._codes(scores, x, epoch=0)
    np.testing.assert_allclose(balanced.sum(dim=1).numpy(), 1.0, atol=1e-5)  # SwAV: each row a distribution
    for codes in ("p2ot", "sp2ot"):
        model.set_params(codes=codes, epochs=10)
        first, last = model._codes(scores, x, epoch=0), model._codes(scores, x, epoch=9)
        assert 0.05 * 64 <= float(first.sum()) <= 0.1 * 64 + 1e-6  # P2OT's curriculum: up to 10% of the mass first
        assert float(last.sum()) == pytest.approx(64, rel=1e-2)
        assert (first.sum(dim=1) <= 1 + 1e-5).all()


def test_batch_neighbours_are_the_nearest_other_rows():
    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.7, 0.7]])
    found = _batch_neighbours(x, 1)
    assert found[:, 0].tolist() == [1, 0, 3, 2, 1] or found[:, 0].tolist() == [1, 0, 3, 2, 3]
    assert _batch_neighbours(x[:2], 10).shape == (2, 1)


def test_a_last_batch_of_one_row_is_coded(blobs):
    X, _ = blobs
    model = SwAV(4, **{**SMALL, "epochs": 2, "batch_size": 599}, codes="sp2ot", random_state=0).fit(X[:600])
    assert np.isfinite(model.history_).all()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"codes": "ot"}, "codes"),
        ({"prototype_init": "zeros"}, "prototype_init"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"semantic_weight": -1.0}, "semantic_weight"),
        ({"temperature": 0}, "temperature"),
        ({"semantic_neighbors": 0}, "semantic_neighbors"),
    ],
)
def test_bad_parameters(blobs, params, match):
    with pytest.raises(ConfigurationError, match=match):
        clone(SwAV(4, **SMALL)).set_params(**params).fit(blobs[0])
