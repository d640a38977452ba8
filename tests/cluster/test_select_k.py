"""select_k against planted structure: Gaussian and von Mises-Fisher mixtures in 96-d, uniform points on the
sphere (no k) and nested clusters (two levels)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import vonmises_fisher

from embedlab import ConfigurationError
from embedlab.cluster import MIN_STABILITY, select_k

DIM = 96
FAST = {"n_boot": 2, "n_references": 2}


def _directions(rng, k, dim=DIM):
    centres = rng.normal(size=(k, dim))
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def gaussian_mixture(rng, k, n_per, noise=0.02, dim=DIM):
    """Well separated: centres on the unit sphere (about 1.4 apart), each cluster of radius about 0.4."""
    centres = _directions(rng, k, dim)
    return (np.repeat(centres, n_per, axis=0) + rng.normal(scale=noise, size=(k * n_per, dim))).astype(np.float32)


def vmf_mixture(rng, k, n_per, kappa=2_000.0, dim=DIM):
    centres = _directions(rng, k, dim)
    seed = int(rng.integers(2**31 - 1))
    parts = [vonmises_fisher(c, kappa).rvs(n_per, random_state=seed + i) for i, c in enumerate(centres)]
    return np.concatenate(parts).astype(np.float32)


def nested(rng, top=4, sub=5, n_per=40):
    """``top`` groups far apart, each of ``sub`` tight clusters nearer to one another."""
    groups = rng.normal(size=(top, DIM))  # norm about 20: the 5 clusters of a group share its direction
    centres = np.concatenate([g + 0.35 * rng.normal(size=(sub, DIM)) for g in groups])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return (np.repeat(centres, n_per, axis=0) + rng.normal(scale=0.01, size=(top * sub * n_per, DIM))).astype(
        np.float32
    )


@pytest.mark.parametrize(("k", "n_per", "k_values"), [(2, 150, None), (12, 60, None), (37, 40, None)])
def test_finds_the_planted_k_of_a_gaussian_mixture(rng, k, n_per, k_values):
    selection = select_k(gaussian_mixture(rng, k, n_per), k_values, random_state=0, **FAST)
    assert selection.clear, selection.reason
    assert abs(selection.best_k - k) <= 0.1 * k, selection.reason
    assert selection.best_k in selection.supported
    assert selection.curves["stability"].scores[selection.k_values.index(selection.best_k)] >= MIN_STABILITY


def test_finds_200_clusters_with_a_grid_that_reaches_them(rng):
    selection = select_k(
        gaussian_mixture(rng, 200, 20), [2, 10, 50, 100, 150, 250], criterion="stability", random_state=0, n_boot=1
    )
    assert selection.clear, selection.reason
    assert abs(selection.best_k - 200) <= 20, selection.reason


@pytest.mark.parametrize("k", [5, 25])
def test_finds_the_planted_k_of_a_von_mises_fisher_mixture(rng, k):
    selection = select_k(vmf_mixture(rng, k, 50), random_state=0, **FAST)
    assert selection.clear, selection.reason
    assert abs(selection.best_k - k) <= max(1, 0.1 * k), selection.reason


def test_uniform_points_on_the_sphere_have_no_clear_k(rng):
    selection = select_k(rng.normal(size=(1_500, DIM)), random_state=0, **FAST)
    assert not selection.clear
    assert selection.reason.startswith("no clear k within 2-100")
    assert selection.supported == []
    assert max(selection.curves["stability"].scores) < 0.5
    assert selection.curves["gap"].peak == "one_cluster" and selection.curves["gap"].best_k == 1
    assert selection.curves["silhouette"].peak == "flat"
    document = selection.to_dict()
    assert document["clear"] is False and document["curves"]["gap"]["k_values"][0] == 1


def test_nested_structure_reports_both_levels(rng):
    selection = select_k(nested(rng), random_state=0, **FAST)
    assert selection.clear, selection.reason
    supported = selection.supported
    assert 4 in supported and any(18 <= k <= 22 for k in supported), [g.to_dict() for g in selection.granularities]
    assert 18 <= selection.best_k <= 22  # the level with the most individually stable clusters
    assert "also supported: k = 4" in selection.reason or ", 4," in selection.reason


def test_stability_at_the_end_of_the_range_is_not_a_clear_k(rng):
    selection = select_k(gaussian_mixture(rng, 30, 30), [2, 3, 4, 5, 6], random_state=0, refine=False, **FAST)
    assert not selection.clear
    assert selection.best_k == 6 or "try larger k_values" in selection.reason or "no clear k" in selection.reason


def test_a_single_criterion_says_when_its_curve_peaks_at_the_edge(rng):
    X = gaussian_mixture(rng, 8, 40)
    silhouette = select_k(X, range(2, 9), criterion="silhouette", refine=False)
    assert silhouette.best_k == 8 and not silhouette.clear and "end of the range" in silhouette.reason
    assert list(silhouette.curves) == ["silhouette"] and silhouette.granularities == []
    gap = select_k(X, range(2, 12), criterion="gap", refine=False, n_references=3)
    assert gap.best_k == 8 and gap.clear


def test_each_candidate_is_scored_the_same_whatever_else_is_scored(rng):
    X = gaussian_mixture(rng, 6, 40)
    a = select_k(X, [3, 6, 9], random_state=3, refine=False, **FAST)
    b = select_k(X, [2, 3, 4, 6, 9, 12], random_state=3, refine=False, **FAST)
    for name in ("stability", "silhouette"):
        scores_b = dict(zip(b.curves[name].k_values, b.curves[name].scores, strict=True))
        assert a.curves[name].scores == [scores_b[k] for k in (3, 6, 9)]
    again = select_k(X, [3, 6, 9], random_state=3, refine=False, **FAST)
    assert again.to_dict() == a.to_dict()


def test_refinement_adds_candidates_between_the_neighbours(rng):
    selection = select_k(gaussian_mixture(rng, 14, 40), [2, 5, 10, 20, 40], random_state=0, **FAST)
    assert set(range(11, 20)) <= set(selection.k_values)
    assert selection.best_k == 14, selection.reason


def test_candidates_outside_the_range_are_skipped_or_refused(rng):
    X = rng.normal(size=(8, 5))
    assert select_k(X, [1, 2, 3, 4, 8, 50], metric="l2", refine=False, **FAST).k_values == [2, 3, 4]
    with pytest.raises(ConfigurationError, match="no candidate k between 2 and 4"):
        select_k(X, [5, 9], metric="l2")
    with pytest.raises(ConfigurationError, match="criterion"):
        select_k(X, [2], criterion="elbow")
    with pytest.raises(ConfigurationError, match="n_boot"):
        select_k(X, [2], n_boot=0)


def test_the_finest_k_of_a_supported_run_is_offered_but_not_chosen():
    from types import SimpleNamespace

    from embedlab.cluster._select_k import KCurve, _decide, _granularities

    ks = [2, 3, 4, 5, 6, 8]
    stability = KCurve("stability", ks, [0.98, 0.97, 0.95, 0.76, 0.79, 0.7], [0.0] * 6, 2, "lower_edge")
    flat = KCurve("silhouette", ks, [0.05] * 6, [0.0] * 6, 2, "flat")
    curves = {"stability": stability, "silhouette": flat}
    fits = {k: SimpleNamespace(stable_clusters=min(k, 4)) for k in ks}
    found = {g.k: g for g in _granularities(curves, fits)}
    assert sorted(found) == [2, 4, 6]  # local maxima 2 and 6, the end of the supported run 2-4
    assert found[4].supported and not found[4].local_maximum
    assert not found[6].supported and found[2].local_maximum
    best, clear, reason = _decide(curves, list(found.values()), ks)
    assert (best, clear) == (2, True) and "also supported: k = 4" in reason
