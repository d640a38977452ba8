from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import AgglomerativeClustering
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from embedlab import ConfigurationError, EmbeddingDataError, MissingDependencyError
from embedlab.cluster import _density
from embedlab.cluster._density import (
    GaussianMixtureClusterer,
    HDBSCANClusterer,
    WardClusterer,
    gmm_bic_curve,
    reduce_dimensions,
)


def _blobs(rng, n_per=100, k=5, d=48, spread=0.3, scale=5.0):
    centres = rng.normal(size=(k, d)) * scale
    truth = np.repeat(np.arange(k), n_per)
    X = (centres[truth] + rng.normal(size=(k * n_per, d)) * spread).astype(np.float32)
    return X, truth


def _unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


ESTIMATORS = {
    "hdbscan": lambda metric, seed=None: HDBSCANClusterer(min_cluster_size=20, metric=metric, random_state=seed),
    "gmm": lambda metric, seed=None: GaussianMixtureClusterer(5, metric=metric, random_state=seed),
    "ward": lambda metric, seed=None: WardClusterer(5, metric=metric),
}


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_recovers_planted_clusters(rng, name, metric):
    X, truth = _blobs(rng)
    model = ESTIMATORS[name](metric, 0).fit(X)
    assert adjusted_rand_score(truth, model.labels_) >= 0.95
    assert model.labels_.dtype == np.int64 and model.labels_.shape == truth.shape


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_fixed_seed_gives_identical_labels_and_estimator_conventions(rng, name):
    X, _ = _blobs(rng, spread=3.0)  # overlapping: the result depends on the seed if anything does
    first = ESTIMATORS[name]("cosine", 7)
    assert clone(first).get_params() == first.get_params()
    labels = first.fit_predict(X)
    np.testing.assert_array_equal(labels, first.labels_)
    np.testing.assert_array_equal(ESTIMATORS[name]("cosine", 7).fit(X).labels_, labels)


def test_hdbscan_marks_uniform_background_as_noise(rng):
    X, truth = _blobs(rng, k=4, d=8, spread=0.5, scale=10.0)
    background = rng.uniform(-25, 25, size=(100, 8)).astype(np.float32)
    model = HDBSCANClusterer(min_cluster_size=20, metric="l2").fit(np.r_[X, background])
    noise = model.labels_ == -1
    assert model.n_clusters_ == 4 and model.n_noise_ == noise.sum()
    assert noise[len(X) :].mean() >= 0.9  # background rows: noise
    assert noise[: len(X)].mean() <= 0.02  # blob rows: clustered
    assert adjusted_rand_score(truth, model.labels_[: len(X)]) >= 0.95
    assert np.all(model.probabilities_[noise] == 0) and model.probabilities_.max() <= 1.0


def test_pca_reduction_matches_scikit_learn_on_unit_rows(rng):
    X, _ = _blobs(rng)
    reduced = reduce_dimensions(X, n_components=8)
    expected = PCA(n_components=8).fit_transform(_unit(X.astype(np.float64)))
    assert reduced.dtype == np.float32 and reduced.shape == (len(X), 8)
    # Components are defined up to sign.
    signs = np.sign((reduced * expected).sum(axis=0))
    np.testing.assert_allclose(reduced * signs, expected, atol=1e-4)
    scaled = reduce_dimensions(X * rng.uniform(0.1, 10, size=(len(X), 1)), n_components=8)
    np.testing.assert_allclose(np.abs(scaled), np.abs(reduced), atol=1e-4)  # cosine ignores row norms
    assert reduce_dimensions(X[:, :20], metric="l2").shape == (len(X), 20)  # 32 capped at d


def test_umap_reduction_is_deterministic_and_clusters(rng):
    X, truth = _blobs(rng, n_per=75, k=4, d=32)
    first = reduce_dimensions(X, method="umap", n_components=5, random_state=3)
    np.testing.assert_array_equal(reduce_dimensions(X, method="umap", n_components=5, random_state=3), first)
    assert first.shape == (300, 5) and first.dtype == np.float32
    model = HDBSCANClusterer(min_cluster_size=20, reduction="umap", n_components=5, random_state=0).fit(X)
    assert adjusted_rand_score(truth, model.labels_) >= 0.95


