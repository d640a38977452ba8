from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embedlab
from embedlab import EmbeddingDataError, EmbeddingSet
from embedlab.io import iter_batches, load, open_source

FORMATS = ["parquet", "npy", "npz", "feather", "lance"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips(labelled_set, write_formats, fmt):
    path = write_formats(labelled_set)[fmt]
    emb = load(path)
    np.testing.assert_array_equal(emb.vectors, labelled_set.vectors)
    if fmt == "npy":
        np.testing.assert_array_equal(emb.ids, np.arange(len(labelled_set)))
    else:
        assert emb.ids.astype(str).tolist() == labelled_set.ids.astype(str).tolist()
        np.testing.assert_array_equal(emb.column("label"), labelled_set.column("label"))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("batch_size", [1, 7, 300, 1000])
def test_iter_batches_equals_load(labelled_set, write_formats, fmt, batch_size):
    path = write_formats(labelled_set)[fmt]
    batches = list(iter_batches(path, batch_size=batch_size))
    assert all(len(b) == batch_size for b in batches[:-1]) and 0 < len(batches[-1]) <= batch_size
    np.testing.assert_array_equal(np.concatenate([b.vectors for b in batches]), load(path).vectors)
    ids = np.concatenate([b.ids for b in batches])
    assert ids.astype(str).tolist() == load(path).ids.astype(str).tolist()


def test_parquet_round_trip_keeps_provenance(tmp_path, vectors):
    emb = EmbeddingSet(vectors, model="my-model", source="x")
    back = load(emb.to_parquet(tmp_path / "a.parquet"))
    assert back.model == "my-model"
    assert open_source(tmp_path / "a.parquet").info.provenance["embedlab_version"] == embedlab.__version__


def test_npy_float32_is_memory_mapped(tmp_path, vectors):
    np.save(tmp_path / "v.npy", vectors)
    emb = load(tmp_path / "v.npy")
    # A read-only view of the mapped file, not a copy.
    assert not emb.vectors.flags.owndata and not emb.vectors.flags.writeable


def test_float16_on_disk_becomes_float32(tmp_path, vectors):
    np.save(tmp_path / "v.npy", vectors.astype(np.float16))
    emb = load(tmp_path / "v.npy")
    assert emb.vectors.dtype == np.float32
    np.testing.assert_allclose(emb.vectors, vectors, atol=1e-2)
    assert open_source(tmp_path / "v.npy").info.dtype == "float16"


@pytest.mark.parametrize(
    "make_column",
    [
        lambda v: pa.array(list(v), type=pa.list_(pa.float32())),
        lambda v: pa.array(list(v), type=pa.large_list(pa.float64())),
        lambda v: pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1).astype(np.float16)), v.shape[1]),
        lambda v: pa.array([row.tobytes() for row in v], type=pa.binary()),
        lambda v: pa.array([row.tobytes() for row in v], type=pa.binary(v.shape[1] * 4)),
    ],
    ids=["list", "large_list_f64", "fixed_size_list_f16", "binary", "fixed_size_binary"],
)
def test_vector_column_kinds_are_detected(table_with, vectors, make_column):
    path = table_with({"vec": make_column(vectors), "label": np.arange(len(vectors))})
    emb = load(path)
    np.testing.assert_allclose(emb.vectors, vectors, atol=1e-2)
    assert emb.columns == ["label"]


def test_sliced_binary_batches_read_correctly(table_with, vectors):
    path = table_with({"vec": pa.array([row.tobytes() for row in vectors], type=pa.binary())})
    got = np.concatenate([b.vectors for b in iter_batches(path, batch_size=37)])
    np.testing.assert_array_equal(got, vectors)


def test_ragged_list_column_names_rows(table_with):
    path = table_with({"embedding": pa.array([[1.0, 2.0], [1.0, 2.0], [1.0], [1.0, 2.0, 3.0]])})
    with pytest.raises(EmbeddingDataError, match=r"different lengths.*row 2 has 1, row 3 has 3"):
        load(path)


def test_dimension_mismatch_between_batches(table_with):
    path = table_with({"embedding": pa.array([[1.0, 2.0]] * 10 + [[1.0, 2.0, 3.0]] * 5)})
    with pytest.raises(EmbeddingDataError, match="row 10 has 3"):
        list(iter_batches(path, batch_size=4))


def test_non_numeric_column_is_not_a_vector_column(table_with):
    path = table_with({"embedding": pa.array([["a", "b"], ["c", "d"]])})
    with pytest.raises(EmbeddingDataError, match="no vector column"):
        load(path)
    with pytest.raises(EmbeddingDataError, match="not a vector column"):
        load(path, column="embedding")


