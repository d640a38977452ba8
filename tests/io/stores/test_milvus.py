"""Milvus Lite on a temporary file: the conformance checks, collections made with pymilvus, and Milvus's own rules."""

from __future__ import annotations

import logging
import time

import numpy as np
import pyarrow as pa
import pytest

import embedlab
from embedlab import ConfigurationError
from embedlab.io.stores import StoreError, import_store, open_store
from tests.io.stores import conformance as c

pymilvus = c.require("pymilvus", "milvus")
c.require("milvus_lite", "milvus")


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    """One Milvus Lite file for the module (each test uses its own collections)."""
    return tmp_path_factory.mktemp("milvus") / "m.db"


@pytest.fixture
def make(lite, request):
    # the conformance checks reuse names; the test's name keeps each test's collections apart
    prefix = request.node.name.replace("[", "_").replace("]", "").replace("-", "_")
    return lambda name: f"milvus://{lite}/{prefix}_{name}"


class TestConformance(c.Conformance):
    """Every store's checks (tests/io/stores/conformance.py)."""


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_created_collection(make, tmp_path, lite, metric):
    path, emb = c.dataset(tmp_path, n=40)
    uri = make(metric)
    import_store(path, uri, metric=metric, checkpoint=tmp_path / "m.json")
    with open_store(uri) as store:
        layout = store.schema()
    assert layout.metric == metric and layout.id_type == "int" and layout.dim == c.DIM
    assert (layout.vector_column, layout.id_column) == ("embedding", "id")
    client = pymilvus.MilvusClient(str(lite))
    name = uri.rsplit("/", 1)[1]
    described = client.describe_collection(name)
    kinds = {f["name"]: f["type"] for f in described["fields"]}
    assert kinds == {"id": pymilvus.DataType.INT64, "embedding": pymilvus.DataType.FLOAT_VECTOR}
    assert described["enable_dynamic_field"]
    (index,) = client.list_indexes(name)
    described = client.describe_index(name, index)
    assert (described["metric_type"], described["index_type"]) == (metric.upper(), "FLAT")
    client.close()
    got = embedlab.load(uri)
    np.testing.assert_array_equal(got.vectors, emb.vectors)  # Milvus keeps vectors as written, even for cosine


