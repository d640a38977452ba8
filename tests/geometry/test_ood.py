"""NECO on held-out classes: fitted on some classes of a labelled set, it must tell the rows of the other classes
from new rows of its own classes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.geometry import NecoScore


def _classes(n_classes: int, per_class: int, dim: int, spread: float, seed: int):
    """Unit-norm rows around random class directions on the sphere (like a text model's topics)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_classes), per_class)
    X = centres[y] + spread * rng.normal(size=(y.size, dim)) / np.sqrt(dim)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), y


@pytest.mark.parametrize("spread", [0.5, 1.0])
def test_held_out_classes_score_lower_than_new_rows_of_the_fitted_classes(spread):
    X, y = _classes(12, 300, 64, spread, seed=0)
    inside, outside = y < 8, y >= 8
    fit = inside & (np.arange(y.size) % 3 != 0)
    new_inside = inside & ~fit
    neco = NecoScore().fit(X[fit], y[fit])
    assert neco.n_components_ == 8
    scores = neco.score_samples(X[new_inside | outside])
    is_inside = new_inside[new_inside | outside]
    auroc = roc_auc_score(is_inside, scores)
    assert auroc > 0.95, auroc
    assert 0 <= scores.min() and scores.max() <= 1 + 1e-9


def test_the_score_is_the_share_of_the_norm_in_the_principal_subspace():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 6)) * np.array([5.0, 4.0, 1.0, 1.0, 1.0, 1.0])
    neco = NecoScore(n_components=2).fit(X)
    row = neco.scaler_.mean_ + 3.0 * neco.pca_.components_[0]  # wholly in the first component
    assert neco.score_samples(row[None])[0] == pytest.approx(1.0)
    row = neco.scaler_.mean_ + 3.0 * neco.pca_.components_[4]  # wholly outside the first two
    assert neco.score_samples(row[None])[0] == pytest.approx(0.0, abs=1e-9)


def test_bad_requests_are_refused():
    X = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ConfigurationError, match="n_components"):
        NecoScore().fit(X)
    with pytest.raises(EmbeddingDataError, match="one class"):
        NecoScore().fit(X, np.zeros(20))
    with pytest.raises(EmbeddingDataError, match="3 labels for 20 rows"):
        NecoScore().fit(X, np.zeros(3))
    with pytest.raises(ConfigurationError, match="n_components"):
        NecoScore(n_components=5).fit(X)


def test_score_ood_flags_held_out_classes_and_about_the_false_positive_rate_of_the_rest():
    from embedlab.geometry import score_ood

    X, y = _classes(10, 600, 32, 0.5, seed=0)
    first = np.random.default_rng(0).random(y.size) < 0.5
    reference, inside, outside = (y < 7) & first, (y < 7) & ~first, y >= 7
    new = np.vstack([X[inside], X[outside]])
    scores = score_ood(X[reference], y[reference], new, false_positive_rate=0.05, random_state=1)
    n_inside = int(inside.sum())
    for flagged in (scores.neco_out, scores.knn_out):
        assert flagged[n_inside:].mean() > 0.95  # the unseen classes
        assert 0.01 < flagged[:n_inside].mean() < 0.10  # 5% targeted, on about 420 calibration rows
    assert roc_auc_score(np.r_[np.ones(n_inside), np.zeros(int(outside.sum()))], scores.neco) > 0.99
    table = scores.to_table(np.arange(len(new)))
    assert table.column_names == ["id", "neco", "neco_out", "knn_distance", "knn_out"]
    document = scores.to_dict(np.arange(len(new)))
    assert document["flagged"]["neco"] == int(scores.neco_out.sum()) and len(document["lowest_neco"]) == 10


def test_score_ood_names_a_column_of_one_class_and_refuses_a_column_of_an_array():
    from embedlab import EmbeddingSet
    from embedlab.geometry import score_ood

    X, _ = _classes(2, 100, 32, 0.5, seed=1)
    reference = EmbeddingSet(X, metadata={"same": ["a"] * 200}, source="/data/ref.parquet")
    with pytest.raises(EmbeddingDataError, match="ref.parquet, column 'same': need at least 2 labels"):
        score_ood(reference, "same", X)
    with pytest.raises(ConfigurationError, match="name a column, but the rows are an array"):
        score_ood(X, "same", X)
    with pytest.raises(EmbeddingDataError, match="new"):
        score_ood(X, np.arange(200) % 2, X[:, :5])