def test_ambiguous_vector_columns_ask_for_column(table_with):
    path = table_with({"a": pa.array([[1.0, 2.0]] * 3), "b": pa.array([[1.0, 2.0]] * 3)})
    with pytest.raises(EmbeddingDataError, match="several columns.*--column"):
        load(path)
    assert load(path, column="b").columns == ["a"]


def test_null_vectors_are_reported(table_with):
    path = table_with({"embedding": pa.array([[1.0, 2.0], None, [3.0, 4.0]])})
    with pytest.raises(EmbeddingDataError, match=r"no vector \(null\) at rows \[1\]"):
        load(path)


def test_empty_file(table_with):
    path = table_with({"embedding": pa.array([], type=pa.list_(pa.float32()))})
    with pytest.raises(EmbeddingDataError, match="empty"):
        load(path)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(EmbeddingDataError, match="no such file"):
        load(tmp_path / "absent.parquet")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(EmbeddingDataError, match="unknown format .csv"):
        load(tmp_path / "x.csv")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(EmbeddingDataError, match="bad.parquet"):
        load(tmp_path / "bad.parquet")


def test_duplicate_ids_fail_then_drop(table_with):
    path = table_with({"id": ["a", "b", "a"], "embedding": pa.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])})
    with pytest.raises(EmbeddingDataError, match="duplicate id.*'a'"):
        load(path)
    emb = load(path, on_invalid="drop")
    assert emb.ids.tolist() == ["a", "b"]
    assert emb.validation.to_dict()["dropped"][0]["ids"] == ["a"]


def test_duplicate_ids_across_batches(table_with):
    ids = [f"id{i}" for i in range(10)] + ["id3"]
    path = table_with({"id": ids, "embedding": pa.array([[float(i), 1.0] for i in range(11)])})
    with pytest.raises(EmbeddingDataError, match="earlier batch.*'id3'"):
        list(iter_batches(path, batch_size=4))
    batches = list(iter_batches(path, batch_size=4, on_invalid="drop"))
    assert sum(len(b) for b in batches) == 10
    assert batches[-1].validation.n_dropped == 1


def test_nan_rows_in_a_batch_name_the_rows(table_with):
    rows = [[1.0, 2.0]] * 8
    rows[6] = [float("nan"), 1.0]
    path = table_with({"embedding": pa.array(rows)})
    with pytest.raises(EmbeddingDataError, match=r"rows 4-7.*ids 6"):
        list(iter_batches(path, batch_size=4))


def test_parquet_directory_is_one_dataset(tmp_path, vectors):
    folder = tmp_path / "shards"
    folder.mkdir()
    EmbeddingSet(vectors[:100], np.arange(100)).to_parquet(folder / "part-0.parquet")
    EmbeddingSet(vectors[100:], np.arange(100, 300)).to_parquet(folder / "part-1.parquet")
    np.testing.assert_array_equal(load(folder).vectors, vectors)


def test_npz_with_labels(tmp_path, vectors):
    np.savez(tmp_path / "a.npz", vectors=vectors, label=np.arange(len(vectors)) % 2)
    emb = load(tmp_path / "a.npz")
    assert emb.columns == ["label"] and emb.ids[-1] == len(vectors) - 1


def test_npz_extra_array_of_wrong_length(tmp_path, vectors):
    np.savez(tmp_path / "a.npz", vectors=vectors, label=np.arange(3))
    with pytest.raises(EmbeddingDataError, match="'label' has shape"):
        load(tmp_path / "a.npz")


