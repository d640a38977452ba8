"""Vector stores as sources and sinks: LanceDB, Qdrant, Milvus, Chroma and PostgreSQL with pgvector.

A store URI (``lancedb://DIR/TABLE``, ``qdrant://DIR/COLLECTION``, ``milvus://FILE.db/COLLECTION``,
``chroma://DIR/COLLECTION``, ``postgresql://USER@HOST:PORT/DB?table=T``) names one collection. Every reader of
embedlab accepts it (:func:`embedlab.load`, ``iter_batches``, ``open_shards``), :func:`export_store` and
:func:`import_store` move collections to and from files with checkpoints and a verification, and
:func:`write_back` sets per-row payload (cluster labels, duplicate flags, sample weights) by id. Each store's
client is an optional extra (``embedlab[lancedb]``, ``[qdrant]``, ``[milvus]``, ``[chroma]``, ``[pgvector]``).
"""

from __future__ import annotations

import importlib
import os

from embedlab.io.stores._base import METRICS, Store, StoreBatch, StoreError, StoreSchema, StoreSource
from embedlab.io.stores._transfer import (
    MODES,
    PARTS_SUFFIX,
    ExportResult,
    ImportResult,
    Verification,
    WriteBackResult,
    export_store,
    import_store,
    write_back,
)
from embedlab.io.stores._uri import SCHEMES, StoreURI, is_store_uri, parse_uri

__all__ = [
    "METRICS",
    "MODES",
    "PARTS_SUFFIX",
    "SCHEMES",
    "ExportResult",
    "ImportResult",
    "Store",
    "StoreBatch",
    "StoreError",
    "StoreSchema",
    "StoreSource",
    "StoreURI",
    "Verification",
    "WriteBackResult",
    "export_store",
    "import_store",
    "is_store_uri",
    "open_store",
    "parse_uri",
    "write_back",
]

#: The module and class serving each store (imported when a URI names it, so a missing client fails late).
_STORES = {
    "lancedb": ("embedlab.io.stores._lancedb", "LanceDBStore"),
    "qdrant": ("embedlab.io.stores._qdrant", "QdrantStore"),
    "milvus": ("embedlab.io.stores._milvus", "MilvusStore"),
    "chroma": ("embedlab.io.stores._chroma", "ChromaStore"),
    "pgvector": ("embedlab.io.stores._pgvector", "PgVectorStore"),
}


def open_store(
    uri: str | StoreURI,
    *,
    column: str | None = None,
    id_column: str | None = None,
    credentials: str | os.PathLike | None = None,
) -> Store:
    """The collection a store URI names, with its client connected (nothing is read yet).

    Parameters
    ----------
    uri : str or StoreURI
    column : str, optional
        The vector field when the collection has several.
    id_column : str, optional
        A payload field that holds the ids, instead of the store's own ids.
    credentials : path-like, optional
        A file whose first line is the password, API key or token (else the store's environment variable:
        ``PGPASSWORD``, ``QDRANT_API_KEY``, ``MILVUS_TOKEN``, ``CHROMA_API_KEY``).

    Raises
    ------
    ConfigurationError
        For a malformed URI.
    MissingDependencyError
        When the store's client is not installed (the message gives the ``pip install`` command).
    StoreError
        When the store cannot be reached or refuses the credentials.
    """
    parsed = uri if isinstance(uri, StoreURI) else parse_uri(uri)
    module, name = _STORES[parsed.store]
    cls = getattr(importlib.import_module(module), name)
    return cls(parsed, column=column, id_column=id_column, credentials=credentials)
