from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import skew

from embedlab.exceptions import ConfigurationError
from embedlab.geometry.hubness import hubness, k_occurrence
from embedlab.neighbors import knn

# k = 2, -1 = missing. N_k = [5, 4, 3, 0, 0, 0, 0] (12 occurrences; point 0 is a hub: 5 > 2k).
GRAPH = np.array([[1, 2], [0, 2], [0, 1], [0, 2], [0, -1], [0, 1], [1, -1]])
COUNTS = [5, 4, 3, 0, 0, 0, 0]
IDS = np.array(list("abcdefg"))


def _exact_skewness(values: list[int]) -> float:
    n = len(values)
    mean = Fraction(sum(values), n)
    m2 = sum((Fraction(v) - mean) ** 2 for v in values) / n
    m3 = sum((Fraction(v) - mean) ** 3 for v in values) / n
    return float(m3) / float(m2) ** 1.5


def test_hand_made_graph_every_field():
    report = hubness(GRAPH, ids=IDS, top=5)
    assert report.k_occurrence.tolist() == COUNTS
    assert report.k_occurrence.dtype == np.int64
    assert report.k == 2 and report.n_points == 7
    assert report.skewness == pytest.approx(_exact_skewness(COUNTS), rel=1e-12)
    # sum |N_k - 12/7| = 23/7 + 16/7 + 9/7 + 4 * 12/7 = 96/7, over 2 * 12
    assert report.robin_hood == pytest.approx(4 / 7, rel=1e-12)
    assert report.hub_occurrence == pytest.approx(5 / 12, rel=1e-12)
    assert report.hubs == 1
    assert report.antihubs == 4
    assert report.top_hubs == (
        {"id": "a", "k_occurrence": 5},
        {"id": "b", "k_occurrence": 4},
        {"id": "c", "k_occurrence": 3},
        {"id": "d", "k_occurrence": 0},  # ties broken by position
        {"id": "e", "k_occurrence": 0},
    )


def test_to_dict_is_json_ready_and_leaves_out_the_per_point_array():
    payload = hubness(GRAPH, top=2).to_dict()
    assert "k_occurrence" not in payload
    assert json.loads(json.dumps(payload)) == payload
    assert payload["top_hubs"] == [{"id": 0, "k_occurrence": 5}, {"id": 1, "k_occurrence": 4}]
    assert all(type(entry["id"]) is int for entry in payload["top_hubs"])


def test_low_dimensional_uniform_data_has_little_hubness_and_gaussian_in_d100_much():
    rng = np.random.default_rng(0)
    uniform = hubness(knn(rng.uniform(size=(2000, 2)), 10, metric="l2").indices)
    gaussian = hubness(knn(rng.normal(size=(2000, 100)), 10, metric="l2").indices)
    assert abs(uniform.skewness) < 1.0  # measured 0.06
    assert gaussian.skewness > 1.0  # measured 5.6 (hubs near the mean: Radovanović et al. 2010)
    assert gaussian.robin_hood > uniform.robin_hood
    assert gaussian.antihubs > uniform.antihubs


def test_skewness_and_k_occurrence_agree_with_scipy_and_bincount():
    indices = knn(np.random.default_rng(1).normal(size=(500, 20)), 7, metric="cosine").indices
    counts = np.bincount(indices.ravel(), minlength=500)
    report = hubness(indices)
    np.testing.assert_array_equal(report.k_occurrence, counts)
    assert report.skewness == pytest.approx(float(skew(counts, bias=True)), rel=1e-12)
    assert report.robin_hood == pytest.approx(np.abs(counts - 7).sum() / (2 * 500 * 7), rel=1e-12)


def test_permuting_the_rows_changes_no_statistic():
    rng = np.random.default_rng(2)
    indices = knn(rng.normal(size=(400, 30)), 5, metric="l2").indices
    perm = rng.permutation(400)
    inverse = np.argsort(perm)
    permuted = inverse[indices[perm]]  # row i of the new graph is old row perm[i], neighbours relabelled
    before, after = hubness(indices), hubness(permuted)
    np.testing.assert_array_equal(after.k_occurrence, before.k_occurrence[perm])
    assert after.skewness == pytest.approx(before.skewness, rel=1e-12)
    assert after.robin_hood == pytest.approx(before.robin_hood, rel=1e-12)
    assert (after.hubs, after.antihubs) == (before.hubs, before.antihubs)
    assert after.hub_occurrence == pytest.approx(before.hub_occurrence, rel=1e-12)


def test_constant_and_empty_occurrence_give_zeros_not_nan():
    ring = np.array([[1], [2], [3], [0]])  # every point occurs once: skewness 0 (scipy would give NaN)
    report = hubness(ring)
    assert (report.skewness, report.robin_hood, report.hub_occurrence, report.antihubs) == (0.0, 0.0, 0.0, 0)
    empty = hubness(np.full((3, 2), -1))
    assert (empty.skewness, empty.robin_hood, empty.hub_occurrence, empty.antihubs) == (0.0, 0.0, 0.0, 3)


def test_n_points_counts_points_never_queried():
    report = hubness(np.array([[0], [1]]), n_points=4)
    assert report.k_occurrence.tolist() == [1, 1, 0, 0] and report.antihubs == 2


@pytest.mark.parametrize(
    ("indices", "kwargs"),
    [
        (np.array([[1], [5]]), {}),  # position beyond the points
        (np.array([[1], [-2]]), {}),
        (np.array([1, 0]), {}),  # not 2-D
        (np.array([[1.0], [0.0]]), {}),  # not integer
        (GRAPH, {"top": -1}),
        (GRAPH, {"ids": IDS, "n_points": 8}),
    ],
)
def test_bad_input_raises(indices, kwargs):
    with pytest.raises(ConfigurationError):
        hubness(indices, **kwargs)


def test_k_occurrence_ignores_missing_neighbours():
    assert k_occurrence(np.array([[1, -1], [-1, -1]])).tolist() == [0, 1]
