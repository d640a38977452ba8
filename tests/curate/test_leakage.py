"""Leakage: planted copies of training rows in a test set are found, and only they."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet
from embedlab.curate import find_leakage


def _unit(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_planted_copies_leak_and_name_their_training_row(rng):
    train = _unit(rng.normal(size=(500, 32)))
    test = _unit(rng.normal(size=(100, 32)))
    test[[3, 50, 77]] = _unit(train[[10, 200, 499]] + 0.002 * rng.normal(size=(3, 32)))
    found = find_leakage(EmbeddingSet(train), EmbeddingSet(test, [f"t{i}" for i in range(100)]), threshold=0.99)
    assert np.flatnonzero(found.leaked).tolist() == [3, 50, 77]
    assert found.nearest[[3, 50, 77]].tolist() == [10, 200, 499] and found.exact
    np.testing.assert_allclose(found.similarity, (test @ train.T).max(axis=1), atol=1e-5)
    summary = found.to_dict(np.array([f"t{i}" for i in range(100)]), np.arange(500))
    assert summary["leaked"] == 3 and {e["test_id"] for e in summary["examples"]} == {"t3", "t50", "t77"}


def test_sets_of_another_dimension_or_model_and_bad_thresholds_are_refused(rng):
    a = EmbeddingSet(rng.normal(size=(20, 8)).astype(np.float32), model="m1")
    with pytest.raises(EmbeddingDataError, match="dimension 8 and the test set 6"):
        find_leakage(a, EmbeddingSet(rng.normal(size=(5, 6)).astype(np.float32)))
    with pytest.raises(EmbeddingDataError, match="embedded by 'm1' and the test set by 'm2'"):
        find_leakage(a, EmbeddingSet(rng.normal(size=(5, 8)).astype(np.float32), model="m2"))
    with pytest.raises(ConfigurationError, match="threshold must be"):
        find_leakage(a, a, threshold=0)
