"""Qdrant in local mode on a temporary folder: the conformance checks, and Qdrant's own id and vector rules."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pyarrow as pa
import pytest

import embedlab
from embedlab.io.stores import StoreError, import_store, open_store, write_back
from tests.io.stores import conformance as c

qdrant_client = c.require("qdrant_client", "qdrant")
models = qdrant_client.models


@pytest.fixture
def make(tmp_path):
    return lambda name: f"qdrant://{tmp_path}/q/{name}"


class TestConformance(c.Conformance):
    """Every store's checks (tests/io/stores/conformance.py)."""

    unit = True  # cosine collections hold unit vectors


def test_uuid_and_other_string_ids(make, tmp_path):
    """Canonical UUIDs are the point ids; other strings (an upper-case UUID too) keep their text in the payload."""
    rng = np.random.default_rng(1)
    canonical = [str(uuid.uuid5(uuid.NAMESPACE_DNS, f"row{i}")) for i in range(20)]
    assert canonical[0].upper() != canonical[0]
    ids = np.array([*canonical, canonical[0].upper(), "doc-a", "", "日本"], dtype=object)
    X = rng.normal(size=(len(ids), c.DIM)).astype(np.float32)
    embedlab.EmbeddingSet(X, ids).to_parquet(tmp_path / "u.parquet")
    uri = make("uuids")
    assert import_store(tmp_path / "u.parquet", uri, metric="l2", checkpoint=tmp_path / "u.json").verification.passed
    got = embedlab.load(uri)
    order = {key: i for i, key in enumerate(got.ids.tolist())}
    assert sorted(order) == sorted(ids.tolist())
    np.testing.assert_array_equal(got.vectors[[order[key] for key in ids.tolist()]], X)
    with open_store(uri) as store:
        np.testing.assert_array_equal(store.fetch(ids[::-1]), X[::-1])
        assert store.schema().id_type == "str"
        with pytest.raises(StoreError, match="not in the collection"):
            store.fetch(np.array(["doc-a", "doc-zz"], dtype=object))
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    try:
        points = {str(p.id): p.payload for p in client.scroll("uuids", limit=100)[0]}
    finally:
        client.close()
    assert points[canonical[3]] == {"id": canonical[3]}
    assert canonical[0].upper() not in points and len(points) == len(ids)
    clusters = [i % 3 or None for i in range(len(ids))]
    assert write_back(uri, pa.table({"id": ids, "cluster": clusters})).vectors_unchanged
    got = embedlab.load(uri)
    order = {key: i for i, key in enumerate(got.ids.tolist())}
    assert [got.metadata.column("cluster")[order[key]].as_py() for key in ids.tolist()] == clusters


def test_negative_int_ids_are_refused(make, tmp_path):
    X = np.ones((3, c.DIM), np.float32)
    embedlab.EmbeddingSet(X, np.array([0, -1, 2])).to_parquet(tmp_path / "neg.parquet")
    with pytest.raises(StoreError, match="unsigned"):
        import_store(tmp_path / "neg.parquet", make("neg"), checkpoint=tmp_path / "n.json")


def test_collection_written_by_the_client(tmp_path):
    """Named vectors, arbitrary payload and integer point ids, read as Qdrant users write them."""
    path = str(tmp_path / "own")
    rng = np.random.default_rng(2)
    text, image = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(50, 3)).astype(np.float32)
    client = qdrant_client.QdrantClient(path=path)
    client.create_collection(
        "docs",
        vectors_config={
            "text": models.VectorParams(size=8, distance=models.Distance.DOT),
            "image": models.VectorParams(size=3, distance=models.Distance.EUCLID),
        },
    )
    payloads = [{"title": f"t{i}", "tags": ["a", "b"][: i % 3], "meta": {"n": i}} for i in range(50)]
    payloads[7]["rating"] = 4.5
    client.upsert(
        "docs",
        models.Batch(
            ids=list(range(100, 150)), vectors={"text": text.tolist(), "image": image.tolist()}, payloads=payloads
        ),
    )
    client.close()
    with pytest.raises(StoreError, match="several named vectors"):
        embedlab.load(f"qdrant://{path}/docs")
    got = embedlab.load(f"qdrant://{path}/docs?column=text")
    assert got.ids.tolist() == list(range(100, 150))
    np.testing.assert_array_equal(got.vectors, text)
    assert got.metadata.column("title").to_pylist() == [f"t{i}" for i in range(50)]
    assert got.metadata.column("rating").to_pylist()[7] == 4.5
    with open_store(f"qdrant://{path}/docs?column=image") as store:
        layout = store.schema()
        assert (layout.dim, layout.metric, layout.id_type) == (3, "l2", "int") and store.keeps_norms
        np.testing.assert_array_equal(store.fetch(np.array([149, 100])), image[[49, 0]])
    # close() released the folder: the client opens it again in this process
    client = qdrant_client.QdrantClient(path=path)
    client.create_collection("keyed", vectors_config=models.VectorParams(size=3, distance=models.Distance.EUCLID))
    points = [str(uuid.uuid4()) for _ in range(50)]
    client.upsert("keyed", models.Batch(ids=points, vectors=image.tolist(), payloads=[{"id": i} for i in range(50)]))
    client.close()
    with open_store(f"qdrant://{path}/keyed") as store:
        assert store.schema().id_type == "int"
        np.testing.assert_array_equal(store.fetch(np.array([9, 3])), image[[9, 3]])


def test_multivector_only_collection_is_refused(tmp_path):
    path = str(tmp_path / "multi")
    client = qdrant_client.QdrantClient(path=path)
    config = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
    client.create_collection(
        "m",
        vectors_config={
            "tokens": models.VectorParams(size=4, distance=models.Distance.COSINE, multivector_config=config)
        },
    )
    client.close()
    with pytest.raises(StoreError, match="multivector"):
        embedlab.load(f"qdrant://{path}/m")


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
@pytest.mark.parametrize("key", [None, "s3cr3t-qdrant-key-123"])
def test_connection_refused(monkeypatch, key):
    if key:
        monkeypatch.setenv("QDRANT_API_KEY", key)
    began = time.perf_counter()
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1") as caught:
        embedlab.load("qdrant+http://127.0.0.1:1/x")
    assert time.perf_counter() - began < 15
    if key:
        assert key not in str(caught.value)


def test_the_unnamed_vector_has_a_name_people_can_read(make, tmp_path):
    """Qdrant's unnamed vector is "" in its API; embedlab names it "(unnamed vector)", and a store opened with that
    name (as a shard reopens it) reads the same vector."""
    path, _ = c.dataset(tmp_path, n=50)
    uri = make("unnamed")
    import_store(path, uri, checkpoint=tmp_path / "n.json")
    with open_store(uri) as store:
        assert store.schema().vector_column == "(unnamed vector)"
    with open_store(uri, column="(unnamed vector)") as store:
        assert store.schema().dim == c.DIM and len(next(store.scan(10)).vectors) == 10
