"""INLP on data where the attribute's directions are known: a 3-valued attribute planted in two directions and a
second label in a third."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from embedlab.exceptions import EmbeddingDataError
from embedlab.geometry import NullspaceProjection


def _planted(n_values: int, seed: int = 0):
    """An attribute of ``n_values`` values planted in its first ``n_values - 1`` directions, and another binary
    label in the direction after them."""
    rng = np.random.default_rng(seed)
    n, d = 1_500, 24
    attribute = rng.integers(0, n_values, n)
    other = rng.integers(0, 2, n)
    means = np.vstack([np.zeros(n_values - 1), 2.5 * np.eye(n_values - 1)])
    X = rng.normal(size=(n, d))
    X[:, : n_values - 1] += means[attribute]
    X[:, n_values - 1] += 4.0 * other
    return X.astype(np.float32), attribute, other


@pytest.fixture(scope="module")
def planted():
    return _planted(3)


def _probe(X, y):
    return cross_val_score(LogisticRegression(max_iter=2000), X, y, cv=5).mean()


def test_a_binary_attribute_loses_its_direction_and_nothing_else():
    X, attribute, other = _planted(2)
    model = NullspaceProjection(random_state=0).fit(X, attribute)
    removed = model.transform(X)
    assert _probe(X, attribute) > 0.85 and _probe(removed, attribute) < 0.55
    assert model.n_iter_ == 1 and abs(model.directions_[0, 0]) > 0.95  # the planted direction
    assert abs(model.directions_[0, 1]) < 0.1  # not the other label's
    knn = KNeighborsClassifier(10)
    assert cross_val_score(knn, removed, other, cv=5).mean() > cross_val_score(knn, X, other, cv=5).mean() - 0.02


def test_a_three_valued_attribute_is_no_longer_linearly_decodable(planted):
    X, attribute, _ = planted
    model = NullspaceProjection(random_state=0).fit(X, attribute)
    removed = model.transform(X)
    majority = np.bincount(attribute).max() / attribute.size
    assert _probe(X, attribute) > 0.75 and _probe(removed, attribute) < majority + 0.05
    planted_span = np.eye(X.shape[1])[:2]
    assert np.linalg.norm(planted_span @ model.directions_.T, axis=1).min() > 0.95
    assert model.accuracy_[0] > 0.75 and model.accuracy_[-1] <= model.majority_ + model.tolerance_
    assert model.n_iter_ == len(model.accuracy_) - 1


def test_the_projection_is_orthogonal_and_idempotent(planted):
    X, attribute, _ = planted
    model = NullspaceProjection(random_state=1).fit(X, attribute)
    D = model.directions_
    np.testing.assert_allclose(D @ D.T, np.eye(D.shape[0]), atol=1e-8)
    once = model.transform(X)
    np.testing.assert_allclose(model.transform(once), once, atol=1e-4)
    np.testing.assert_allclose(once @ D.T, 0.0, atol=1e-4)


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.zeros(40), "one class"),
        (np.r_[np.zeros(39), 1], "has one row"),
        (np.zeros(10), "10 labels for 40 rows"),
    ],
)
def test_bad_attributes_are_refused(y, message):
    X = np.random.default_rng(0).normal(size=(40, 5))
    with pytest.raises(EmbeddingDataError, match=message):
        NullspaceProjection().fit(X, y)


def test_remove_attribute_reads_it_no_better_than_chance_and_keeps_the_rest():
    from embedlab import EmbeddingSet
    from embedlab.geometry import remove_attribute

    rng = np.random.default_rng(0)
    topic = rng.integers(0, 5, 3000)
    gender = rng.integers(0, 2, 3000)
    X = 3.0 * np.eye(40)[topic] + 2.0 * np.outer(gender - 0.5, np.eye(40)[39]) + 0.5 * rng.normal(size=(3000, 40))
    data = EmbeddingSet(X.astype(np.float32), metadata={"gender": gender, "topic": topic})
    removal = remove_attribute(data, "gender", others=["topic"], random_state=0)
    assert removal.probe_before > 0.95
    assert removal.probe_after < removal.majority + 0.05  # a fresh probe, not the one INLP trained against
    before, after = removal.others["topic"]
    assert before > 0.95 and after > before - 0.02  # the other label survives
    assert removal.neighbours_kept < 1.0 and removal.n_directions >= 1
    assert removal.vectors.shape == X.shape
    np.testing.assert_allclose(removal.projection.transform(X), removal.vectors, atol=1e-5)
    assert set(removal.to_dict()) >= {"probe_before", "probe_after", "majority", "others", "neighbours_kept"}


def test_remove_attribute_refuses_one_class_by_its_column():
    from embedlab import EmbeddingSet
    from embedlab.geometry import remove_attribute

    X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    data = EmbeddingSet(X, metadata={"same": np.zeros(50)}, source="set.parquet")
    with pytest.raises(EmbeddingDataError, match="set.parquet, column 'same': need at least 2 labels"):
        remove_attribute(data, "same")
    with pytest.raises(EmbeddingDataError, match="has no column 'other'"):
        remove_attribute(data, "other")