def test_gmm_posteriors_and_bic(rng):
    X, truth = _blobs(rng, k=4)
    gmm = GaussianMixtureClusterer(4, random_state=0).fit(X)
    proba = gmm.predict_proba(X)
    assert proba.shape == (len(X), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(gmm.predict(X), gmm.labels_)
    np.testing.assert_allclose(gmm.confidence_, proba.max(axis=1), atol=1e-6)
    assert adjusted_rand_score(truth, gmm.predict(X[::-1])[::-1]) >= 0.95
    reduced = reduce_dimensions(X, random_state=0)
    curve = gmm_bic_curve(reduced, range(1, 9), random_state=0)
    assert len(curve) == 8 and int(np.argmin(curve)) + 1 == 4
    assert gmm.bic_ == pytest.approx(curve[3], rel=1e-3)
    with pytest.raises(EmbeddingDataError, match="X has 3 features, but .* is expecting"):
        gmm.predict(X[:, :3])


def test_gmm_predict_needs_a_linear_reduction(rng, monkeypatch):
    X, _ = _blobs(rng, n_per=20, k=2)
    monkeypatch.setattr(_density, "_umap", lambda rows, dims, metric, seed: rows[:, :dims].copy())
    gmm = GaussianMixtureClusterer(2, reduction="umap", random_state=0).fit(X)
    assert gmm.labels_.shape == (40,)
    with pytest.raises(ConfigurationError, match="reduction='pca'"):
        gmm.predict(X)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_ward_matches_scikit_learn(rng, metric):
    X, _ = _blobs(rng, n_per=40, spread=4.0)  # overlapping, so the cut is not trivial
    ours = WardClusterer(5, metric=metric).fit(X)
    rows = _unit(X) if metric == "cosine" else X
    ref = AgglomerativeClustering(n_clusters=5, linkage="ward").fit(rows)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_array_equal(ours.children_, ref.children_)


def test_ward_refuses_large_sets(rng, monkeypatch):
    monkeypatch.setattr(_density, "WARD_MAX_ROWS", 50)
    X, _ = _blobs(rng, n_per=20, k=3)
    with pytest.raises(ConfigurationError, match="limited to 50 rows.*KMeans"):
        WardClusterer(3).fit(X)


TINY = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)


@pytest.mark.parametrize(
    ("make", "X", "error", "message"),
    [
        (
            lambda: HDBSCANClusterer(min_cluster_size=30),
            TINY,
            ConfigurationError,
            r"min_cluster_size must be an integer between 2 and 20 \(the rows of X\), got 30",
        ),
        (lambda: HDBSCANClusterer(min_cluster_size=1), TINY, ConfigurationError, "min_cluster_size must be"),
        (
            lambda: HDBSCANClusterer(min_samples=21),
            TINY,
            ConfigurationError,
            r"min_samples must be an integer between 1 and 20 \(the rows of X\), got 21",
        ),
        (lambda: HDBSCANClusterer(cluster_selection_method="x"), TINY, ConfigurationError, "cluster_selection"),
        (lambda: HDBSCANClusterer(reduction="tsne"), TINY, ConfigurationError, "reduction must be"),
        (
            lambda: GaussianMixtureClusterer(21),
            TINY,
            ConfigurationError,
            r"n_clusters must be an integer between 1 and 20 \(the rows of X\), got 21",
        ),
        (lambda: GaussianMixtureClusterer(0), TINY, ConfigurationError, "n_clusters must be"),
        (lambda: GaussianMixtureClusterer(2, covariance_type="x"), TINY, ConfigurationError, "covariance_type"),
        (lambda: GaussianMixtureClusterer(2, n_components=0), TINY, ConfigurationError, "n_components must be"),
        (
            lambda: WardClusterer(21),
            TINY,
            ConfigurationError,
            r"n_clusters must be an integer between 1 and 20 \(the rows of X\), got 21",
        ),
        (lambda: WardClusterer(2, metric="manhattan"), TINY, ConfigurationError, "metric must be"),
        (lambda: WardClusterer(2), np.where(np.arange(20)[:, None] == 4, np.nan, TINY), EmbeddingDataError, "NaN"),
        (lambda: HDBSCANClusterer(), np.zeros((20, 8)), EmbeddingDataError, "zero"),
        (lambda: GaussianMixtureClusterer(1), TINY[:1], EmbeddingDataError, "at least 2"),
    ],
)
def test_bad_inputs(make, X, error, message):
    with pytest.raises(error, match=message):
        make().fit(X)


def test_bad_reduction_and_bic_arguments(rng):
    X, _ = _blobs(rng, n_per=5, k=2)
    with pytest.raises(ConfigurationError, match="method must be"):
        reduce_dimensions(X, method="tsne")
    with pytest.raises(ConfigurationError, match="more than 15 rows"):
        reduce_dimensions(X, method="umap")
    with pytest.raises(
        ConfigurationError, match=r"k must be an integer between 1 and 10 \(the rows of X_reduced\), got 11"
    ):
        gmm_bic_curve(X, [2, 11])


def test_missing_umap_names_the_extra(rng, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` fail
    with pytest.raises(MissingDependencyError, match=r'pip install "embedlab\[deep\]"'):
        reduce_dimensions(_blobs(rng, n_per=20, k=2)[0], method="umap")
