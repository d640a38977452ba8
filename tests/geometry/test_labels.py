from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import silhouette_samples, silhouette_score

from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.geometry.labels import label_structure
from embedlab.neighbors import ExactParams, KnnResult, knn


def _blobs(seed: int, *, n_per: int = 150, classes: int = 4, d: int = 16, spread: float = 10.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(classes, d))
    y = np.repeat(np.arange(classes), n_per)
    return (centres[y] + rng.normal(size=(len(y), d))).astype(np.float32), y


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_well_separated_blobs(metric):
    X, y = _blobs(0)
    report = label_structure(X, y, knn(X, 10, metric=metric))
    assert report.knn_accuracy == 1.0
    assert report.silhouette > 0.5  # measured 0.88 (l2), 0.99 (cosine)
    assert report.nc1 < 0.05  # measured 0.0023
    assert report.ncc_agreement == 1.0
    assert report.label_sharpness < 0.5  # differently-labelled rows are far apart: measured 0.09
    assert (report.n_rows, report.n_labels, report.metric, report.k, report.sample_size) == (600, 4, metric, 10, 600)
    assert [entry["count"] for entry in report.per_label] == [150] * 4
    assert all(entry["knn_accuracy"] == 1.0 for entry in report.per_label)
    payload = report.to_dict()
    assert "sample_rows" not in payload and json.loads(json.dumps(payload)) == payload


def test_simplex_etf_class_means():
    rng = np.random.default_rng(1)
    C, d = 4, 16
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    means = 5.0 * (np.eye(C) - 1.0 / C) @ rotation[:C] + 3.0  # an ETF around an offset global mean
    y = np.repeat(np.arange(C), 100)
    X = (means[y] + 0.01 * rng.normal(size=(len(y), d))).astype(np.float32)
    report = label_structure(X, y, knn(X, 10, metric="l2"))
    assert report.etf_cosine == pytest.approx(-1 / 3)
    assert report.mean_cosine_between_means == pytest.approx(-1 / 3, abs=0.02)
    assert report.equiangularity < 0.02 and report.equinorm < 0.02  # measured 2e-4, 8e-5
    assert report.nc1 < 1e-3


def test_random_labels_on_one_cloud():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2000, 16)).astype(np.float32)
    y = rng.integers(0, 4, size=2000)
    report = label_structure(X, y, knn(X, 10, metric="l2"), sample=1000)
    assert report.knn_accuracy == pytest.approx(0.25, abs=0.07)  # measured 0.2455
    assert report.silhouette == pytest.approx(0.0, abs=0.05)  # measured -0.0075
    assert report.ncc_agreement < 0.4  # chance 0.25, the class means fit noise a little
    assert report.nc1 > 10.0


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_silhouette_matches_scikit_learn_on_the_sample(metric):
    X, y = _blobs(3, n_per=300, classes=5, spread=1.5)
    y = np.r_[y[:-200], np.full(200, 7)]  # imbalanced: 300 x 4, 100, 200
    report = label_structure(X, y, knn(X, 5, metric=metric), sample=500, random_state=11)
    rows = report.sample_rows
    sk_metric = "cosine" if metric == "cosine" else "euclidean"
    assert report.sample_size == rows.size == 500 and np.all(np.diff(rows) > 0)
    assert report.silhouette == pytest.approx(silhouette_score(X[rows], y[rows], metric=sk_metric), abs=1e-6)
    per_row = silhouette_samples(X[rows], y[rows], metric=sk_metric)
    for entry in report.per_label:
        assert entry["silhouette"] == pytest.approx(per_row[y[rows] == entry["label"]].mean(), abs=1e-6)
        # stratified: each label's share of the sample is its share of the data, to one row
        assert abs((y[rows] == entry["label"]).sum() - 500 * entry["count"] / len(y)) < 1.0
    again = label_structure(X, y, knn(X, 5, metric=metric), sample=500, random_state=11)
    np.testing.assert_array_equal(again.sample_rows, rows)


def test_nc1_matches_the_explicit_formula():
    X, y = _blobs(4, n_per=60, classes=3, d=8, spread=2.0)
    y = np.r_[y[:-30], np.full(30, 5)]  # imbalanced classes, C - 1 = 3 < d: Sigma_B is singular
    report = label_structure(X, y, knn(X, 5, metric="l2"))
    X64 = X.astype(np.float64)
    classes = np.unique(y)
    means = np.array([X64[y == c].mean(axis=0) for c in classes])
    residual = X64 - means[np.searchsorted(classes, y)]
    sigma_w = residual.T @ residual / len(X)
    centred = means - means.mean(axis=0)
    sigma_b = centred.T @ centred / len(classes)
    expected = np.trace(sigma_w @ np.linalg.pinv(sigma_b, rtol=1e-10, hermitian=True)) / len(classes)
    assert report.nc1 == pytest.approx(expected, rel=1e-6)
    cosines = (centred @ centred.T) / np.outer(*[np.linalg.norm(centred, axis=1)] * 2)
    off = cosines[~np.eye(len(classes), dtype=bool)]
    assert report.equiangularity == pytest.approx(off.std(), rel=1e-9)
    assert report.mean_cosine_between_means == pytest.approx(off.mean(), rel=1e-9)
    nearest = np.argmin(cdist(X64, means), axis=1)
    assert report.ncc_agreement == pytest.approx((classes[nearest] == y).mean(), abs=1e-12)


