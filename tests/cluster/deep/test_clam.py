from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from embedlab import ConfigurationError, EmbeddingDataError, MissingDependencyError
from embedlab.cluster import KMeans
from embedlab.cluster.deep import ClAM
from embedlab.cluster.deep.clam import attractor, memory_attention

from .conftest import StepCounter, gaussian_blobs
from .test_contract import _without

torch = pytest.importorskip("torch")

SMALL = {"epochs": 5, "batch_size": 64}


def _sq_distances(x: np.ndarray, memories: np.ndarray) -> np.ndarray:
    return ((x[:, None, :] - memories[None, :, :]) ** 2).sum(axis=2)


def _energy(x: np.ndarray, memories: np.ndarray, beta: float) -> np.ndarray:
    """The dense associative memory's energy ``-1/beta log sum_mu exp(-beta / 2 ||rho_mu - x||^2)``."""
    return -logsumexp(-0.5 * beta * _sq_distances(x, memories), axis=1) / beta


@pytest.fixture(scope="module")
def clam(blobs) -> tuple[ClAM, StepCounter]:
    progress = StepCounter()
    return ClAM(4, **SMALL, random_state=0).fit(blobs[0], progress=progress), progress


def test_attention_is_a_softmax_of_distances_to_the_memories():
    rng = np.random.default_rng(0)
    x, memories = rng.normal(size=(7, 5)), rng.normal(size=(3, 5))
    expected = softmax(-0.5 * 2.0 * _sq_distances(x, memories), axis=1)
    attention = memory_attention(torch.from_numpy(x), torch.from_numpy(memories), 2.0).numpy()
    np.testing.assert_allclose(attention, expected, rtol=1e-8)


@pytest.mark.parametrize("masked", [False, True])
def test_the_dynamics_descend_the_energy_and_move_only_free_coordinates(masked):
    rng = np.random.default_rng(1)
    x, memories = rng.normal(size=(50, 6)), rng.normal(size=(4, 6))
    free = (rng.uniform(size=x.shape) < 0.3).astype(float) if masked else np.ones_like(x)
    energies, state = [_energy(x, memories, 1.5)], torch.from_numpy(x)
    for _ in range(8):
        state = attractor(state, torch.from_numpy(memories), 1.5, 0.5, 1, torch.from_numpy(free))
        energies.append(_energy(state.numpy(), memories, 1.5))
    assert (np.diff(energies, axis=0) <= 1e-12).all()
    np.testing.assert_array_equal(state.numpy()[free == 0], x[free == 0])


def test_a_sharp_memory_sends_each_row_to_its_nearest_memory():
    rng = np.random.default_rng(2)
    memories = 3 * np.eye(4, 8)
    x = memories[rng.integers(4, size=40)] + 0.3 * rng.normal(size=(40, 8))
    final = attractor(torch.from_numpy(x), torch.from_numpy(memories), 50.0, 0.5, 30, torch.ones(()))
    nearest = np.argmin(_sq_distances(x, memories), axis=1)
    np.testing.assert_allclose(final.numpy(), memories[nearest], atol=1e-6)


def test_recovers_blobs_on_the_sphere(clam, blobs):
    truth = blobs[1]
    model, _ = clam
    kmeans = KMeans(4, random_state=0).fit(blobs[0])
    assert adjusted_rand_score(truth, model.labels_) >= 0.99
    assert normalized_mutual_info_score(truth, model.labels_) >= 0.99
    assert adjusted_rand_score(truth, model.labels_) >= adjusted_rand_score(truth, kmeans.labels_)
    assert model.history_.shape == (5,) and model.history_[-1] < model.history_[0]


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_at_least_matches_kmeans_on_more_and_unequal_clusters(metric):
    X, truth = gaussian_blobs([120, 60, 30, 30, 60], d=16)
    beta = 50.0 if metric == "cosine" else 1.0  # unit rows, or raw blobs with 16 times larger squared distances
    model = ClAM(5, metric=metric, beta=beta, **SMALL, random_state=0).fit(X)
    kmeans = KMeans(5, metric=metric, random_state=0).fit(X)
    assert adjusted_rand_score(truth, model.labels_) >= max(0.95, adjusted_rand_score(truth, kmeans.labels_))


def test_clusters_are_the_memories_the_rows_converge_to(clam, blobs):
    model, progress = clam
    X = blobs[0] / np.linalg.norm(blobs[0], axis=1, keepdims=True)
    memories = torch.from_numpy(model.cluster_centers_)
    final = attractor(torch.from_numpy(X), memories, model.beta, model.step_size, model.n_steps, torch.ones(()))
    np.testing.assert_array_equal(model.labels_, np.argmin(_sq_distances(final.numpy(), model.cluster_centers_), 1))
    assert progress.tasks == {"ClAM: memories": [5, 5]}


def test_scikit_learn_conventions(clam, blobs):
    X, _ = blobs
    model, _ = clam
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


def test_the_seed_reaches_every_step(clam, blobs):
    model, _ = clam
    again = ClAM(4, **SMALL, random_state=0).fit(blobs[0])
    np.testing.assert_array_equal(again.labels_, model.labels_)
    np.testing.assert_array_equal(again.history_, model.history_)
    np.testing.assert_array_equal(again.cluster_centers_, model.cluster_centers_)
    other = ClAM(4, **SMALL, random_state=1).fit(blobs[0])
    assert not np.array_equal(other.history_, model.history_)
    assert adjusted_rand_score(blobs[1], other.labels_) >= 0.99


def test_bad_inputs_give_clear_errors(clam, blobs):
    X, _ = blobs
    model, _ = clam
    with pytest.raises(EmbeddingDataError, match=r"X has 31 features, but ClAM is expecting 32 features"):
        model.predict(X[:, :31])
    with_inf = X[:20].copy()
    with_inf[3, 5] = np.inf
    with pytest.raises(EmbeddingDataError, match="Inf"):
        ClAM(4, **SMALL).fit(with_inf)
    with pytest.raises(EmbeddingDataError, match="zero"):
        ClAM(4, **SMALL).fit(np.vstack([X[:20], np.zeros((1, 32))]))
    with pytest.raises(ConfigurationError, match="n_clusters=4 but X has only 3 rows"):
        ClAM(4, **SMALL).fit(X[:3])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_clusters": 0}, "n_clusters must be an integer >= 1, got 0"),
        ({"metric": "ip"}, "metric must be one of 'cosine', 'l2'"),
        ({"beta": 0.0}, "beta must be positive"),
        ({"step_size": 1.5}, "step_size must be positive and at most 1"),
        ({"mask_fraction": 0.0}, "mask_fraction must be positive"),
        ({"n_steps": 0}, "n_steps must be an integer >= 1"),
    ],
)
def test_bad_parameters(blobs, params, match):
    with pytest.raises(ConfigurationError, match=match):
        ClAM(**{"n_clusters": 4, **params}).fit(blobs[0])


def test_missing_torch(monkeypatch, blobs):
    _without(monkeypatch, "embedlab._torch", "torch")
    with pytest.raises(MissingDependencyError, match=r"ClAM needs the optional package 'torch'"):
        ClAM(4, **SMALL).fit(blobs[0])
