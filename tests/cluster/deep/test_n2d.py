from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.cluster import KMeans
from embedlab.cluster.deep import N2D
from embedlab.cluster.metrics import hungarian_accuracy

pytest.importorskip("torch")
pytest.importorskip("umap")


@pytest.fixture(scope="module")
def on_stripes(stripes):
    """N2D fitted on the first 600 rows of the stripes; the last 300 are held out."""
    X, _ = stripes
    params = {"hidden_dims": (64, 64), "pretrain_epochs": 20, "batch_size": 200, "learning_rate": 5e-3}
    return N2D(3, **params, random_state=0).fit(X[:600])


def test_separates_stripes_that_kmeans_cuts_across(on_stripes, stripes):
    X, truth = stripes
    kmeans = KMeans(3, metric="l2", n_init=3, random_state=0).fit(X[:600])
    assert hungarian_accuracy(truth[:600], kmeans.labels_) < 0.6
    assert hungarian_accuracy(truth[:600], on_stripes.labels_) >= 0.9


def test_predicts_held_out_rows_through_encoder_and_umap(on_stripes, stripes):
    X, truth = stripes
    assert hungarian_accuracy(truth[600:], on_stripes.predict(X[600:])) >= 0.9


def test_transform_gives_the_codes_the_umap_was_fitted_on(on_stripes, stripes):
    X, _ = stripes
    codes = on_stripes.transform(X[:600])
    assert codes.shape == (600, 3) and codes.dtype == np.float32
    through_codes = on_stripes.mixture_.predict(on_stripes.umap_.transform(codes))
    assert np.array_equal(through_codes, on_stripes.predict(X[:600]))
    with pytest.raises(EmbeddingDataError, match="dimension"):
        on_stripes.transform(X[:5, :1])


def test_fitted_parts(on_stripes):
    assert on_stripes.embedding_.shape == (600, 3)
    assert on_stripes.umap_.n_components == 3 and on_stripes.umap_.n_neighbors == 20
    assert on_stripes.umap_.min_dist == 0.0 and on_stripes.mixture_.n_components == 3
    assert on_stripes.autoencoder_["encoder"][-1].out_features == 3  # the code size defaults to n_clusters
    assert on_stripes.history_.shape == (20,) and on_stripes.n_iter_ == 20


def test_bad_parameters(stripes):
    with pytest.raises(ConfigurationError, match="covariance_type"):
        N2D(3, covariance_type="round").fit(stripes[0][:50])
    with pytest.raises(ConfigurationError, match="latent_dim"):
        N2D(3, latent_dim=0).fit(stripes[0][:50])
