"""compress_shards: a collection written shard by shard equals the one built from the set in memory."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import embedlab
from embedlab import EmbeddingDataError
from embedlab.compress import Codec, CompressedCollection, compress_shards
from embedlab.io.shards import open_shards


def _same(found: CompressedCollection, expected: CompressedCollection) -> None:
    np.testing.assert_array_equal(found.codes, expected.codes)
    np.testing.assert_array_equal(found.ids, expected.ids)
    assert found.codec.to_dict() == expected.codec.to_dict()
    assert (found.vectors is None) == (expected.vectors is None)
    if expected.vectors is not None:
        np.testing.assert_array_equal(found.vectors, expected.vectors)


@pytest.mark.parametrize("spec", ["pca:8+int8", "int8+rescore:4"])
def test_shards_give_the_collection_of_the_set_in_memory_training_sample_included(tmp_path, rng, spec):
    # more rows than the codec trains on: the sample is drawn from the whole set, its rows read from their shards
    n = Codec(spec).max_train_rows + 4_500
    X = (rng.normal(size=(n, 16)) * np.linspace(3, 0.2, 16)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, X)
    expected = CompressedCollection.build(embedlab.load(path), spec, random_state=3)
    found = compress_shards(path, spec, tmp_path / "sharded", shard_rows=9_000, random_state=3)
    assert len(open_shards(path, shard_rows=9_000)) == 8
    _same(found, expected)
    expected.save(tmp_path / "in-memory")
    _same(CompressedCollection.open(tmp_path / "sharded"), CompressedCollection.open(tmp_path / "in-memory"))
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir()) == sorted(
        p.name for p in (tmp_path / "in-memory").iterdir()
    )
    np.testing.assert_array_equal(found.search(X[:5], 3).indices, expected.search(X[:5], 3).indices)


def _folder(tmp_path, X, ids):
    folder = tmp_path / "parts"
    folder.mkdir()
    table = pa.table({"id": ids, "embedding": pa.array(list(X), type=pa.list_(pa.float32(), X.shape[1]))})
    for i in range(3):
        pq.write_table(table.slice(100 * i, 100), folder / f"part-{i}.parquet", row_group_size=40)
    return folder


def test_ids_of_a_parquet_folder_are_kept_in_row_order(tmp_path, rng):
    X = rng.normal(size=(300, 12)).astype(np.float32)
    folder = _folder(tmp_path, X, [f"doc-{i}" for i in range(300)])
    found = compress_shards(folder, "pca:6+int8", tmp_path / "c", random_state=0)
    expected = CompressedCollection.build(embedlab.load(folder), "pca:6+int8", random_state=0)
    _same(found, expected)
    assert found.ids.tolist() == [f"doc-{i}" for i in range(300)]
    assert found.search(X[[7]], 1).ids.tolist() == [["doc-7"]]


def test_an_invalid_row_or_unreadable_shard_is_named_and_nothing_is_written(tmp_path, rng):
    X = rng.normal(size=(300, 12)).astype(np.float32)
    X[250, 4] = np.nan
    folder = _folder(tmp_path, X, list(range(300)))
    with pytest.raises(EmbeddingDataError, match=r"part-2\.parquet \(rows"):
        compress_shards(folder, "int8", tmp_path / "c")
    raw = bytearray((folder / "part-1.parquet").read_bytes())
    raw[100:300] = bytes(200)
    (folder / "part-1.parquet").write_bytes(bytes(raw))
    with pytest.raises(EmbeddingDataError, match=r"part-1\.parquet"):
        compress_shards(open_shards(folder), "int8", tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts"]  # no collection, no staging left behind


def test_an_existing_folder_that_is_no_collection_is_refused(tmp_path, rng):
    path = tmp_path / "x.npy"
    np.save(path, rng.normal(size=(50, 4)).astype(np.float32))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="is not an earlier output"):
        compress_shards(path, "int8", tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
