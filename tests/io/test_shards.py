"""Shards: every format cut where its layout allows, the shards' rows together exactly those ``load`` reads,
files that disagree or vanish named; a memory budget, columns written per shard, a worker's cache."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedlab import ConfigurationError, EmbeddingDataError, EmbeddingSet, load
from embedlab.io.shards import COLUMNS_MANIFEST, open_shards, part_name, write_columns
from embedlab.scale import WorkerCache
from tests.conftest import write_all_formats


def _rows(sharded):
    chunks = [chunk for shard in sharded for chunk in shard.iter_chunks(batch_size=7)]
    return np.concatenate([c.vectors for c in chunks]), np.concatenate([c.ids for c in chunks])


@pytest.fixture
def emb(rng):
    vectors = rng.normal(size=(101, 6)).astype(np.float32)
    return EmbeddingSet(vectors, np.array([f"id-{i}" for i in range(101)], dtype=object), {"label": np.arange(101) % 4})


@pytest.mark.parametrize("kind", ["npy", "npz", "parquet", "feather", "lance"])
def test_the_shards_together_are_the_set(emb, tmp_path, kind):
    path = write_all_formats(emb, tmp_path)[kind]
    sharded = open_shards(path, shard_rows=30)
    loaded = load(path)
    vectors, ids = _rows(sharded)
    np.testing.assert_array_equal(vectors, loaded.vectors)
    np.testing.assert_array_equal(ids.astype(str), loaded.ids.astype(str))
    assert sharded.n_rows == 101 and sharded.dim == 6
    assert [s.number for s in sharded] == list(range(len(sharded)))
    starts = [s.start for s in sharded]
    assert starts == sorted(starts) and sum(s.n_rows for s in sharded) == 101
    if kind == "npy":
        assert [s.n_rows for s in sharded] == [30, 30, 30, 11]


def test_parquet_shards_are_runs_of_row_groups_across_the_files_of_a_folder(emb, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    table = emb.to_table()
    pq.write_table(table.slice(0, 60), folder / "a.parquet", row_group_size=20)
    pq.write_table(table.slice(60), folder / "b.parquet", row_group_size=15)
    sharded = open_shards(folder, shard_rows=40)
    # a: groups of 20 -> runs of 40 and 20; b: 41 rows in groups of 15, 15, 11 -> 30 and 11
    assert [(s.part.file.rsplit("/", 1)[1], s.n_rows, s.part.pieces) for s in sharded] == [
        ("a.parquet", 40, (0, 1)),
        ("a.parquet", 20, (2,)),
        ("b.parquet", 30, (0, 1)),
        ("b.parquet", 11, (2,)),
    ]
    vectors, ids = _rows(sharded)
    np.testing.assert_array_equal(vectors, emb.vectors)
    np.testing.assert_array_equal(ids, emb.ids)
    one_group = open_shards(folder, shard_rows=5)  # a row group is never split
    assert min(s.n_rows for s in one_group) == 11 and len(one_group) == 3 + 3


def test_a_shard_is_small_to_send(emb, tmp_path):
    import pickle

    path = write_all_formats(emb, tmp_path)["parquet"]
    shard = open_shards(path).shards[0]
    assert len(pickle.dumps(shard)) < 1000


def test_files_that_disagree_are_named(emb, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    table = emb.to_table()
    pq.write_table(table.slice(0, 50), folder / "a.parquet")
    pq.write_table(table.slice(50).drop_columns(["id"]), folder / "b.parquet")
    with pytest.raises(EmbeddingDataError, match=r"b.parquet: no column 'id', unlike the other files"):
        open_shards(folder)
    pq.write_table(table.slice(50).drop_columns(["label"]), folder / "b.parquet")
    with pytest.raises(EmbeddingDataError, match=r"b.parquet: no column 'label', unlike the other files"):
        open_shards(folder)
    wide = pa.table(
        {
            "id": ["x"],
            "embedding": pa.array([[1.0] * 7], type=pa.list_(pa.float32(), 7)),
            "label": pa.array([0], type=table.schema.field("label").type),
        }
    )
    pq.write_table(table.slice(50), folder / "b.parquet")
    pq.write_table(wide, folder / "c.parquet")
    with pytest.raises(EmbeddingDataError, match="files disagree on the vectors"):
        open_shards(folder)


def test_a_shard_that_vanishes_or_changes_is_named_when_read(emb, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    table = emb.to_table()
    pq.write_table(table.slice(0, 50), folder / "a.parquet")
    pq.write_table(table.slice(50), folder / "b.parquet")
    sharded = open_shards(folder)
    (folder / "b.parquet").write_bytes(b"PAR1 not a parquet file")
    with pytest.raises(EmbeddingDataError, match="b.parquet"):
        list(sharded.shards[1].iter_chunks())
    (folder / "b.parquet").unlink()
    with pytest.raises(EmbeddingDataError, match="b.parquet: no such file"):
        list(sharded.shards[1].iter_chunks())
    npy = tmp_path / "x.npy"
    np.save(npy, emb.vectors)
    shard = open_shards(npy).shards[0]
    np.save(npy, emb.vectors[:, :4])
    with pytest.raises(EmbeddingDataError, match="dimension 4, unlike the set's 6"):
        list(shard.iter_chunks())


def test_an_empty_set_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.empty((0, 3), dtype=np.float32))
    with pytest.raises(EmbeddingDataError, match="empty"):
        open_shards(path)
    assert sum(s.n_rows for s in open_shards(path, allow_empty=True)) == 0


def test_a_memory_budget_sizes_the_shards_and_refuses_what_it_cannot_hold(emb, tmp_path):
    paths = write_all_formats(emb, tmp_path)
    row_bytes = 4 * 6
    sized = open_shards(paths["npy"], memory_budget=2 * 25 * row_bytes)  # two shards of 25 rows fit
    assert max(shard.n_rows for shard in sized) == 25 and sum(shard.n_rows for shard in sized) == 101
    with pytest.raises(ConfigurationError, match=r"cannot hold two shards of 30 rows .*set.npy \(rows 0-29\)"):
        open_shards(paths["npy"], shard_rows=30, memory_budget=2 * 29 * row_bytes)
    # an .npz archive is one shard, never split
    with pytest.raises(ConfigurationError, match="cannot hold two shards of 101 rows"):
        open_shards(paths["npz"], memory_budget=1000)


def test_columns_are_written_beside_their_shards(emb, tmp_path):
    sharded = open_shards(write_all_formats(emb, tmp_path)["parquet"], shard_rows=30)
    labels = np.arange(101) % 7
    files = write_columns(sharded, {"cluster": labels}, tmp_path / "labels", document={"method": "test"})
    assert files == [part_name(shard) for shard in sharded]
    table = pq.read_table(tmp_path / "labels")  # the manifest is skipped by Arrow's folder reader
    assert table.column("id").to_pylist() == list(emb.ids)
    np.testing.assert_array_equal(table.column("cluster").to_numpy(), labels)
    manifest = json.loads((tmp_path / "labels" / COLUMNS_MANIFEST).read_text())
    assert manifest["method"] == "test" and manifest["columns"] == ["cluster"] and sum(manifest["rows"]) == 101
    with pytest.raises(ConfigurationError, match="'cluster' has 100 values for 101 rows"):
        write_columns(sharded, {"cluster": labels[:100]}, tmp_path / "short")
    assert not (tmp_path / "short").exists()
    with pytest.raises(FileExistsError):
        write_columns(sharded, {"cluster": labels}, tmp_path)  # not an earlier output: never replaced


def test_a_worker_cache_serves_the_shard_again_until_its_file_changes(emb, tmp_path, monkeypatch):
    from embedlab.scale import _backend

    path = write_all_formats(emb, tmp_path)["npy"]
    sharded = open_shards(path, shard_rows=60)
    monkeypatch.setattr(_backend, "_WORKER_CACHE", WorkerCache(10**6))
    first = _rows(sharded)[0]
    cache = _backend.worker_cache()
    assert (cache.hits, cache.misses) == (0, 2)
    np.testing.assert_array_equal(_rows(sharded)[0], first)
    assert (cache.hits, cache.misses) == (2, 2)
    changed = np.load(path) + 1
    np.save(path, changed)
    os.utime(path, ns=(1, 1))  # another modification time, whatever the clock's resolution
    np.testing.assert_array_equal(_rows(sharded)[0], changed)
    assert cache.misses == 4
