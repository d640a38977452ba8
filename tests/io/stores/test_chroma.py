"""Chroma's persistent client on a temporary folder: the conformance checks, and Chroma's own rules."""

from __future__ import annotations

import logging
import time

import numpy as np
import pyarrow as pa
import pytest

import embedlab
from embedlab import ConfigurationError
from embedlab.io.stores import StoreError, export_store, import_store, open_store
from tests.io.stores import conformance as c

chromadb = c.require("chromadb", "chroma")


@pytest.fixture
def make(tmp_path):
    return lambda name: f"chroma://{tmp_path}/db/{name}"


def _client(path):
    return chromadb.PersistentClient(path=str(path), settings=chromadb.config.Settings(anonymized_telemetry=False))


class TestConformance(c.Conformance):
    """Every store's checks (tests/io/stores/conformance.py)."""


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_metric_and_id_type_recorded(make, tmp_path, metric):
    path, emb = c.dataset(tmp_path, n=50)
    uri = make(f"metric-{metric}")
    import_store(path, uri, metric=metric, checkpoint=tmp_path / "m.json")
    with open_store(uri) as store:
        layout = store.schema()
    assert layout.metric == metric and layout.id_type == "int" and layout.dim == c.DIM
    client = _client(tmp_path / "db")
    collection = client.get_collection(f"metric-{metric}", embedding_function=None)
    assert collection.configuration_json["hnsw"]["space"] == metric
    assert collection.metadata["embedlab:id_type"] == "int"
    rows = collection.get(include=["metadatas"])
    assert all("embedlab:id_type" not in record for record in rows["metadatas"])
    assert sorted(rows["ids"], key=int) == [str(key) for key in emb.ids.tolist()]
    client.close()
    got = embedlab.load(uri)
    assert got.ids.dtype == np.int64 and "embedlab:id_type" not in got.metadata.column_names
    # cosine spaces give vectors back multiplied by their norm again (within 2 float32 ulps), never unit-length
    rtol = 3e-7 if metric == "cosine" else 0
    np.testing.assert_allclose(got.vectors[np.argsort(got.ids)], emb.vectors, rtol=rtol, atol=0)


def test_collection_made_by_chroma(tmp_path, caplog):
    """String ids, metadata of several types (lists, missing keys, none at all), a key first seen late."""
    rng = np.random.default_rng(0)
    n = 1100
    X = rng.normal(size=(n, 6)).astype(np.float32)
    ids = [f"uuid-{i:05d}" for i in range(n)]
    metadatas = []
    for i in range(n):
        record = {"kind": ["a", "b"][i % 2], "rank": i, "tags": ["x", "y"], "ok": i % 3 == 0}
        if i % 7 == 0:
            record = None
        elif i >= 1050:
            record["late"] = 1.5
        metadatas.append(record)
    client = _client(tmp_path / "db")
    collection = client.create_collection("theirs")  # Chroma's default embedding function, never called
    collection.add(ids=ids, embeddings=X, metadatas=metadatas, documents=[f"doc {i}" for i in range(n)])
    client.close()

    uri = f"chroma://{tmp_path}/db/theirs"
    with caplog.at_level(logging.WARNING):
        got = embedlab.load(uri)
    assert got.ids.tolist() == ids
    np.testing.assert_array_equal(got.vectors, X)
    assert list(got.metadata.column_names) == ["kind", "ok", "rank", "tags", "document"]
    assert got.metadata.column("document").to_pylist() == [f"doc {i}" for i in range(n)]
    assert got.metadata.column("rank").to_pylist() == [None if i % 7 == 0 else i for i in range(n)]
    assert got.metadata.column("tags")[1].as_py() == '["x", "y"]'
    assert got.metadata.column("ok").type == pa.bool_()
    assert "late" in caplog.text
    with open_store(uri) as store:
        layout = store.schema()
        assert layout.id_type == "str" and layout.metric == "l2" and layout.dim == 6
        batches = list(store.scan(1000))
        assert [len(b) for b in batches] == [1000, 100] and batches[1].extra_keys == {"late"}
        np.testing.assert_array_equal(store.fetch(np.array(["uuid-00009", "uuid-00002"], dtype=object)), X[[9, 2]])


