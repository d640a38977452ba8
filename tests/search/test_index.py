"""Indexes tuned to a target recall: the target met on queries they were not tuned on, the card recounted
independently, save/open round trips, damaged directories and bad requests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet
from embedlab.neighbors import Searcher
from embedlab.search import Index, build_index

#: Every set here (data, given queries, fresh queries) is drawn around the same 30 centres.
CENTRES = np.random.default_rng(7).normal(size=(30, 32)) * 2.5


def _clustered(rng, n=6000):
    return (CENTRES[rng.integers(0, len(CENTRES), n)] + rng.normal(size=(n, CENTRES.shape[1]))).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = _clustered(rng)
    ids = np.array([f"row-{i}" for i in range(len(X))], dtype=object)
    queries = _clustered(np.random.default_rng(8), n=800)
    return EmbeddingSet(X, ids), queries


def _brute_recall(X, Q, found, k, metric):
    if metric == "cosine":
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
        Q = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        distances = 1.0 - Q.astype(np.float64) @ X.T.astype(np.float64)
    elif metric == "l2":
        distances = np.linalg.norm(Q[:, None, :].astype(np.float64) - X[None], axis=2)
    else:
        distances = -(Q.astype(np.float64) @ X.T)
    kth = np.sort(distances, axis=1)[:, k - 1 : k]
    hit = np.take_along_axis(distances, found, axis=1) <= kth + 1e-5
    return float(hit.mean())


@pytest.fixture(scope="module")
def tuned(data):
    emb, queries = data
    return build_index(emb, k=10, target_recall=0.9, queries=queries, n_queries=400, random_state=0)


def test_the_target_is_met_on_queries_the_index_was_not_tuned_on(data, tuned):
    emb, _ = data
    card = tuned.card
    assert card.recall >= 0.9 and card.ci_low <= card.recall <= card.ci_high
    assert card.n_tuning_queries == card.n_validation_queries == 400
    assert len(set(card.validation_rows)) == 400
    # queries neither tuned nor validated on
    fresh = _clustered(np.random.default_rng(99), n=400)
    found = tuned.search(fresh).indices
    assert _brute_recall(emb.vectors, fresh, found, 10, "cosine") >= 0.9


def test_the_card_equals_an_independent_count(data, tuned):
    emb, queries = data
    validation = queries[tuned.card.validation_rows]
    found = tuned.search(validation, 10).indices
    # float64 here, float32 in the card: a neighbour tied with the k-th within rounding may count differently
    one_neighbour = 1 / (400 * 10)
    assert _brute_recall(emb.vectors, validation, found, 10, "cosine") == pytest.approx(
        tuned.card.recall, abs=2 * one_neighbour
    )
    strata_queries = sum(s.n_queries for s in tuned.card.by_cluster)
    assert strata_queries == 400 and sum(s.n_queries for s in tuned.card.by_lid) == 400
    weighted = sum(s.recall * s.n_queries for s in tuned.card.by_cluster) / 400
    assert weighted == pytest.approx(tuned.card.recall, abs=1e-9)
    assert tuned.card.worst and tuned.card.sweep and tuned.card.memory_bytes > 0
    assert tuned.card.intrinsic_dimension > 5


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"method": "hnsw"}, "hnsw"),
        ({"method": "ivf"}, "ivf"),
        ({"method": "ivfpq"}, "ivfpq"),
        ({"codec": "int8"}, "codec"),
        ({"metric": "l2"}, "hnsw"),
    ],
)
def test_every_kind_meets_the_target_with_held_out_rows(data, kwargs, kind):
    emb, _ = data
    index = build_index(emb, k=5, target_recall=0.95, n_queries=300, random_state=1, **kwargs)
    assert index.params.method == kind and len(index) == len(emb)
    assert index.card.recall >= 0.95 - 0.02  # the validation half: a fresh sample of the tuned recall
    metric = kwargs.get("metric", "cosine")
    fresh = _clustered(np.random.default_rng(5), n=300)
    assert _brute_recall(emb.vectors, fresh, index.search(fresh).indices, 5, metric) >= 0.93
    # held-out rows were added back: every row finds itself
    probe = emb.vectors[index.card.validation_rows[:50]]
    assert (index.search(probe, 1).ids[:, 0] == emb.ids[index.card.validation_rows[:50]]).all()


def test_a_memory_budget_moves_auto_to_a_smaller_index(data):
    emb, _ = data
    hnsw_bytes = build_index(emb, k=5, target_recall=0.9, n_queries=200).card.memory_bytes
    small = build_index(emb, k=5, target_recall=0.9, n_queries=200, memory_budget=hnsw_bytes // 3)
    assert small.params.method in ("ivf", "ivfpq") and small.card.memory_bytes <= hnsw_bytes // 3
    with pytest.raises(ConfigurationError, match="fits a memory budget of 1,000 bytes"):
        build_index(emb, memory_budget=1000)


def test_save_and_open_round_trip(data, tuned, tmp_path):
    _, queries = data
    path = tuned.save(tmp_path / "idx")
    opened = Index.open(path)
    assert isinstance(opened, Searcher) and opened.params == tuned.params
    before, after = tuned.search(queries[:20]), opened.search(queries[:20])
    np.testing.assert_array_equal(before.indices, after.indices)
    np.testing.assert_array_equal(before.ids, after.ids)
    assert opened.card == tuned.card and opened.provenance["random_state"] == 0


def test_query_time_overrides_apply_to_one_search(data, tuned):
    _, queries = data
    wide = tuned.search(queries[:10], ef_search=300)
    assert wide.params.ef_search == 300 and tuned.search(queries[:10]).params == tuned.params.resolve(0, 10, 0)
    with pytest.raises(ConfigurationError, match="a hnsw index has no nprobe"):
        tuned.search(queries[:10], nprobe=4)


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove", "manifest"])
def test_a_damaged_index_names_the_file(data, tuned, tmp_path, damage):
    path = tuned.save(tmp_path / "idx")
    target = path / "index.faiss"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-100])
    elif damage == "flip":
        raw = bytearray(target.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        target.write_bytes(bytes(raw))
    elif damage == "remove":
        (path / "ids.parquet").unlink()
    else:
        (path / "index.json").write_text("{not json")
    expected = {
        "truncate": "index.faiss is not the file the index was saved with",
        "flip": "index.faiss is not the file the index was saved with",
        "remove": "ids.parquet is missing from the index",
        "manifest": "index.json is not a readable index manifest",
    }[damage]
    with pytest.raises(EmbeddingDataError, match=expected):
        Index.open(path)


def test_a_manifest_of_another_format(tmp_path):
    (tmp_path / "index.json").write_text(json.dumps({"format": 99, "files": {}}))
    with pytest.raises(EmbeddingDataError, match="format 99"):
        Index.open(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_recall": 0.0}, "target_recall must be positive"),
        ({"target_recall": 1.5}, "target_recall must be positive and at most 1"),
        ({"k": 6000}, "k must be an integer between 1 and"),
        ({"method": "lsh"}, "method must be one of"),
        ({"metric": "manhattan"}, "metric must be one of"),
        ({"codec": "int8", "method": "hnsw"}, "either --codec or --method"),
        ({"codec": "int8", "metric": "l2"}, "metric"),
        ({"memory_budget": 0}, "memory_budget must be an integer >= 1"),
    ],
)
def test_bad_requests_are_named(data, kwargs, message):
    emb, _ = data
    with pytest.raises(ConfigurationError, match=message):
        build_index(emb, n_queries=100, **kwargs)


def test_queries_of_another_dimension_and_an_impossible_target(data):
    emb, queries = data
    with pytest.raises(EmbeddingDataError, match="queries has 8 features, but it is expecting 32 features"):
        build_index(emb, queries=queries[:, :8])
    unstructured = np.random.default_rng(3).normal(size=(6000, 32)).astype(np.float32)
    with pytest.raises(ConfigurationError, match="no configuration reaches recall@10 1: the best measured is"):
        build_index(unstructured, method="ivf", target_recall=1.0, n_queries=200)
    index = build_index(emb, k=10, target_recall=0.9, queries=queries, n_queries=100)
    with pytest.raises(EmbeddingDataError, match="queries has 8 features"):
        index.search(queries[:3, :8])
