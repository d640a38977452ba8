"""deduplicate: one decision per row by each method, on sets whose duplicates are planted."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingSet
from embedlab.curate import EPS_GRID, deduplicate


def _unit(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def planted(rng):
    """400 random unit rows; rows 300-309 exact copies of rows 0-9, rows 310-329 near copies of rows 20-39."""
    X = _unit(rng.normal(size=(400, 24)))
    X[300:310] = X[0:10]
    X[310:330] = _unit(X[20:40] + 0.002 * rng.normal(size=(20, 24)))
    return EmbeddingSet(X, [f"r{i}" for i in range(400)])


def test_exact_removes_the_later_copies_and_names_the_first(planted):
    found = deduplicate(planted, method="exact")
    assert np.flatnonzero(~found.keep).tolist() == list(range(300, 310))
    assert found.duplicate_of[300:310].tolist() == list(range(10))
    assert (found.similarity[300:310] == 1).all() and np.isnan(found.similarity[found.keep]).all()


def test_near_groups_exact_and_near_copies_alike(planted):
    found = deduplicate(planted, method="near", threshold=0.99)
    assert np.flatnonzero(~found.keep).tolist() == list(range(300, 330))
    assert found.duplicate_of[310:330].tolist() == list(range(20, 40))
    assert (found.similarity[310:330] > 0.99).all()
    assert found.parameters == {"threshold": 0.99, "relative": None, "k": 10}


def test_semdedup_removes_one_of_each_pair_and_reports_its_curve(planted):
    found = deduplicate(planted, method="semdedup", eps=0.01, n_clusters=3)
    assert found.n_removed == 30
    sources = np.r_[0:10, 20:40]
    assert (found.keep[sources] != found.keep[np.r_[300:330]]).all()  # one row of each pair stays
    gone = np.flatnonzero(~found.keep)
    assert (found.group[gone] == found.group[found.duplicate_of[gone]]).all()
    assert list(found.removal_curve) == list(EPS_GRID) and found.removal_curve[0.01] == pytest.approx(30 / 400)
    fraction = deduplicate(planted, method="semdedup", remove_fraction=0.05, n_clusters=3)
    assert fraction.n_removed == 20 and 0 < fraction.parameters["eps"] < 2


def test_the_table_has_one_row_per_input_row_with_the_evidence(planted):
    table = deduplicate(planted, method="near", threshold=0.99).to_table(planted.ids)
    assert table.column_names == ["id", "keep", "reason", "group", "duplicate_of", "similarity", "weight"]
    rows = table.to_pylist()
    assert rows[310]["keep"] is False and rows[310]["reason"] == "near" and rows[310]["duplicate_of"] == "r20"
    assert rows[20]["keep"] is True and rows[20]["duplicate_of"] is None and rows[20]["similarity"] is None
    assert rows[20]["group"] == rows[310]["group"] >= 0 and rows[5]["weight"] == 1.0


def test_options_of_another_method_and_bad_values_are_refused(planted):
    with pytest.raises(ConfigurationError, match="SemDeDup's; method='near' takes none"):
        deduplicate(planted, method="near", eps=0.1)
    with pytest.raises(ConfigurationError, match="not both"):
        deduplicate(planted, eps=0.1, remove_fraction=0.1)
    with pytest.raises(ConfigurationError, match=r"eps must be a number in \(0, 2\)"):
        deduplicate(planted, eps=2.0)
    with pytest.raises(ConfigurationError, match=r"remove_fraction must be a number in \[0, 1\)"):
        deduplicate(planted, remove_fraction=1.0)
    with pytest.raises(ConfigurationError, match="method must be one of"):
        deduplicate(planted, method="minhash")


def test_d4_deduplicates_then_prunes_the_rows_closest_to_their_centroid(planted):
    found = deduplicate(planted, method="d4", eps=0.01, remove_fraction=0.25, n_clusters=3)
    reasons = found.to_table(planted.ids).column("reason").to_pylist()
    assert found.n_removed == 100 and reasons.count("semdedup") == 30 and reasons.count("prototypical") == 70
    semdedup = deduplicate(planted, method="semdedup", eps=0.01, n_clusters=3)
    dropped = np.array([r == "semdedup" for r in reasons])
    np.testing.assert_array_equal(dropped, ~semdedup.keep)  # the same first stage
    pruned = np.array([r == "prototypical" for r in reasons])
    assert np.isnan(found.similarity[found.keep]).all() and (found.similarity[pruned] > 0).all()  # cosine to centroid
    # SemDeDup alone already removes more than 5%: nothing is pruned
    assert deduplicate(planted, method="d4", eps=0.01, remove_fraction=0.05, n_clusters=3).n_removed == 30
