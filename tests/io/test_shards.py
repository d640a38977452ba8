"""Shards: every format cut where its layout allows, the shards' rows together exactly those ``load`` reads,
and files that disagree or vanish named."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedlab import EmbeddingDataError, EmbeddingSet, load
from embedlab.io.shards import open_shards
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
    wide = pa.table({"id": ["x"], "embedding": pa.array([[1.0] * 7], type=pa.list_(pa.float32(), 7))})
    (folder / "b.parquet").unlink()
    pq.write_table(
        pa.table({"id": table.column("id").slice(50), "embedding": table.column("embedding").slice(50)}),
        folder / "b.parquet",
    )
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