def test_more_rows_than_the_max_batch(make, tmp_path):
    """Import, export, scan and fetch beyond the client's cap (Chroma refuses an add above it)."""
    client = _client(tmp_path / "db")
    cap = client.get_max_batch_size()
    over = client.create_collection("over", embedding_function=None)
    with pytest.raises(Exception, match="max batch size"):
        over.add(ids=[str(i) for i in range(cap + 1)], embeddings=np.ones((cap + 1, 4), np.float32))
    client.close()
    with open_store(make("probe")) as store:
        assert store.batch_rows(4) == cap and store.batch_rows(3072) < cap
    n = 2 * cap + 100
    X = np.random.default_rng(1).normal(size=(n, 4)).astype(np.float32)
    embedlab.EmbeddingSet(X, np.arange(n, dtype=np.int64), {"part": np.arange(n) % 3}).to_parquet(
        tmp_path / "big.parquet"
    )
    uri = make("big")
    result = import_store(tmp_path / "big.parquet", uri, metric="l2", checkpoint=tmp_path / "b.json")
    assert result.verification.passed and result.batch_size <= cap
    exported = export_store(uri, tmp_path / "big-out.parquet")
    assert exported.n_rows == n and exported.verification.passed
    with open_store(uri) as store:
        (batch,) = store.scan(n + 1)
        assert len(batch) == n and np.array_equal(batch.ids, np.arange(n))
        np.testing.assert_array_equal(batch.vectors, X)
        order = np.random.default_rng(2).permutation(n)
        np.testing.assert_array_equal(store.fetch(order), X[order])
    again = import_store(tmp_path / "big.parquet", make("big2"), batch_size=n, checkpoint=tmp_path / "b2.json")
    assert again.verification.passed and again.batch_size == n


def test_set_columns_merges_and_clears(make, tmp_path):
    path, emb = c.dataset(tmp_path, n=20)
    uri = make("merge")
    import_store(path, uri, metric="l2", checkpoint=tmp_path / "s.json")
    with open_store(uri) as store:
        store.set_columns(emb.ids[:2], pa.table({"label": [None, 9], "flag": [True, None]}))
        got = embedlab.load(uri)
    assert got.metadata.column("label").to_pylist()[:3] == [None, 9, 2]
    assert got.metadata.column("flag").to_pylist()[:3] == [True, None, None]
    assert got.metadata.column("text").to_pylist()[:2] == ["text 0", "text 1"]
    np.testing.assert_array_equal(got.vectors, emb.vectors)


def test_add_refuses_ids_it_holds(make, tmp_path):
    path, emb = c.dataset(tmp_path, n=30)
    uri = make("again")
    import_store(path, uri, metric="ip", checkpoint=tmp_path / "a.json")
    with open_store(uri) as store:
        with pytest.raises(StoreError, match="already in the collection"):
            store.write(emb.ids[:3], emb.vectors[:3], None, upsert=False)
        store.write(emb.ids[:3], emb.vectors[:3] * 2, None, upsert=True)
        np.testing.assert_array_equal(store.fetch(emb.ids[:3]), emb.vectors[:3] * 2)
        assert store.count() == 30


@pytest.mark.parametrize("name", ["ab", "-abc", "abc_", "a..b", "10.0.0.1", "a" * 513, "a b c"])
def test_collection_name_rules(tmp_path, name):
    with pytest.raises(ConfigurationError, match=r"3-512 characters from \[a-zA-Z0-9._-\]"):
        open_store(f"chroma://{tmp_path}/db/{name}")
    assert not (tmp_path / "db").exists()


def test_reading_a_missing_folder_creates_nothing(tmp_path):
    with pytest.raises(StoreError, match="no collection"):
        embedlab.load(f"chroma://{tmp_path}/none/docs")
    assert not (tmp_path / "none").exists()


def test_connection_refused_names_the_host_and_hides_the_key(monkeypatch, caplog):
    key = "ck-0123456789-secret"
    monkeypatch.setenv("CHROMA_API_KEY", key)
    began = time.perf_counter()
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreError) as info:
        open_store("chroma+http://127.0.0.1:1/coll")
    assert time.perf_counter() - began < 10
    message = str(info.value)
    assert "127.0.0.1:1" in message and "connecting" in message
    assert key not in message and key not in repr(info.value) and key not in caplog.text


def test_documents_are_read_and_written_as_the_document_column(make, tmp_path):
    """Chroma keeps texts beside the vectors (documents): they come back as the metadata column 'document' (what
    cluster naming reads), and a string column 'document' is written as documents, not as a metadata key."""
    rng = np.random.default_rng(4)
    client = _client(tmp_path / "db")
    made = client.create_collection("texts", embedding_function=None)
    made.add(
        ids=["a", "b", "c"],
        embeddings=rng.normal(size=(3, 8)).tolist(),
        documents=["a cat", "a dog", None],
        metadatas=[{"n": 1}, {"n": 2}, {"n": 3}],
    )
    del client
    got = embedlab.load(make("texts"))
    order = np.argsort(got.ids)
    assert got.metadata.column("document").take(order).to_pylist() == ["a cat", "a dog", None]
    emb = embedlab.EmbeddingSet(
        rng.normal(size=(4, 8)), [f"r{i}" for i in range(4)], {"document": ["w", "x", "y", "z"]}
    )
    emb.to_parquet(tmp_path / "docs.parquet")
    import_store(tmp_path / "docs.parquet", make("written"), checkpoint=tmp_path / "w.json")
    with open_store(make("written")) as store:
        stored = store._open().get(include=["documents", "metadatas"])
    assert sorted(stored["documents"]) == ["w", "x", "y", "z"] and not any(stored["metadatas"] or [])
    assert sorted(embedlab.load(make("written")).metadata.column("document").to_pylist()) == ["w", "x", "y", "z"]
