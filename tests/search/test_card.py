"""The card's statistics: the recall interval, the prediction bound that chooses, strata and the worst ones."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.search._card import per_query_recall, prediction_bound, recall_interval, strata, worst_strata


def test_interval_and_prediction_bound_against_their_formulas():
    values = np.random.default_rng(0).choice([0.7, 0.9, 1.0], size=400)
    mean, low, high = recall_interval(values)
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert mean == pytest.approx(values.mean()) and low == pytest.approx(mean - 1.96 * se, abs=1e-4)
    assert high == pytest.approx(mean + 1.96 * se, abs=1e-4)
    assert prediction_bound(values) == pytest.approx(mean - 1.645 * np.sqrt(2) * se, abs=1e-4)
    assert recall_interval(np.ones(5)) == (1.0, 1.0, 1.0)


def test_per_query_recall_counts_ties_and_strata_partition_the_queries():
    truth = np.array([[0.1, 0.2, 0.3], [0.1, 0.1, 0.1]])
    found = np.array([[0.1, 0.3, 0.5], [0.1, 0.1, 0.1]])
    np.testing.assert_allclose(per_query_recall(found, truth), [2 / 3, 1.0])
    labels = np.array([0, 0, 1, 1, 1] * 4)
    groups = strata("cluster", labels, np.linspace(0.5, 1.0, 20))
    assert [g.n_queries for g in groups] == [8, 12] and groups[0].name == "cluster 0"
    assert worst_strata(groups, min_queries=10) == [f"cluster 1 at {groups[1].recall:.3f} (12 queries)"]
