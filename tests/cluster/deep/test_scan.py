from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.cluster.deep import SCAN
from embedlab.cluster.deep.scan import _class_balanced_weights, _scan_losses
from embedlab.cluster.metrics import hungarian_accuracy
from embedlab.neighbors import knn, unit_rows

from .conftest import gaussian_blobs

torch = pytest.importorskip("torch")

SMALL = {"n_neighbors": 10, "n_heads": 3, "epochs": 10, "learning_rate": 1e-2}


def test_heads_neighbours_and_history(fitted, blobs):
    model, _ = fitted["SCAN"]
    np.testing.assert_array_equal(model.neighbors_, knn(unit_rows(blobs[0]), 10, metric="cosine").indices)
    assert model.head_losses_.shape == (3,) and model.best_head_ == int(np.argmin(model.head_losses_))
    assert model.history_.shape == (10,) and model.history_[-1] < model.history_[0]
    assert model.selflabel_history_.shape == (0,)


def test_scan_loss_matches_its_definition():
    rng = np.random.default_rng(0)
    p, q = (rng.dirichlet(np.ones(4), size=6) for _ in range(2))
    expected = -np.log((p * q).sum(axis=1)).mean() + 5.0 * (p.mean(axis=0) * np.log(p.mean(axis=0))).sum()
    loss = _scan_losses(torch.from_numpy(np.log(p))[None], torch.from_numpy(np.log(q))[None], 5.0)
    assert loss.shape == (1,) and float(loss[0]) == pytest.approx(expected, rel=1e-10)


def test_mlp_head_and_self_labelling(blobs):
    X, truth = blobs
    params = {**SMALL, "head": "mlp", "hidden_dim": 64, "random_state": 0}
    before = SCAN(4, **params).fit(X)
    after = SCAN(4, **params, selflabel_epochs=3).fit(X)
    assert hungarian_accuracy(truth, before.labels_) >= 0.9 and hungarian_accuracy(truth, after.labels_) >= 0.9
    assert after.selflabel_history_.shape == (3,) and after.n_iter_ == 13
    assert after.confidence_.mean() > before.confidence_.mean()


def test_self_labelling_needs_confident_rows(blobs):
    model = SCAN(4, **{**SMALL, "epochs": 1}, selflabel_epochs=3, random_state=0).fit(blobs[0])
    assert model.confidence_.max() < 0.99 and model.selflabel_history_.shape == (0,)


def test_partial_and_semantic_pseudo_labels_keep_imbalanced_clusters_that_sinkhorn_splits():
    X, truth = gaussian_blobs([400, 200, 100, 50])
    params = {**SMALL, "entropy_weight": 2.0, "selflabel_epochs": 5, "random_state": 0}
    balanced = SCAN(4, **params, balanced="sinkhorn").fit(X)
    partial = SCAN(4, **params, balanced="partial").fit(X)
    semantic = SCAN(4, **params, balanced="semantic").fit(X)
    assert hungarian_accuracy(truth, partial.labels_) >= 0.95
    assert hungarian_accuracy(truth, semantic.labels_) >= 0.95
    assert hungarian_accuracy(truth, balanced.labels_) < 0.9
    assert np.bincount(balanced.labels_).max() < 300  # Sinkhorn's equal-size targets split the largest cluster


def test_class_balanced_weights():
    targets = np.array([0, 0, 0, 1, 1, 2])
    confident = np.array([True, True, True, True, False, False])
    np.testing.assert_allclose(_class_balanced_weights(targets, confident, 3), [4 / 3] * 3 + [4, 0, 0])


@pytest.mark.parametrize(
    ("params", "match"),
    [({"balanced": "even"}, "balanced"), ({"head": "deep"}, "head"), ({"metric": "ip"}, "metric")],
)
def test_bad_parameters(blobs, params, match):
    with pytest.raises(ConfigurationError, match=match):
        SCAN(4, **params).fit(blobs[0])
