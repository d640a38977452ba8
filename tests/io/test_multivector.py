"""MultiVectorSet and its files: round trips through Parquet and Lance, streaming, and the bad inputs named."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedlab import EmbeddingDataError
from embedlab.io.multivector import MultiVectorSet, iter_multivector_batches, load_multivector


def _rows(n=30, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(rng.integers(1, 9)), dim)).astype(np.float32) for _ in range(n)]


def test_round_trip_through_parquet(tmp_path):
    rows = _rows()
    mv = MultiVectorSet.from_matrices(rows, ids=[f"d{i}" for i in range(30)], metadata={"label": np.arange(30) % 3})
    mv.to_parquet(tmp_path / "mv.parquet")
    field = pq.read_schema(tmp_path / "mv.parquet").field("tokens")
    assert field.type == pa.list_(pa.list_(pa.float32(), 6))
    got = load_multivector(tmp_path / "mv.parquet")
    assert got.ids.tolist() == mv.ids.tolist() and got.lengths.tolist() == [len(r) for r in rows]
    for i, r in enumerate(rows):
        np.testing.assert_array_equal(got[i], r)
    assert got.metadata.column("label").to_pylist() == (np.arange(30) % 3).tolist()


def test_streamed_batches_cover_the_file_once(tmp_path):
    mv = MultiVectorSet.from_matrices(_rows(100))
    pq.write_table(mv.to_table(), tmp_path / "mv.parquet", row_group_size=17)
    batches = list(iter_multivector_batches(tmp_path / "mv.parquet", 10))
    assert max(len(b) for b in batches) <= 10 and sum(len(b) for b in batches) == 100
    assert np.concatenate([b.ids for b in batches]).tolist() == list(range(100))
    np.testing.assert_array_equal(np.concatenate([b.vectors for b in batches]), mv.vectors)


def test_lance_and_nested_lists_are_read(tmp_path):
    lance = pytest.importorskip("lance")
    rows = _rows(12)
    mv = MultiVectorSet.from_matrices(rows)
    lance.write_dataset(mv.to_table(), str(tmp_path / "mv.lance"))
    np.testing.assert_array_equal(load_multivector(tmp_path / "mv.lance").vectors, mv.vectors)
    nested = pa.table({"id": np.arange(12), "colbert": pa.array([r.tolist() for r in rows])})
    pq.write_table(nested, tmp_path / "nested.parquet")
    got = load_multivector(tmp_path / "nested.parquet")
    np.testing.assert_allclose(got.vectors, mv.vectors)
    assert got.dim == 6


def test_take_and_row_blocks():
    mv = MultiVectorSet.from_matrices(_rows(20), ids=np.arange(20) * 2)
    sub = mv.take([5, 0, 5 + 1])
    assert sub.ids.tolist() == [10, 0, 12]
    np.testing.assert_array_equal(sub[0], mv[5])
    blocks = mv.row_blocks(10)
    assert blocks[0][0] == 0 and blocks[-1][1] == 20
    assert all(b[1] > b[0] for b in blocks) and all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
    for start, stop in blocks:
        assert stop - start == 1 or mv.offsets[stop] - mv.offsets[start] <= 10


@pytest.mark.parametrize(
    ("column", "match"),
    [
        (pa.array([[[1.0, 2.0]], [[1.0, 2.0, 3.0]]]), "different dimensions.*row 1"),
        (pa.array([[[1.0, 2.0]], []], type=pa.list_(pa.list_(pa.float32(), 2))), "no token vectors.*ids 1"),
        (pa.array([[[1.0, 2.0]], None], type=pa.list_(pa.list_(pa.float32(), 2))), "no token list"),
        (pa.array([[[1.0, float("nan")]], [[1.0, 2.0]]], type=pa.list_(pa.list_(pa.float32(), 2))), "NaN"),
        (pa.array([[1.0, 2.0]]), "no column of token vectors"),
    ],
)
def test_bad_files_are_named(tmp_path, column, match):
    pq.write_table(pa.table({"x": column}), tmp_path / "bad.parquet")
    with pytest.raises(EmbeddingDataError, match=match) as err:
        load_multivector(tmp_path / "bad.parquet")
    assert "bad.parquet" in str(err.value)


def test_bad_arrays_are_refused():
    with pytest.raises(EmbeddingDataError, match="one dimension"):
        MultiVectorSet.from_matrices([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(EmbeddingDataError, match="offsets"):
        MultiVectorSet(np.ones((4, 2)), [0, 2, 3])
    with pytest.raises(EmbeddingDataError, match="repeat"):
        MultiVectorSet.from_matrices([np.ones((1, 2)), np.ones((1, 2))], ids=["a", "a"])
    with pytest.raises(EmbeddingDataError, match="no such file"):
        load_multivector("/nonexistent/x.parquet")


def test_loading_a_multivector_file_as_single_vectors_says_what_it_is(tmp_path):
    import embedlab

    MultiVectorSet.from_matrices(_rows(3)).to_parquet(tmp_path / "mv.parquet")
    with pytest.raises(EmbeddingDataError, match="multi-vector set.*load_multivector"):
        embedlab.load(tmp_path / "mv.parquet")
