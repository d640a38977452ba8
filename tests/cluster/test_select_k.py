from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError
from embedlab.cluster import select_k


def _four_blobs(rng, n_per=80, d=12):
    centres = np.eye(d)[:4] * 12
    return np.concatenate([rng.normal(size=(n_per, d)) + c for c in centres]).astype(np.float32)


@pytest.mark.parametrize("criterion", ["silhouette", "stability"])
def test_finds_the_planted_number_of_clusters(rng, criterion):
    X = _four_blobs(rng)
    selection = select_k(X, range(2, 9), criterion=criterion, metric="l2", random_state=0)
    assert selection.best_k == 4
    assert selection.k_values == list(range(2, 9)) and len(selection.scores) == 7
    assert selection.to_dict()["criterion"] == criterion


def test_stability_is_perfect_at_the_true_k_and_reports_spread(rng):
    selection = select_k(_four_blobs(rng), [3, 4, 6], criterion="stability", metric="l2", n_boot=4, random_state=1)
    scores = dict(zip(selection.k_values, selection.scores, strict=True))
    assert scores[4] == pytest.approx(1.0, abs=1e-9)
    assert scores[3] < 1.0 and len(selection.spread) == 3


def test_seeded_curve_is_reproducible(rng):
    X = _four_blobs(rng)
    a = select_k(X, [2, 3, 4, 5], metric="cosine", random_state=3)
    b = select_k(X, [2, 3, 4, 5], metric="cosine", random_state=3)
    assert a.scores == b.scores


def test_candidates_outside_the_range_are_skipped_or_refused(rng):
    X = _four_blobs(rng, n_per=2)  # 8 rows
    assert select_k(X, [1, 2, 3, 8, 50], metric="l2").k_values == [2, 3]
    with pytest.raises(ConfigurationError, match="no candidate k between 2 and 7"):
        select_k(X, [8, 9], metric="l2")
    with pytest.raises(ConfigurationError, match="criterion"):
        select_k(X, [2], criterion="gap")
