from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.cluster.deep import DEC, IDEC
from embedlab.cluster.deep.dec import _target_distribution
from embedlab.cluster.metrics import hungarian_accuracy

torch = pytest.importorskip("torch")


SMALL = {"hidden_dims": (64, 64), "latent_dim": 4, "pretrain_epochs": 10, "batch_size": 128, "n_init": 3}


@pytest.fixture(scope="module")
def on_sheet(sheet_blobs):
    """DEC and IDEC fitted on raw vectors whose clusters lie on a curved 2-D sheet in 48 dimensions."""
    X, _ = sheet_blobs
    return {cls: cls(4, **SMALL, epochs=3, update_interval=5, random_state=0).fit(X) for cls in (DEC, IDEC)}


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_clusters_raw_vectors_on_a_curved_sheet(on_sheet, sheet_blobs, cls):
    model = on_sheet[cls]
    assert hungarian_accuracy(sheet_blobs[1], model.labels_) >= 0.9
    assert model.cluster_centers_.shape == (4, 4) and model.cluster_centers_.dtype == np.float32
    assert model.pretrain_history_.shape == (10,) and model.pretrain_history_[-1] < model.pretrain_history_[0]


def test_soft_assignment_is_the_student_t_kernel(on_sheet, sheet_blobs):
    model = on_sheet[DEC]
    X = sheet_blobs[0][:40]
    with torch.no_grad():
        codes = model.autoencoder_["encoder"](torch.from_numpy(X)).numpy().astype(np.float64)
    kernel = 1.0 / (1.0 + ((codes[:, None, :] - model.cluster_centers_[None]) ** 2).sum(axis=2))
    np.testing.assert_allclose(model.predict_proba(X), kernel / kernel.sum(axis=1, keepdims=True), atol=1e-5)


def test_target_distribution_sharpens_and_normalises():
    q = np.array([[0.6, 0.4], [0.5, 0.5], [0.2, 0.8]])
    p = _target_distribution(q)
    weight = q**2 / q.sum(axis=0)
    np.testing.assert_allclose(p, weight / weight.sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert p[0, 0] > q[0, 0] and p[2, 1] > q[2, 1]


def test_only_idec_keeps_training_the_decoder(sheet_blobs):
    X = sheet_blobs[0]

    def weights(model, part):
        return [value.detach().clone() for value in model.autoencoder_[part].parameters()]

    pretrained = DEC(4, **SMALL, epochs=0, random_state=0).fit(X)
    assert pretrained.n_iter_ == 0 and pretrained.history_.shape == (0,)
    tuned = {cls: cls(4, **SMALL, epochs=1, update_interval=1, tol=1e-9, random_state=0).fit(X) for cls in (DEC, IDEC)}
    for cls, model in tuned.items():
        assert not all(map(torch.equal, weights(pretrained, "encoder"), weights(model, "encoder")))
        decoder_unchanged = all(map(torch.equal, weights(pretrained, "decoder"), weights(model, "decoder")))
        assert decoder_unchanged == (cls is DEC)


def test_stops_when_fewer_than_tol_labels_change(sheet_blobs):
    # 600 rows in batches of 128: five steps an epoch, so the second target update opens the second epoch.
    model = DEC(4, **SMALL, epochs=20, update_interval=5, tol=1.0, random_state=0).fit(sheet_blobs[0])
    assert model.n_iter_ == 1 and model.history_.shape == (1,)


@pytest.mark.parametrize(
    ("cls", "params", "match"),
    [
        (DEC, {"latent_dim": 0}, "latent_dim"),
        (DEC, {"tol": 2.0}, "tol"),
        (DEC, {"hidden_dims": (64, -1)}, "hidden_dims"),
        (DEC, {"update_interval": 0}, "update_interval"),
        (IDEC, {"gamma": -0.1}, "gamma"),
    ],
)
def test_bad_parameters(sheet_blobs, cls, params, match):
    with pytest.raises(ConfigurationError, match=match):
        cls(4, **{**SMALL, **params}).fit(sheet_blobs[0])
