from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from embedlab import ConfigurationError, EmbeddingDataError, MissingDependencyError
from embedlab.cluster import KMeans
from embedlab.cluster.deep import TELL
from embedlab.cluster.deep.tell import kmeans_layer_loss

from .conftest import StepCounter, gaussian_blobs
from .test_contract import _without

torch = pytest.importorskip("torch")

SMALL = {"epochs": 5, "batch_size": 64}
#: The paper's model, small: an autoencoder whose unit code the cluster layer clusters.
WITH_AUTOENCODER = {"latent_dim": 8, "hidden_dims": (64,), "pretrain_epochs": 5, "epochs": 6, "batch_size": 64}


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def tells(blobs) -> dict[str, tuple[TELL, StepCounter]]:
    """TELL on the embeddings and with an autoencoder, each fitted once on the blobs with seed 0."""
    models = {}
    for name, params in (("embeddings", SMALL), ("autoencoder", WITH_AUTOENCODER)):
        progress = StepCounter()
        models[name] = (TELL(4, **params, random_state=0).fit(blobs[0], progress=progress), progress)
    return models


def test_kmeans_layer_loss_is_the_distance_to_the_winning_centre():
    rng = np.random.default_rng(0)
    z, centres = _unit(rng.normal(size=(20, 6))), _unit(rng.normal(size=(4, 6)))
    expected = (((z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    omega = torch.from_numpy(centres).requires_grad_(True)
    loss = kmeans_layer_loss(torch.from_numpy(z) @ omega.T)
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-10)
    loss.sum().backward()
    winners = np.argmax(z @ centres.T, axis=1)
    for j in range(4):  # each centre is pulled by the rows it wins, and only by them
        np.testing.assert_allclose(omega.grad[j].numpy(), -2.0 * z[winners == j].sum(axis=0), atol=1e-12)


@pytest.mark.parametrize("name", ["embeddings", "autoencoder"])
def test_recovers_blobs_on_the_sphere(tells, blobs, name):
    truth = blobs[1]
    model, _ = tells[name]
    kmeans = KMeans(4, random_state=0).fit(blobs[0])
    assert adjusted_rand_score(truth, model.labels_) >= 0.99
    assert normalized_mutual_info_score(truth, model.labels_) >= 0.99
    assert adjusted_rand_score(truth, model.labels_) >= adjusted_rand_score(truth, kmeans.labels_)


def test_at_least_matches_kmeans_on_more_and_unequal_clusters():
    X, truth = gaussian_blobs([120, 60, 30, 30, 60], d=16)
    model = TELL(5, **SMALL, random_state=0).fit(X)
    kmeans = KMeans(5, random_state=0).fit(X)
    assert adjusted_rand_score(truth, model.labels_) >= max(0.95, adjusted_rand_score(truth, kmeans.labels_))


def test_the_cluster_layer_is_nearest_unit_centre(tells, blobs):
    model, _ = tells["embeddings"]
    X = _unit(blobs[0])
    centres = model.cluster_centers_
    assert centres.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, atol=1e-5)
    logits = X @ centres.T
    np.testing.assert_array_equal(model.labels_, np.argmax(logits, axis=1))
    assert model.inertia_ == pytest.approx(float(np.sum(2 - 2 * logits.max(axis=1))), rel=1e-4)
    scaled = 2 * logits / model.temperature
    expected = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    np.testing.assert_allclose(model.predict_proba(blobs[0]), expected / expected.sum(axis=1, keepdims=True), atol=1e-5)


def test_autoencoder_codes_are_clustered(tells, blobs):
    model, progress = tells["autoencoder"]
    assert model.cluster_centers_.shape == (4, 8) and model.pretrain_history_.shape == (5,)
    assert model.pretrain_history_[-1] < model.pretrain_history_[0]
    assert model.history_.shape == (6, 2) and (model.history_[:, 1] > 0).all()
    assert progress.tasks == {"TELL: autoencoder pretraining": [5, 5], "TELL: clustering": [6, 6]}


@pytest.mark.parametrize("name", ["embeddings", "autoencoder"])
def test_scikit_learn_conventions(tells, blobs, name):
    X, _ = blobs
    model, _ = tells[name]
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 4) and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert model.labels_.dtype == np.int64
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    np.testing.assert_allclose(model.confidence_, proba.max(axis=1), atol=1e-6)
    assert model.n_features_in_ == 32 and model.n_iter_ == len(model.history_)
    assert clone(model).get_params() == model.get_params() and not hasattr(clone(model), "labels_")
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict_proba(X[:50]), proba[:50], atol=1e-6)


@pytest.mark.parametrize("name", ["embeddings", "autoencoder"])
def test_the_seed_reaches_every_step(tells, blobs, name):
    model, _ = tells[name]
    params = SMALL if name == "embeddings" else WITH_AUTOENCODER
    again = TELL(4, **params, random_state=0).fit(blobs[0])
    np.testing.assert_array_equal(again.labels_, model.labels_)
    np.testing.assert_array_equal(again.history_, model.history_)
    other = TELL(4, **params, random_state=1).fit(blobs[0])
    assert not np.array_equal(other.history_, model.history_)
    assert adjusted_rand_score(blobs[1], other.labels_) >= 0.99


def test_bad_inputs_give_clear_errors(tells, blobs):
    X, _ = blobs
    model, _ = tells["embeddings"]
    with pytest.raises(EmbeddingDataError, match=r"X has 31 features, but TELL is expecting 32 features"):
        model.predict(X[:, :31])
    with_nan = X[:20].copy()
    with_nan[3, 5] = np.nan
    with pytest.raises(EmbeddingDataError, match="NaN"):
        TELL(4, **SMALL).fit(with_nan)
    with pytest.raises(EmbeddingDataError, match="zero"):
        TELL(4, **SMALL).fit(np.vstack([X[:20], np.zeros((1, 32))]))
    with pytest.raises(ConfigurationError, match="n_clusters=4 but X has only 3 rows"):
        TELL(4, **SMALL).fit(X[:3])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_clusters": 0}, "n_clusters must be an integer >= 1, got 0"),
        ({"latent_dim": 0}, "latent_dim must be an integer >= 1"),
        ({"hidden_dims": (64, 0)}, "hidden_dims entries"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"cluster_learning_rate": 0.0}, "cluster_learning_rate must be positive"),
        ({"temperature": -1.0}, "temperature must be positive"),
    ],
)
def test_bad_parameters(blobs, params, match):
    with pytest.raises(ConfigurationError, match=match):
        TELL(**{"n_clusters": 4, **params}).fit(blobs[0])


def test_missing_torch(monkeypatch, blobs):
    _without(monkeypatch, "embedlab._torch", "torch")
    with pytest.raises(MissingDependencyError, match=r"TELL needs the optional package 'torch'"):
        TELL(4, **SMALL).fit(blobs[0])