def test_label_sharpness_matches_brute_force():
    X, y = _blobs(5, n_per=100, classes=3, spread=1.0)
    report = label_structure(X, y, knn(X, 5, metric="l2"), sample=200)
    S, labels = X[report.sample_rows].astype(np.float64), y[report.sample_rows]
    D = cdist(S, S)
    nearest_other = D[labels[:, None] != labels[None, :]].min()
    np.fill_diagonal(D, np.inf)
    assert report.label_sharpness == pytest.approx(np.median(D.min(axis=1)) / nearest_other, rel=1e-4)


def test_knn_vote_ties_go_to_the_nearest_tied_label():
    X = np.random.default_rng(6).normal(size=(6, 2)).astype(np.float32)
    y = np.array(["A", "A", "B", "B", "A", "B"])
    indices = np.array(
        [
            [2, 1, 3, 4],  # A 2 : B 2, nearest tied B -> wrong
            [0, 2, 3, -1],  # B wins 2 : 1 -> wrong
            [3, 0, 1, 5],  # tie, nearest tied B -> right
            [-1, -1, -1, -1],  # no neighbour: left out
            [0, 1, 2, 3],  # tie, nearest tied A -> right
            [2, 3, 0, 1],  # tie, nearest tied B -> right
        ]
    )
    graph = KnnResult(np.tile(np.arange(1.0, 5.0, dtype=np.float32), (6, 1)), indices, "l2", params=ExactParams())
    report = label_structure(X, y, graph)
    assert report.knn_accuracy == pytest.approx(3 / 5)
    assert [entry["knn_accuracy"] for entry in report.per_label] == [pytest.approx(1 / 3), 1.0]


def test_scaling_the_vectors_changes_no_statistic():
    X, y = _blobs(7, n_per=100, classes=3, spread=1.2)
    X7 = (X.astype(np.float64) * 7.0).astype(np.float32)
    for metric in ("l2", "cosine"):
        base = label_structure(X, y, knn(X, 8, metric=metric), sample=200).to_dict()
        scaled = label_structure(X7, y, knn(X7, 8, metric=metric), sample=200).to_dict()
        assert base["knn_accuracy"] < 1.0 and base["nc1"] > 0.1  # not a trivial configuration
        for key, value in base.items():
            if isinstance(value, float):
                assert scaled[key] == pytest.approx(value, rel=1e-4, abs=1e-9), key
            elif key != "per_label":
                assert scaled[key] == value, key
        for mine, theirs in zip(base["per_label"], scaled["per_label"], strict=True):
            assert theirs == pytest.approx(mine, rel=1e-4)


def test_string_labels():
    X, y = _blobs(8, n_per=50, classes=3)
    names = np.array(["cat", "dog", "emu"], dtype=object)[y]
    report = label_structure(X, names, knn(X, 5, metric="cosine"))
    assert [entry["label"] for entry in report.per_label] == ["cat", "dog", "emu"]
    assert report.knn_accuracy == 1.0 and report.n_labels == 3
    assert json.loads(json.dumps(report.to_dict()))["per_label"][0]["label"] == "cat"


def test_differently_labelled_duplicates_make_sharpness_infinite():
    X, y = _blobs(9, n_per=30, classes=2)
    X[0] = X[-1]  # same vector, labels 0 and 1
    report = label_structure(X, y, knn(X, 5, metric="l2"))
    assert report.label_sharpness == np.inf and report.to_dict()["label_sharpness"] is None


def test_too_few_labelled_rows_name_the_small_labels():
    X, _ = _blobs(10, n_per=10, classes=2)
    labels = np.array(["big"] * 18 + ["x", "y"])
    with pytest.raises(EmbeddingDataError, match="'x', 'y'"):
        label_structure(X, labels, knn(X, 3, metric="l2"))
    with pytest.raises(EmbeddingDataError, match="at least 2 labels"):
        label_structure(X, np.zeros(20, dtype=int), knn(X, 3, metric="l2"))


def test_mismatched_inputs_raise():
    X, y = _blobs(11, n_per=10, classes=2)
    with pytest.raises(EmbeddingDataError, match="20 rows"):
        label_structure(X, y[:-1], knn(X, 3, metric="l2"))
    with pytest.raises(ConfigurationError):
        label_structure(X, y, knn(X[:-1], 3, metric="l2"))
    with pytest.raises(ConfigurationError):
        label_structure(X, y, knn(X, 3, metric="l2"), sample=1)
