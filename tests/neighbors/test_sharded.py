"""The kNN graph of a sharded set against ``knn`` on the whole set in memory: the same neighbours and distances,
each row's own row left out (its duplicates kept), ids carried, a directory that appears whole."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedlab import ConfigurationError
from embedlab.io.shards import open_shards
from embedlab.neighbors import GRAPH_MANIFEST, knn, knn_graph_shards


def _graph(path):
    manifest = json.loads((path / GRAPH_MANIFEST).read_text())
    table = pa.concat_tables([pq.read_table(path / name) for name in manifest["files"]])
    rows = np.stack(table.column("neighbor_rows").to_numpy(zero_copy_only=False))
    distances = np.stack(table.column("distances").to_numpy(zero_copy_only=False))
    ids = np.stack(table.column("neighbor_ids").to_numpy(zero_copy_only=False))
    return manifest, table.column("id").to_numpy(zero_copy_only=False), rows, distances, ids


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_the_sharded_graph_is_the_graph_in_memory(tmp_path, rng, metric):
    X = rng.normal(size=(1300, 12)).astype(np.float32)
    X[1200] = X[17]  # a duplicate in another shard: found at distance 0
    ids = np.array([f"doc-{i}" for i in range(1300)], dtype=object)
    table = pa.table({"id": ids, "embedding": pa.array(list(X), type=pa.list_(pa.float32(), 12))})
    pq.write_table(table, tmp_path / "set.parquet", row_group_size=100)
    sharded = open_shards(tmp_path / "set.parquet", shard_rows=400)
    graph = knn_graph_shards(sharded, tmp_path / "graph", k=7, metric=metric)
    manifest, query_ids, rows, distances, neighbor_ids = _graph(tmp_path / "graph")
    expected = knn(X, 7, metric=metric, method="exact", exclude_self=True)
    assert graph.files == tuple(manifest["files"]) and len(graph.files) == len(sharded) == 4
    np.testing.assert_array_equal(query_ids, ids)
    np.testing.assert_allclose(distances, expected.distances, atol=1e-5)
    differ = rows != expected.indices
    # only where two rows lie at the same distance (the duplicated pair) may the order differ
    tied = np.isin(expected.indices, [17, 1200]) | np.isin(rows, [17, 1200])
    assert differ.sum() < 20 and not (differ & ~tied).any()
    np.testing.assert_array_equal(neighbor_ids, ids[rows])
    assert rows[17, 0] == 1200 and rows[1200, 0] == 17 and distances[17, 0] == pytest.approx(0.0, abs=1e-6)
    assert not (rows == np.arange(1300)[:, None]).any()


def test_k_and_the_output_are_checked(tmp_path, rng):
    path = tmp_path / "x.npy"
    np.save(path, rng.normal(size=(30, 4)).astype(np.float32))
    sharded = open_shards(path, shard_rows=8)
    with pytest.raises(ConfigurationError, match=r"between 1 and 29 \(the rows of the set, less one\)"):
        knn_graph_shards(sharded, tmp_path / "g", k=30)
    small = knn_graph_shards(sharded, tmp_path / "g", k=29, metric="l2")  # every other row, across 4 shards
    _, _, rows, _, _ = _graph(tmp_path / "g")
    assert small.k == 29 and (np.sort(rows, axis=1) == [np.delete(np.arange(30), i) for i in range(30)]).all()
    knn_graph_shards(sharded, tmp_path / "g", k=3)  # an earlier graph is replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not an earlier output"):
        knn_graph_shards(sharded, tmp_path / "mine", k=3)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