def test_collection_made_with_pymilvus(lite, caplog):
    """An explicit schema (VARCHAR key, a declared scalar, two vector fields) and dynamic keys, one first seen
    after the rows that fix the columns."""
    rng = np.random.default_rng(0)
    n = 1100
    X = rng.normal(size=(n, 6)).astype(np.float32)
    client = pymilvus.MilvusClient(str(lite))
    schema = client.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("doc", pymilvus.DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("dense", pymilvus.DataType.FLOAT_VECTOR, dim=6)
    schema.add_field("terms", pymilvus.DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("rank", pymilvus.DataType.INT32, nullable=True)
    schema.add_field("url", pymilvus.DataType.VARCHAR, max_length=64)
    index = client.prepare_index_params()
    index.add_index("dense", index_type="FLAT", metric_type="L2")
    index.add_index("terms", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection("theirs", schema=schema, index_params=index)
    rows = []
    for i in range(n):
        row = {
            "doc": f"d{i:05d}",
            "dense": X[i],
            "terms": {i % 50: 1.0},
            "rank": None if i % 7 == 0 else i,
            "url": f"u{n - i}",
        }
        row.update({"kind": ["a", "b"][i % 2], "tags": ["x", "y"]} if i % 5 else {})
        if i >= 1050:
            row["late"] = 1.5
        rows.append(row)
    client.insert("theirs", rows[::-1])  # the scan is in primary-key order, whatever the insertion order
    client.close()

    uri = f"milvus://{lite}/theirs"
    with caplog.at_level(logging.WARNING):
        got = embedlab.load(uri)
    assert got.ids.tolist() == [f"d{i:05d}" for i in range(n)]
    np.testing.assert_array_equal(got.vectors, X)
    assert list(got.metadata.column_names) == ["rank", "url", "kind", "tags"]
    assert got.metadata.column("rank").type == pa.int32()
    assert got.metadata.column("rank").to_pylist() == [None if i % 7 == 0 else i for i in range(n)]
    assert got.metadata.column("kind").to_pylist()[:3] == [None, "b", "a"]
    assert got.metadata.column("tags")[1].as_py() == '["x", "y"]'
    assert "late" in caplog.text
    with open_store(uri) as store:
        layout = store.schema()
        assert (layout.vector_column, layout.id_column, layout.id_type, layout.metric) == ("dense", "doc", "str", "l2")
        batches = list(store.scan(1000))
        assert [len(b) for b in batches] == [1000, 100] and batches[1].extra_keys == {"late"}
        np.testing.assert_array_equal(store.fetch(np.array(["d00009", "d00002"], dtype=object)), X[[9, 2]])
        with pytest.raises(StoreError, match="not in the collection"):
            store.fetch(np.array(["d00001", "nope"], dtype=object))
        store.set_columns(np.array(["d00001", "d00003"], dtype=object), pa.table({"rank": [1.0, 2.0], "new": [1, 2]}))
        with pytest.raises(StoreError, match="INT32"):
            store.set_columns(np.array(["d00001"], dtype=object), pa.table({"rank": ["one"]}))
    with open_store(f"{uri}?column=terms") as store, pytest.raises(StoreError, match="SPARSE_FLOAT_VECTOR"):
        store.schema()
    with open_store(uri, id_column="kind") as store, pytest.raises(StoreError, match="no integer or VARCHAR field"):
        store.schema()  # a dynamic key cannot serve as the id
    with open_store(f"{uri}?id=url") as store:
        assert store.schema().id_column == "url" and "doc" in store.schema().metadata_columns
        np.testing.assert_array_equal(store.fetch(np.array([f"u{n - 5}"], dtype=object)), X[[5]])
        store.set_columns(np.array([f"u{n - 4}"], dtype=object), pa.table({"rank": [44]}))
    again = embedlab.load(uri)
    assert again.metadata.column("rank").to_pylist()[:5] == [None, 1, 2, 2, 44]
    assert again.metadata.column("new").to_pylist()[:4] == [None, 1, None, 2]
    np.testing.assert_array_equal(again.vectors, X)


def test_only_sparse_vectors_are_refused(lite):
    # Milvus Lite has no binary or 16-bit vectors; sparse ones are refused the same way
    client = pymilvus.MilvusClient(str(lite))
    schema = client.create_schema(auto_id=False)
    schema.add_field("pk", pymilvus.DataType.INT64, is_primary=True)
    schema.add_field("terms", pymilvus.DataType.SPARSE_FLOAT_VECTOR)
    index = client.prepare_index_params()
    index.add_index("terms", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection("sparse", schema=schema, index_params=index)
    client.close()
    with pytest.raises(StoreError, match=r"no FLOAT_VECTOR field \(vector fields: terms \(SPARSE_FLOAT_VECTOR\)\)"):
        embedlab.load(f"milvus://{lite}/sparse")


def test_upsert_replaces_and_set_columns_keeps_vectors(make, tmp_path):
    path, emb = c.dataset(tmp_path, n=30)
    uri = make("again")
    import_store(path, uri, metric="ip", checkpoint=tmp_path / "a.json")
    with open_store(uri) as store:
        store.write(emb.ids[:3], emb.vectors[:3] * 2, None, upsert=True)
        np.testing.assert_array_equal(store.fetch(emb.ids[:3]), emb.vectors[:3] * 2)
        assert store.count() == 30
        store.set_columns(emb.ids[3:5], pa.table({"label": [None, 9], "flag": [True, False]}))
        np.testing.assert_array_equal(store.fetch(emb.ids[3:5]), emb.vectors[3:5])
    got = embedlab.load(uri)
    assert got.metadata.column("label").to_pylist()[3:6] == [None, 9, 0]
    assert got.metadata.column("text").to_pylist()[3:5] == ["text 3", "text 4"]
    assert got.metadata.column("flag").to_pylist()[2:6] == [None, True, False, None]


def test_more_rows_than_a_query_returns(make, tmp_path):
    """Batches above Milvus's 16,384 rows per query are assembled from several pages."""
    n = 17_000
    X = np.random.default_rng(1).normal(size=(n, 2)).astype(np.float32)
    embedlab.EmbeddingSet(X, np.arange(n, dtype=np.int64)[::-1].copy()).to_parquet(tmp_path / "big.parquet")
    uri = make("big")
    result = import_store(tmp_path / "big.parquet", uri, metric="l2", batch_size=n, checkpoint=tmp_path / "b.json")
    assert result.verification.passed
    with open_store(uri) as store:
        assert store.batch_rows(2) == 16_384 and store.batch_rows(3072) == 1365
        (batch,) = store.scan(n)
        np.testing.assert_array_equal(batch.ids, np.arange(n))
        np.testing.assert_array_equal(batch.vectors, X[::-1])


def test_ids_the_iterator_cannot_page_are_refused(make, tmp_path):
    X = np.ones((2, c.DIM), np.float32)
    embedlab.EmbeddingSet(X, np.array(['a"b', "c"], dtype=object)).to_parquet(tmp_path / "q.parquet")
    with pytest.raises(StoreError, match="quote or a backslash"):
        import_store(tmp_path / "q.parquet", make("quoted"), checkpoint=tmp_path / "q.json")


@pytest.mark.parametrize("name", ["a-b", "1abc", "a b", "a" * 256, "ä"])
def test_collection_name_rules(tmp_path, name):
    with pytest.raises(ConfigurationError, match="letters, digits and underscores"):
        open_store(f"milvus://{tmp_path}/m.db/{name}")


def test_lite_needs_a_db_file(tmp_path):
    with pytest.raises(ConfigurationError, match=r"\*\.db"):
        open_store(f"milvus://{tmp_path}/m.sqlite/docs")


def test_reading_a_missing_file_creates_nothing(tmp_path):
    with pytest.raises(StoreError, match="no collection"):
        embedlab.load(f"milvus://{tmp_path}/none/m.db/docs")
    assert not (tmp_path / "none").exists()


def test_close_stops_the_lite_server(tmp_path):
    from milvus_lite.server_manager import server_manager_instance

    path, _ = c.dataset(tmp_path, n=10)
    uri = f"milvus://{tmp_path}/own.db/docs"
    import_store(path, uri, checkpoint=tmp_path / "o.json")
    assert str(tmp_path / "own.db") not in server_manager_instance._servers
    with open_store(uri) as first, open_store(uri) as second:
        assert first.count() == 10
        first.close()
        assert second.count() == 10  # the server stays while another store uses the file
    assert str(tmp_path / "own.db") not in server_manager_instance._servers


def test_connection_refused_names_the_host_and_hides_the_token(monkeypatch, caplog, capfd):
    token = "root:mt-0123456789-secret"
    monkeypatch.setenv("MILVUS_TOKEN", token)
    began = time.perf_counter()
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreError) as info:
        open_store("milvus+http://127.0.0.1:1/coll")
    assert time.perf_counter() - began < 15
    message = str(info.value)
    assert "127.0.0.1:1" in message and "connecting" in message
    assert token not in message and token not in repr(info.value) and token not in caplog.text
    assert token not in "".join(capfd.readouterr())  # pymilvus logs to its own stderr handler
