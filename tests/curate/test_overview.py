from __future__ import annotations

import numpy as np
import pytest

from embedlab import EmbeddingSet
from embedlab.curate import CURVE_EPS, curation_overview


@pytest.fixture
def planted(rng):
    """600 rows in 3 clusters of 400, 150 and 50; rows 600-629 copy rows 0-29 at cosine ~0.9999, and rows
    630-632 are three more copies of row 40."""
    sizes = [400, 150, 50]
    X = np.concatenate([5 * np.eye(32)[i] + rng.normal(size=(s, 32)) for i, s in enumerate(sizes)])
    X = np.concatenate([X, X[:30] + 0.01 * rng.normal(size=(30, 32)), X[[40, 40, 40]]]).astype(np.float32)
    labels = np.r_[np.repeat([0, 1, 2], sizes), np.zeros(33, int)]
    return EmbeddingSet(X, [f"r{i}" for i in range(633)]), labels


def test_the_overview_finds_the_planted_groups_and_balances_the_clusters(planted):
    emb, labels = planted
    found = curation_overview(emb, labels, target=150)
    assert found.n_groups == 31 and found.n_grouped == 64  # 30 pairs and one group of 4
    assert found.groups[0]["size"] == 4 and found.groups[0]["ids"][0] == "r40"
    assert all(g["size"] == 2 and g["min_similarity"] > 0.999 for g in found.groups[1:])
    # SemDeDup's curve: no more than the 33 copies at the smallest eps, rising with eps
    assert found.removed_fraction[0] == pytest.approx(33 / 633, abs=1 / 633)
    assert (np.diff(found.removed_fraction) >= 0).all() and found.eps.tolist() == list(CURVE_EPS)
    # clusters of 433, 150 and 50 rows: the 50 whole, then 50 from each of the others
    assert found.balanced_keep.tolist() == [50, 50, 50] and found.target == 150
    document = found.to_dict()
    assert [c["rows"] for c in document["balanced"]["clusters"]] == [433, 150, 50]
    assert document["balanced"]["clusters"][0]["uniform"] == pytest.approx(433 * 150 / 633)
    assert "r40" in found.ids


def test_the_default_target_is_a_tenth_and_at_least_a_row_per_cluster(planted):
    emb, labels = planted
    assert curation_overview(emb, labels).target == 63
    assert curation_overview(EmbeddingSet(emb.vectors[:20]), np.arange(20)).target == 20
