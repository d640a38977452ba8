from __future__ import annotations

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet
from embedlab.cluster import METHODS, find_clusters

TOPICS = {0: "cat kitten purr whiskers", 1: "rocket orbit launch engine", 2: "bread flour oven yeast"}
_AUTOENCODER = {"hidden_dims": (64, 64), "pretrain_epochs": 10, "batch_size": 64}
#: Small settings that keep each method's test short; every other method runs with its defaults.
FAST = {
    "hdbscan": {"min_cluster_size": 20},
    "dec": {**_AUTOENCODER, "latent_dim": 4, "epochs": 3, "update_interval": 5, "n_init": 3},
    "idec": {**_AUTOENCODER, "latent_dim": 4, "epochs": 3, "update_interval": 5, "n_init": 3},
    "n2d": {**_AUTOENCODER, "pretrain_epochs": 40},
    "scan": {"n_neighbors": 10, "n_heads": 3, "epochs": 10, "learning_rate": 1e-2},
    "temi": {
        "n_neighbors": 10,
        "n_heads": 3,
        "hidden_dim": 64,
        "bottleneck_dim": 32,
        "epochs": 10,
        "batch_size": 64,
        "learning_rate": 3e-3,
        "teacher_momentum": 0.9,
    },
    "cpp": {"hidden_dim": 64, "z_dim": 16, "epochs": 20, "batch_size": 60},
    "swav": {"n_neighbors": 10, "hidden_dim": 64, "projection_dim": 32, "epochs": 10, "learning_rate": 1e-2},
}


@pytest.fixture
def topic_set(rng) -> EmbeddingSet:
    """Three well-separated blobs of 60 rows, each with texts about its own topic and a label."""
    centres = np.eye(16)[:3] * 8
    truth = np.repeat(np.arange(3), 60)
    X = (centres[truth] + rng.normal(size=(truth.size, 16))).astype(np.float32)
    texts = [f"{TOPICS[t]} and some common words {i}" for i, t in enumerate(truth)]
    ids = np.array([f"row-{i}" for i in range(truth.size)], dtype=object)
    return EmbeddingSet(X, ids, {"text": texts, "topic": [f"topic-{t}" for t in truth]})


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_finds_the_planted_clusters(topic_set, method):
    k = "auto" if method in ("hdbscan", "leiden") else 3
    params = FAST.get(method, {})
    report = find_clusters(
        topic_set, method=method, n_clusters=k, metric="l2", labels="topic", random_state=0, **params
    )
    assert report.k == 3
    assert report.external.accuracy == pytest.approx(1.0, abs=0.02)
    assert report.confidence.shape == (180,) and (0 <= report.confidence).all() and (report.confidence <= 1).all()
    document = report.to_dict()
    assert {"method", "k", "k_selection", "metrics", "sizes", "clusters", "confidence"} <= set(document)
    assert document["metrics"]["external"]["nmi"] == pytest.approx(1.0, abs=0.05)


def test_clusters_are_named_by_their_texts_and_medoids(topic_set):
    report = find_clusters(topic_set, method="kmeans", n_clusters=3, metric="l2", random_state=0)
    named = {frozenset(entry["keywords"][:4]) for entry in report.clusters}
    assert named == {frozenset(words.split()) for words in TOPICS.values()}
    for entry in report.clusters:
        assert entry["size"] == 60 and len(entry["examples"]) == 5
        assert entry["medoid_id"].startswith("row-") and "text" in entry["examples"][0]


def test_auto_k_reports_its_curve(topic_set):
    report = find_clusters(topic_set, n_clusters="auto", metric="l2", k_values=[2, 3, 4, 5, 6], random_state=0)
    assert report.selection.best_k == 3 == report.k
    assert report.to_dict()["k_selection"]["k_values"] == [2, 3, 4, 5, 6]


def test_per_row_table_and_probabilities(topic_set):
    soft = find_clusters(topic_set, method="gmm", n_clusters=3, metric="l2", random_state=0)
    table = soft.to_table(topic_set.ids, proba=True)
    assert table.column_names == ["id", "cluster", "confidence", "probabilities"]
    proba = np.asarray(table.column("probabilities").combine_chunks().flatten()).reshape(180, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    hard = find_clusters(topic_set, method="kmeans", n_clusters=3, metric="l2", random_state=0)
    assert hard.to_table(topic_set.ids).column_names == ["id", "cluster", "confidence"]
    with pytest.raises(ConfigurationError, match="no cluster probabilities"):
        hard.to_table(topic_set.ids, proba=True)


def test_seeded_runs_are_identical(topic_set):
    a = find_clusters(topic_set, n_clusters=3, random_state=5)
    b = find_clusters(topic_set, n_clusters=3, random_state=5)
    np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"method": "spectral"}, ConfigurationError, "method must be one of"),
        ({"n_clusters": 0}, ConfigurationError, "n_clusters must be an integer >= 1, got 0"),
        ({"n_clusters": "many"}, ConfigurationError, "n_clusters must be an integer >= 1, got 'many'"),
        ({"labels": np.zeros(3)}, EmbeddingDataError, "3 labels for 180 rows"),
        ({"labels": "missing"}, EmbeddingDataError, "no column 'missing'"),
        ({"n_clusters": 3, "n_init": 2, "bogus": 1}, ConfigurationError, "method 'kmeans' has no parameter 'bogus'"),
    ],
)
def test_bad_requests(topic_set, kwargs, error, message):
    with pytest.raises(error, match=message):
        find_clusters(topic_set, **kwargs)
