"""Store URIs: parsing, refusal of secrets written into them, secrets from files and the environment, scrubbing."""

from __future__ import annotations

import pytest

from embedlab import ConfigurationError
from embedlab.io.stores import is_store_uri, parse_uri
from embedlab.io.stores._uri import read_secret, scrub


@pytest.mark.parametrize(
    ("text", "store", "location", "collection", "remote"),
    [
        ("lancedb://data/db/docs", "lancedb", "data/db", "docs", False),
        ("lancedb:///abs/db/docs", "lancedb", "/abs/db", "docs", False),
        ("qdrant://q/docs", "qdrant", "q", "docs", False),
        ("qdrant+http://localhost:6333/docs", "qdrant", "localhost:6333", "docs", True),
        ("milvus://data/m.db/docs", "milvus", "data/m.db", "docs", False),
        ("chroma+https://host:443/my-docs", "chroma", "host:443", "my-docs", True),
        ("postgresql://me@db:5432/shop?table=items&column=emb", "pgvector", "me@db:5432/shop", "items", True),
        ("postgres://me@/shop?host=/run/postgresql&table=s.items", "pgvector", "me@/shop", "s.items", True),
    ],
)
def test_uris_are_parsed(text, store, location, collection, remote):
    uri = parse_uri(text)
    assert (uri.store, uri.location, uri.collection, uri.remote) == (store, location, collection, remote)
    assert str(uri) == text and is_store_uri(text)


def test_options_are_kept():
    assert parse_uri("lancedb://d/t?column=emb&id=key").options == {"column": "emb", "id": "key"}


@pytest.mark.parametrize("text", ["data/x.parquet", "s3://bucket/x.parquet", "file:///x.npy", 3])
def test_files_are_not_store_uris(text):
    assert not is_store_uri(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("postgresql://me:hunter2@db/shop?table=t", "password"),
        ("postgresql://me@db/shop", "table="),
        ("qdrant+http://key@host:6333/c", "credentials"),
        ("lancedb://justone", "collection is missing"),
        ("redis://host/c", "not a store URI"),
    ],
)
def test_bad_uris_are_refused_without_echoing_secrets(text, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        parse_uri(text)
    assert "hunter2" not in str(caught.value) and "key@" not in str(caught.value)


def test_secret_from_a_file_then_the_environment(tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t\nignored\n")
    monkeypatch.setenv("PGPASSWORD", "from-env")
    assert read_secret(secret, "PGPASSWORD") == "s3cr3t"
    assert read_secret(None, "PGPASSWORD") == "from-env"
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("EMBEDLAB_CREDENTIALS_FILE", str(secret))
    assert read_secret(None, "PGPASSWORD") == "s3cr3t"
    monkeypatch.delenv("EMBEDLAB_CREDENTIALS_FILE")
    assert read_secret(None, "PGPASSWORD") is None


def test_unreadable_or_empty_credentials_are_refused_without_their_contents(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigurationError, match="empty"):
        read_secret(empty, None)
    with pytest.raises(ConfigurationError, match="cannot be read"):
        read_secret(tmp_path / "absent", None)


def test_scrub_removes_the_secret_and_key_value_pairs():
    message = scrub("failed for password=abc api_key=xyz with s3cr3t inside", "s3cr3t")
    assert "s3cr3t" not in message and "abc" not in message and "xyz" not in message
