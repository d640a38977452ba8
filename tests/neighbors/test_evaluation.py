from __future__ import annotations

import numpy as np

from embedlab.neighbors import recall_at_k


def test_ties_count_as_correct():
    truth = np.array([[0.1, 0.2, 0.2]])
    found = np.array([[0.1, 0.2, 0.2]])  # a different point at the tied distance is still correct
    assert recall_at_k(found, truth) == 1.0


def test_misses_and_missing_results():
    truth = np.array([[0.1, 0.2], [0.3, 0.4]])
    found = np.array([[0.1, 0.5], [0.3, np.inf]])
    assert recall_at_k(found, truth) == 0.5
