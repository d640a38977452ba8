"""An index per shard: built with given or tuned parameters, searched through ``ShardedSearcher`` and used for
the kNN graph, against exact search; indexes that no longer match their data, and bad requests."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from embedlab import ConfigurationError, EmbeddingDataError
from embedlab.io.shards import open_shards
from embedlab.io.validation import prepare
from embedlab.neighbors import (
    ExactParams,
    HNSWParams,
    ShardedSearcher,
    knn,
    knn_graph_shards,
    recall_at_k,
    rerank,
)
from embedlab.search import ShardIndexes, build_shard_graph, build_shard_indexes


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    rng = np.random.default_rng(8)
    centres = rng.normal(size=(30, 24)) * 3
    X = (centres[rng.integers(0, 30, 6000)] + rng.normal(size=(6000, 24))).astype(np.float32)
    queries = (centres[rng.integers(0, 30, 300)] + rng.normal(size=(300, 24))).astype(np.float32)
    path = tmp_path_factory.mktemp("clustered") / "x.npy"
    np.save(path, X)
    return path, X, queries


def test_shard_indexes_search_like_exact_search(clustered, tmp_path):
    path, X, queries = clustered
    sharded = open_shards(path, shard_rows=1500)
    indexes = build_shard_indexes(sharded, tmp_path / "idx", params=HNSWParams(M=16, ef_search=64), metric="l2")
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == [
        "_indexes.json",
        *(f"part-0000{i}.faiss" for i in range(4)),
    ]
    assert indexes.card is None and ShardIndexes.open(tmp_path / "idx") == indexes
    truth = knn(X, k=10, metric="l2", queries=queries)
    exact = ShardedSearcher(sharded, "l2").search(queries, 10)
    np.testing.assert_array_equal(exact.indices, truth.indices)
    assert exact.params == ExactParams()
    found = ShardedSearcher(sharded, "l2", searchers=indexes).search(queries, 10)
    assert found.params == indexes.params
    assert recall_at_k(found.distances, truth.distances) > 0.97
    # the merged lists are sorted, and their distances are the exact ones (L2 is refined from the rows)
    assert (np.diff(found.distances, axis=1) >= 0).all()
    np.testing.assert_allclose(found.distances, np.linalg.norm(queries[:, None] - X[found.indices], axis=2), rtol=1e-4)


def test_tuned_shard_indexes_deliver_the_target_on_fresh_queries(clustered, tmp_path):
    path, X, queries = clustered
    sharded = open_shards(path, shard_rows=3000)
    indexes = build_shard_indexes(sharded, tmp_path / "tuned", target_recall=0.9, metric="cosine", n_queries=300)
    assert indexes.card is not None and indexes.card["target_recall"] == 0.9
    assert ShardIndexes.open(tmp_path / "tuned").card == indexes.card
    truth = knn(X, k=10, metric="cosine", queries=queries)
    found = ShardedSearcher(sharded, "cosine", searchers=indexes).search(queries, 10)
    rows, asked = prepare(X, "cosine"), prepare(queries, "cosine")
    assert recall_at_k(rerank(rows.vectors, asked.vectors, found.indices, "cosine", 10)[0], truth.distances) >= 0.9


def test_the_knn_graph_through_shard_indexes(clustered, tmp_path):
    path, X, _ = clustered
    sharded = open_shards(path, shard_rows=2000)
    indexes = build_shard_indexes(sharded, tmp_path / "idx", params=HNSWParams(M=16, ef_search=48), metric="l2")
    graph = knn_graph_shards(sharded, tmp_path / "graph", k=8, metric="l2", searchers=indexes)
    table = pq.read_table(tmp_path / "graph")
    rows = np.stack(table.column("neighbor_rows").to_numpy(zero_copy_only=False))
    distances = np.stack(table.column("distances").to_numpy(zero_copy_only=False))
    assert graph.n_rows == 6000 and rows.shape == (6000, 8)
    assert not (rows == np.arange(6000)[:, None]).any()  # no row is its own neighbour
    assert recall_at_k(distances, knn(X, k=8, metric="l2").distances) > 0.97


@pytest.mark.parametrize("method", ["exact", "hnsw"])
def test_build_shard_graph_builds_the_indexes_a_method_needs_and_leaves_only_the_graph(clustered, tmp_path, method):
    path, X, _ = clustered
    sharded = open_shards(path, shard_rows=2000)
    graph = build_shard_graph(sharded, tmp_path / "graph", 8, method=method, storage="flat", metric="l2")
    assert graph.params.method == method and graph.to_dict()["method"] == method
    assert method == "exact" or graph.params.storage == "flat"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph"]  # the shards' indexes were scratch
    distances = np.stack(pq.read_table(tmp_path / "graph").column("distances").to_numpy(zero_copy_only=False))
    assert recall_at_k(distances, knn(X, k=8, metric="l2").distances) > (0.999 if method == "exact" else 0.97)


def test_indexes_that_no_longer_match_their_data_are_refused(clustered, tmp_path):
    path, _, queries = clustered
    indexes = build_shard_indexes(
        open_shards(path, shard_rows=1500), tmp_path / "idx", params=HNSWParams(M=8), metric="l2"
    )
    other = open_shards(path, shard_rows=2000)  # other shards than the indexes were built on
    with pytest.raises(EmbeddingDataError, match=r"part-00000.faiss indexes 1500 rows .* has 2000"):
        ShardedSearcher(other, "l2", searchers=indexes).search(queries, 5)
    (tmp_path / "idx" / "part-00001.faiss").write_bytes(b"not an index")
    with pytest.raises(EmbeddingDataError, match="part-00001.faiss: cannot be read as a faiss index"):
        ShardedSearcher(open_shards(path, shard_rows=1500), "l2", searchers=indexes).search(queries, 5)
    with pytest.raises(EmbeddingDataError, match="holds no per-shard indexes"):
        ShardIndexes.open(tmp_path)
    with pytest.raises(ConfigurationError, match="not 'exact'"):
        build_shard_indexes(open_shards(path), tmp_path / "bad", params=ExactParams())
    assert not (tmp_path / "bad").exists()
