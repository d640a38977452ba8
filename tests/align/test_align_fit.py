from __future__ import annotations

import json

import numpy as np
import pytest

from embedlab import EmbeddingSet
from embedlab.align import ProcrustesAdapter, evaluate_alignment, fit_adapter, load_adapter
from embedlab.exceptions import ConfigurationError, EmbeddingDataError

LINEAR = ("procrustes", "low-rank", "ridge")


def _corpus(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Clustered rows, so that neighbourhoods have structure."""
    centres = rng.normal(size=(25, d))
    return (centres[rng.integers(25, size=n)] + 0.6 * rng.normal(size=(n, d))).astype(np.float32)


def _noisy_rotation(rng: np.random.Generator, n: int = 1000, d: int = 32, noise: float = 0.01):
    new = _corpus(rng, n, d)
    old = new @ np.linalg.qr(rng.normal(size=(d, d)))[0] + noise * rng.normal(size=(n, d))
    return old.astype(np.float32), new


def test_cv_picks_procrustes_on_a_rotation_and_recovers_the_recall(rng):
    old, new = _noisy_rotation(rng)
    result = fit_adapter(old, new, methods=LINEAR, k=10, random_state=0)
    assert result.method == "procrustes"
    assert {row.method for row in result.cv_table} == set(LINEAR)
    assert all(row.score > 0.99 for row in result.cv_table if row.method == "procrustes")
    evaluation = result.evaluation
    assert evaluation.n_queries == 200 and evaluation.n_index == 1000 and result.n_fit_pairs == 1000
    assert evaluation.fraction_recovered > 0.97
    assert evaluation.recall_full == 1.0
    assert evaluation.recall_unadapted < 0.5  # the spaces are rotated: unadapted search is useless
    assert evaluation.compatible and evaluation.recall_adapted >= evaluation.recall_old_to_old
    assert evaluation.fraction_closer > 0.95
    assert evaluation.mean_pair_distance < evaluation.mean_nearest_distance


def test_cv_scores_retrieval_not_closeness(rng):
    """old = new A with A far from orthogonal: ridge recovers A (its mapped rows land on their own old rows), but
    the OLD index ranks neighbours by A's distorted geometry. The CV scores what the user gets, recall@k
    against full re-embedding, and keeps the candidate that retrieves best, not the closest map."""
    new = _corpus(rng, 800, 24)
    A = rng.normal(size=(24, 24)) + 3 * np.eye(24)
    old = (new @ A + 0.01 * rng.normal(size=(800, 24))).astype(np.float32)
    result = fit_adapter(old, new, methods=LINEAR, k=10)
    best = max(row.score for row in result.cv_table)
    chosen = next(row for row in result.cv_table if (row.method, row.params) == (result.method, result.params))
    assert chosen.score >= best - 2e-3
    assert chosen.score > max(row.score for row in result.cv_table if row.method == "ridge") + 0.02
    assert result.evaluation.recall_adapted >= result.evaluation.recall_old_to_old - 0.01


def test_cv_picks_the_mlp_on_a_nonlinear_map(rng, one_torch_thread):
    new = _corpus(rng, 1500, 8)
    B = rng.normal(size=(8, 8))
    old = (new + 1.5 * np.tanh(new @ B)).astype(np.float32)
    result = fit_adapter(old, new, methods=("ridge", "mlp"), k=10, cv=2, max_pairs=1000)
    assert result.method == "mlp"
    mlp_score = next(row.score for row in result.cv_table if row.method == "mlp")
    assert mlp_score > max(row.score for row in result.cv_table if row.method == "ridge")


def test_cv_keeps_the_identity_when_new_barely_moved_from_old(rng):
    """A lightly perturbed NEW (a fine-tune): no fitted map retrieves better than using NEW as it is, and the
    simplest candidate within the tie tolerance, the identity, is kept."""
    old = _corpus(rng, 1000, 32)
    new = (old + 0.01 * rng.normal(size=old.shape)).astype(np.float32)
    result = fit_adapter(old, new, methods=("identity", *LINEAR), k=10, random_state=0)
    assert result.method == "identity"
    assert result.evaluation.fraction_recovered > 0.97


def test_identity_is_left_out_by_default_between_unequal_dimensions_and_refused_when_asked(rng, one_torch_thread):
    new = _corpus(rng, 300, 16)
    old = new[:, :12]
    assert "identity" not in {row.method for row in fit_adapter(old, new, methods=None, k=5).cv_table}
    with pytest.raises(ConfigurationError, match="identity adapter needs OLD and NEW of equal dimension, got 12"):
        fit_adapter(old, new, methods=("identity", "ridge"), k=5)


@pytest.mark.parametrize("direction", ["new-to-old", "old-to-new"])
def test_different_dimensions_work_in_both_directions(rng, direction):
    new = _corpus(rng, 500, 48)
    basis = np.linalg.qr(rng.normal(size=(48, 32)))[0]
    old = (new @ basis).astype(np.float32)
    result = fit_adapter(old, new, direction=direction, methods=("procrustes", "ridge"), k=5)
    assert (result.d_old, result.d_new) == (32, 48)
    d_in, d_out = (48, 32) if direction == "new-to-old" else (32, 48)
    assert (result.adapter.n_features_in_, result.adapter.n_features_out_) == (d_in, d_out)
    evaluation = result.evaluation
    assert evaluation.direction == direction
    assert evaluation.recall_unadapted is None
    assert "dimensions differ (OLD 32, NEW 48)" in evaluation.unadapted_note
    assert 0.0 <= evaluation.recall_adapted <= 1.0
    json.dumps(result.to_dict())


def test_pairs_by_id_samples_at_most_max_pairs_and_saves_the_adapter(rng, tmp_path):
    old, new = _noisy_rotation(rng, n=700, d=16)
    old_set = EmbeddingSet(old[:650], ids=[f"doc-{i}" for i in range(650)])
    new_set = EmbeddingSet(new[50:][::-1], ids=[f"doc-{i}" for i in range(50, 700)][::-1])
    result = fit_adapter(old_set, new_set, methods=("procrustes", "ridge"), max_pairs=200, n_queries=100)
    assert result.n_pairs == 600 and result.n_fit_pairs == 200
    assert result.evaluation.n_queries == 40  # at most a fifth of the 200 sampled pairs
    assert result.evaluation.fraction_recovered > 0.97  # pairing by id, not by position
    path = result.save(tmp_path / "adapter.json")
    document = json.loads(path.read_text())
    assert document["alignment"]["direction"] == "new-to-old" and document["alignment"]["n_fit_pairs"] == 200
    chosen = next(row for row in result.cv_table if (row.method, row.params) == (result.method, result.params))
    assert document["alignment"]["cv_score"] == chosen.score
    np.testing.assert_array_equal(load_adapter(path).transform(new[:5]), result.adapter.transform(new[:5]))


def test_too_few_pairs_to_hold_out_queries_gives_no_evaluation_and_says_why(rng):
    old, new = _noisy_rotation(rng, n=30, d=8)
    result = fit_adapter(old, new, methods=("procrustes",))
    assert result.evaluation is None
    assert "30 pairs leave 6 held-out queries" in result.evaluation_note
    assert result.n_fit_pairs == 30


def test_evaluate_alignment_on_its_own(rng):
    old, new = _noisy_rotation(rng, n=600, d=16)
    adapter = ProcrustesAdapter().fit(new[:300], old[:300])
    evaluation = evaluate_alignment(adapter, old, new, k=5, n_queries=200)
    assert evaluation.n_queries == 200 and evaluation.n_index == 600
    assert evaluation.recall_adapted > 0.97
    with pytest.raises(EmbeddingDataError, match=r"NEW queries has 16 features, but \w+ is expecting 8"):
        evaluate_alignment(ProcrustesAdapter().fit(old[:, :8], old), old, new)


def test_sets_without_shared_ids_are_refused(rng):
    old = EmbeddingSet(rng.normal(size=(20, 4)), ids=[f"a{i}" for i in range(20)])
    new = EmbeddingSet(rng.normal(size=(20, 4)), ids=[f"b{i}" for i in range(20)])
    with pytest.raises(EmbeddingDataError, match="share no id"):
        fit_adapter(old, new, methods=("ridge",))


def test_too_few_pairs_are_refused(rng):
    old = EmbeddingSet(rng.normal(size=(20, 4)), ids=[f"a{i}" for i in range(20)])
    new = EmbeddingSet(rng.normal(size=(5, 4)), ids=[f"a{i}" for i in range(15, 20)])
    with pytest.raises(EmbeddingDataError, match=r"give 5 pair\(s\), but this needs at least 10"):
        fit_adapter(old, new, methods=("ridge",))


def test_nan_rows_are_refused_naming_the_input(rng):
    old, new = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
    new[7, 2] = np.nan
    with pytest.raises(EmbeddingDataError, match="NEW: 1 of 40 rows have NaN or Inf values"):
        fit_adapter(old, new, methods=("ridge",))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"direction": "sideways"}, "direction must be one of 'new-to-old', 'old-to-new', got 'sideways'"),
        ({"methods": ("ridge", "magic")}, "methods must be among .* got 'magic'"),
        ({"cv": 1}, "cv must be an integer >= 2"),
        ({"k": 0}, "k must be an integer >= 1"),
    ],
)
def test_bad_parameters_are_configuration_errors(rng, kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        fit_adapter(rng.normal(size=(40, 4)), rng.normal(size=(40, 4)), **kwargs)


def test_the_returned_adapter_is_refitted_on_every_sampled_pair(rng):
    old, new = _noisy_rotation(rng, n=500, d=16, noise=0.05)
    result = fit_adapter(old, new, methods=("procrustes",), k=5)
    assert result.n_fit_pairs == 500 and result.evaluation.n_queries == 100
    np.testing.assert_allclose(
        result.adapter.transform(new[:20]), ProcrustesAdapter().fit(new, old).transform(new[:20]), atol=1e-5
    )


def test_the_expectation_gives_the_recall_interval_and_recommends_reembedding_below_min_recall(rng):
    old, new = _noisy_rotation(rng, n=1000, d=32, noise=0.4)  # a noisy map: neighbourhoods only partly kept
    asked = {m: fit_adapter(old, new, methods=("procrustes",), min_recall=m, random_state=0) for m in (0.1, 0.99)}
    evaluation = asked[0.1].evaluation
    low, high = evaluation.recall_interval
    assert low < evaluation.recall_adapted < high and high - low < 0.1
    assert 0.1 < evaluation.recall_adapted < 0.99
    assert asked[0.1].recommendation == "adapter" and "the adapter will do" in asked[0.1].expectation
    assert asked[0.99].recommendation == "re-embed" and "re-embed the corpus instead" in asked[0.99].expectation
    assert f"{evaluation.recall_adapted:.1%}" in asked[0.99].expectation
    assert asked[0.99].to_dict()["recommendation"] == "re-embed"


def test_the_interval_covers_the_recall_of_fresh_queries(rng):
    """The held-out interval predicts what other queries of the same population get in an index of the same
    size: the recall of 1,000 fresh pairs of the same map falls inside it. (A larger index gives less: its
    neighbours are closer; the expectation names the index size.)"""
    old, new = _noisy_rotation(rng, n=2000, d=32, noise=0.4)
    result = fit_adapter(old[:1000], new[:1000], methods=("procrustes",), random_state=0)
    low, high = result.evaluation.recall_interval
    fresh = evaluate_alignment(result.adapter, old[1000:], new[1000:], n_queries=1000, random_state=1)
    assert low <= fresh.recall_adapted <= high
    assert "index of 1000 rows" in result.expectation


def test_without_an_evaluation_the_recommendation_is_unmeasured(rng):
    old, new = _noisy_rotation(rng, n=30, d=8)
    result = fit_adapter(old, new, methods=("procrustes",))
    assert result.recommendation == "unmeasured" and "give more pairs" in result.expectation


def test_fewer_pairs_than_the_map_has_inputs_are_refused(rng):
    old, new = rng.normal(size=(60, 64)), rng.normal(size=(60, 64))
    with pytest.raises(EmbeddingDataError, match=r"48 pairs are left to fit .* a map from 64 dimensions"):
        fit_adapter(old, new, methods=("ridge",))
    with pytest.raises(EmbeddingDataError, match="or ask for the identity method only"):
        fit_adapter(old, new)
    assert fit_adapter(old, new, methods=("identity",)).method == "identity"


def test_min_recall_out_of_range_is_a_configuration_error(rng):
    with pytest.raises(ConfigurationError, match="min_recall must be positive and at most 1"):
        fit_adapter(rng.normal(size=(40, 4)), rng.normal(size=(40, 4)), min_recall=1.5)
