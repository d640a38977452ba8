"""Loki on label spaces whose Fréchet means are known by hand: a line, a grid, a tree, a circle and the discrete
metric."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.geometry import loki, loki_predict


def _line(n: int) -> np.ndarray:
    return np.abs(np.subtract.outer(np.arange(n, dtype=float), np.arange(n, dtype=float)))


#: A tree: root r with children a and b, each with two leaves; edges of length 1. Positions in the label space.
TREE_LABELS = ["r", "a", "b", "a1", "a2", "b1", "b2"]
TREE_EDGES = [("r", "a"), ("r", "b"), ("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "b2")]


def _tree_distances() -> np.ndarray:
    """Path lengths by Floyd-Warshall over ``TREE_EDGES``."""
    n = len(TREE_LABELS)
    D = np.full((n, n), np.inf)
    np.fill_diagonal(D, 0.0)
    for u, v in TREE_EDGES:
        D[TREE_LABELS.index(u), TREE_LABELS.index(v)] = D[TREE_LABELS.index(v), TREE_LABELS.index(u)] = 1.0
    for k in range(n):
        D = np.minimum(D, D[:, [k]] + D[[k], :])
    return D


def test_an_unobserved_label_between_two_observed_ones_is_predicted():
    proba = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.2, 0.6, 0.2], [0.9, 0.05, 0.05], [0.45, 0.1, 0.45]])
    # objectives of labels 0..4 for the first row: 2, 1, 2, 5, 10 (0.5 x 0 + 0.5 x 4 at label 0, ...); for the
    # fourth 1.0 (0.05 x 4 + 0.05 x 16), 1.4 (0.9 x 1 + 0.05 x 1 + 0.05 x 9), ...
    assert loki_predict(proba, _line(5), observed=[0, 2, 4]).tolist() == [1, 3, 2, 0, 2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_on_a_line_the_prediction_is_the_label_nearest_the_weighted_mean(seed):
    rng = np.random.default_rng(seed)
    observed = np.array([0, 5, 11, 17, 20])
    proba = rng.dirichlet(np.ones(5), size=200)
    # Σ P_k (y - x_k)² = (y - Σ P_k x_k)² + a constant: the label nearest the weighted mean position wins.
    expected = np.rint(proba @ observed).astype(np.int64)
    assert np.array_equal(loki_predict(proba, _line(21), observed=observed), expected)


def test_on_a_grid_of_label_embeddings_the_prediction_is_the_point_nearest_the_weighted_mean():
    grid = np.array([(x, y) for x in range(5) for y in range(5)], dtype=np.float32)
    corners = np.array([0, 4, 20, 24])  # (0, 0), (0, 4), (4, 0), (4, 4)
    proba = np.random.default_rng(3).dirichlet(np.ones(4), size=300)
    mean = proba @ grid[corners]
    expected = np.argmin(((grid[None] - mean[:, None]) ** 2).sum(axis=2), axis=1)
    assert np.array_equal(loki_predict(proba, grid, metric="l2", observed=corners), expected)


@pytest.mark.parametrize(
    ("proba", "expected"),
    [
        ([0.5, 0.5, 0.0, 0.0], "a"),  # a: 0.5 + 0.5 = 1; a1: 0.5 * 4 = 2
        ([0.25, 0.25, 0.25, 0.25], "r"),  # r: 4 x 0.25 x 4 = 4; a: 0.5 + 0.5 x 9 = 5; a1: 0.25 x (4 + 16 + 16) = 9
        ([0.7, 0.1, 0.1, 0.1], "a"),  # a: 0.8 + 0.2 x 9 = 2.6; a1: 0.1 x 4 + 0.2 x 16 = 3.6; r: 4
        ([0.9, 0.05, 0.025, 0.025], "a1"),  # a1: 0.05 x 4 + 0.05 x 16 = 1.0; a: 0.95 + 0.05 x 9 = 1.4
        ([0.0, 0.0, 0.3, 0.7], "b"),  # b: 0.3 + 0.7 = 1; b2: 0.3 x 4 = 1.2
        ([0.0, 0.0, 0.1, 0.9], "b2"),  # b2: 0.1 x 4 = 0.4; b: 1
    ],
)
def test_on_a_tree_uncertainty_between_leaves_moves_the_prediction_up(proba, expected):
    leaves = [TREE_LABELS.index(leaf) for leaf in ("a1", "a2", "b1", "b2")]
    predicted = loki_predict(np.array([proba]), _tree_distances(), observed=leaves)
    assert TREE_LABELS[predicted[0]] == expected


def test_on_a_circle_of_cosine_label_embeddings_the_middle_label_is_predicted():
    angles = np.deg2rad([0.0, 45.0, 90.0])
    labels = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    # (1 - cos 45°)² = 0.086: the middle label wins unless one class has more than 1 - 0.086 of the mass.
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [0.97, 0.03], [0.03, 0.97]])
    assert loki_predict(proba, 3.0 * labels, metric="cosine", observed=[0, 2]).tolist() == [1, 1, 0, 2]


@pytest.mark.parametrize("n_labels", [6, 10])
def test_the_discrete_metric_gives_the_argmax(n_labels):
    rng = np.random.default_rng(n_labels)
    proba = rng.dirichlet(np.ones(6), size=500)
    observed = rng.permutation(n_labels)[:6]
    discrete = 1.0 - np.eye(n_labels)
    assert np.array_equal(loki_predict(proba, discrete, observed=observed), observed[np.argmax(proba, axis=1)])


def test_blocks_of_rows_give_the_same_predictions(monkeypatch):
    proba = np.random.default_rng(4).dirichlet(np.ones(3), size=97)
    whole = loki_predict(proba, _line(7), observed=[0, 3, 6])
    monkeypatch.setattr(loki, "_BLOCK_VALUES", 20)  # blocks of 2 rows
    assert np.array_equal(loki_predict(proba, _line(7), observed=[0, 3, 6]), whole)


def test_bad_probabilities_are_refused_naming_the_rows():
    line = _line(3)
    with pytest.raises(EmbeddingDataError, match=r"2 row\(s\) do not sum to one.*rows 1, 3"):
        loki_predict(np.array([[0.5, 0.5, 0], [0.5, 0.6, 0], [1, 0, 0], [0.2, 0.2, 0.2]]), line)
    loki_predict(np.array([[0.5, 0.5004, 0]]), line, atol=1e-3)  # within a looser tolerance
    with pytest.raises(EmbeddingDataError, match=r"negative values \(rows 1\).*not scores or log-probabilities"):
        loki_predict(np.array([[0.5, 0.5, 0], [1.5, -0.5, 0]]), line)
    with pytest.raises(EmbeddingDataError, match="NaN or Inf"):
        loki_predict(np.array([[np.nan, 0.5, 0.5]]), line)
    with pytest.raises(ConfigurationError, match="proba has one class"):
        loki_predict(np.ones((4, 1)), line, observed=[1])


def test_a_label_space_that_does_not_match_the_classes_is_refused():
    proba = np.full((2, 3), 1 / 3)
    with pytest.raises(ConfigurationError, match="5 labels but proba 3 classes; pass observed="):
        loki_predict(proba, _line(5))
    with pytest.raises(ConfigurationError, match="5 labels but proba 3 classes"):
        loki_predict(proba, np.eye(5), metric="l2")
    with pytest.raises(ConfigurationError, match="observed must hold 3 integer"):
        loki_predict(proba, _line(5), observed=[0, 2])
    with pytest.raises(ConfigurationError, match="3 distinct positions in 0 .. 4"):
        loki_predict(proba, _line(5), observed=[0, 2, 2])
    with pytest.raises(ConfigurationError, match="3 distinct positions in 0 .. 4"):
        loki_predict(proba, _line(5), observed=[0, 2, 5])
    with pytest.raises(ConfigurationError, match="metric must be one of"):
        loki_predict(proba, _line(3), metric="manhattan")


def test_a_distance_matrix_that_is_not_a_metric_is_refused():
    proba = np.full((2, 3), 1 / 3)
    with pytest.raises(ConfigurationError, match=r"shape \(3, 2\).*square matrix"):
        loki_predict(proba, np.ones((3, 2)))
    asymmetric = _line(3)
    asymmetric[0, 2] = 5.0
    with pytest.raises(EmbeddingDataError, match=r"not symmetric\) \(labels 0, 2\)"):
        loki_predict(proba, asymmetric)
    negative = -_line(3)
    with pytest.raises(EmbeddingDataError, match="negative distances"):
        loki_predict(proba, negative)
    with pytest.raises(EmbeddingDataError, match=r"non-zero distance to itself \(labels 1\)"):
        loki_predict(proba, _line(3) + np.diag([0.0, 1.0, 0.0]))
    with pytest.raises(EmbeddingDataError, match="all-zero vectors"):
        loki_predict(proba, np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]), metric="cosine")