def test_npy_of_wrong_rank(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(5))
    with pytest.raises(EmbeddingDataError, match="2-D"):
        load(tmp_path / "a.npy")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 40),
    dim=st.integers(1, 9),
    batch=st.integers(1, 50),
    kind=st.sampled_from(["list", "fixed", "binary"]),
)
def test_parquet_stream_matches_source_for_any_shape(tmp_path_factory, n, dim, batch, kind):
    rng = np.random.default_rng(n * 100 + dim)
    vectors = rng.normal(size=(n, dim)).astype(np.float32) + 3.0
    if kind == "list":
        column = pa.array(list(vectors), type=pa.list_(pa.float32()))
    elif kind == "fixed":
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)
    else:
        column = pa.array([row.tobytes() for row in vectors], type=pa.binary())
    path = tmp_path_factory.mktemp("h") / "v.parquet"
    pq.write_table(pa.table({"embedding": column}), path, row_group_size=max(1, n // 3))
    got = np.concatenate([b.vectors for b in iter_batches(path, batch_size=batch)])
    np.testing.assert_array_equal(got, vectors)


def test_parquet_folder_with_mismatched_dimensions(tmp_path):
    folder = tmp_path / "parts"
    EmbeddingSet(np.ones((3, 2)), ids=[0, 1, 2]).to_parquet(folder / "a.parquet")
    EmbeddingSet(np.ones((3, 3)), ids=[3, 4, 5]).to_parquet(folder / "b.parquet")
    with pytest.raises(EmbeddingDataError, match=r"files disagree.*a\.parquet.*\[2\].*b\.parquet.*\[3\]"):
        load(folder)


def _damage(path, *, at=None, keep=None):
    raw = bytearray(path.read_bytes())
    if at is not None:
        for offset in range(at, min(at + 64, len(raw))):
            raw[offset] ^= 0xA5
    path.write_bytes(bytes(raw[:keep] if keep is not None else raw))
    return path


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_npz_is_a_clear_error(tmp_path, vectors, damage):
    path = tmp_path / "set.npz"
    np.savez_compressed(path, vectors=vectors)
    size = path.stat().st_size
    _damage(path, at=size // 2) if damage == "flip" else _damage(path, keep=size // 2)
    with pytest.raises(EmbeddingDataError, match=r"set.npz: not a readable .npz archive"):
        load(path)


def test_npy_with_a_damaged_header_is_a_clear_error(tmp_path, vectors):
    path = tmp_path / "set.npy"
    np.save(path, vectors)
    _damage(path, at=20)
    with pytest.raises(EmbeddingDataError, match=r"set.npy: not a readable .npy file"):
        load(path)


@pytest.mark.parametrize(("suffix", "compression"), [(".parquet", "snappy"), (".arrow", "lz4")])
def test_damaged_compressed_pages_are_a_clear_error(tmp_path, suffix, compression):
    import pyarrow.feather as feather

    values = np.random.default_rng(0).integers(1, 4, size=(4000, 16)).astype(np.float32)  # compressible
    table = pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), 16)})
    path = tmp_path / f"set{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path, compression=compression)
    else:
        feather.write_feather(table, path, compression=compression)
    _damage(path, at=path.stat().st_size // 3)
    with pytest.raises(EmbeddingDataError, match=rf"set{suffix}: (cannot be read|.*damaged)"):
        load(path)


def test_id_keys_are_the_same_in_every_process():
    import subprocess
    import sys

    from embedlab.io.readers import id_keys

    ids = np.array(["doc-1", "doc-22", "", "é-ü", "doc-1"], dtype=object)
    code = (
        "import numpy as np; from embedlab.io.readers import id_keys; "
        f"print(id_keys(np.array({ids.tolist()!r}, dtype=object)).tolist())"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "7"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment)
    keys = id_keys(ids)
    assert other.stdout.strip() == str(keys.tolist())
    assert keys[0] == keys[4] and len(set(keys.tolist())) == 4
    np.testing.assert_array_equal(id_keys(np.array([5, 9])), [5, 9])


class _RunsOnUnpickle:
    """An object whose unpickling would run a shell command: no reader may unpickle it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_pickled_object_arrays_are_refused_and_never_unpickled(tmp_path, suffix):
    marker = tmp_path / "executed"
    payload = np.array([_RunsOnUnpickle(marker), 1.0], dtype=object)
    path = tmp_path / f"evil{suffix}"
    if suffix == ".npy":
        np.save(path, payload, allow_pickle=True)
    else:
        np.savez(path, vectors=payload)
    with pytest.raises(EmbeddingDataError, match=str(path.name)):
        embedlab.load(path)
    assert not marker.exists()


def test_load_a_sample_reads_the_rows_sample_keeps(tmp_path):
    """``load(sample=)`` streams the rows ``EmbeddingSet.sample`` keeps, with their ids and metadata, in order,
    across Parquet row groups and from a .npy file."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5_000, 6)).astype(np.float32)
    ids = np.array([f"r{i}" for i in range(len(vectors))], dtype=object)
    table = pa.table(
        {"id": ids, "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 6), "n": np.arange(5000)}
    )
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=700)
    np.save(tmp_path / "x.npy", vectors)
    for seed in (0, 7):
        whole = load(tmp_path / "x.parquet").sample(123, random_state=seed)
        streamed = load(tmp_path / "x.parquet", sample=123, random_state=seed)
        assert np.array_equal(streamed.vectors, whole.vectors) and list(streamed.ids) == list(whole.ids)
        assert streamed.metadata.equals(whole.metadata)
        from_npy = load(tmp_path / "x.npy", sample=123, random_state=seed)
        assert np.array_equal(from_npy.vectors, vectors[from_npy.ids])
        assert np.array_equal(from_npy.ids, np.sort(from_npy.ids)) and len(set(from_npy.ids)) == 123
    assert len(load(tmp_path / "x.parquet", sample=10_000)) == 5_000


def test_load_a_sample_of_no_rows_is_refused_by_name(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((4, 3), dtype=np.float32))
    with pytest.raises(embedlab.ConfigurationError, match="sample must be an integer >= 1, got 0"):
        load(tmp_path / "x.npy", sample=0)
