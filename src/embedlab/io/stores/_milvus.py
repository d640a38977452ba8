"""Milvus (Milvus Lite on a local file, or a server): typed fields, a dynamic field for the payload, reads paged
by primary key."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

from embedlab._optional import import_optional
from embedlab.exceptions import ConfigurationError
from embedlab.io.embedding_set import ID_COLUMN, VECTOR_COLUMN
from embedlab.io.readers import PREFERRED_VECTOR_COLUMNS
from embedlab.io.stores._base import (
    SCHEMA_SAMPLE_ROWS,
    Store,
    StoreBatch,
    StoreError,
    StoreSchema,
    ids_array,
    infer_types,
    records_table,
    table_records,
    vectors_array,
)

__all__ = ["MilvusStore"]

#: Milvus's limits (https://milvus.io/docs/limitations.md): 64 MB per insert and per query result, and 16,384
#: rows per query (offset + limit, and pymilvus's query_iterator batch). Requests carry 16 MiB of vectors, the
#: rest of the 64 MB is left to the payload.
_MAX_QUERY_ROWS = 16_384
_VECTOR_BYTES = 16 * 2**20
#: Seconds to wait for a server before giving up (pymilvus waits for the channel, it does not retry a refusal).
_CONNECT_TIMEOUT = 10
_MAX_VARCHAR = 65_535
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_NAME_RULE = "1-255 letters, digits and underscores, starting with a letter or an underscore"
#: Milvus's scalar types and the Arrow types their values are read as (others, JSON and ARRAY, are inferred).
_ARROW_TYPES = {
    "BOOL": pa.bool_(),
    "INT8": pa.int8(),
    "INT16": pa.int16(),
    "INT32": pa.int32(),
    "INT64": pa.int64(),
    "FLOAT": pa.float32(),
    "DOUBLE": pa.float64(),
    "VARCHAR": pa.string(),
}
_ID_TYPES = {"INT8": "int", "INT16": "int", "INT32": "int", "INT64": "int", "VARCHAR": "str"}
_VECTOR_TYPES = ("FLOAT_VECTOR", "BINARY_VECTOR", "FLOAT16_VECTOR", "BFLOAT16_VECTOR", "SPARSE_FLOAT_VECTOR")
#: Embedlab stores open on each Milvus Lite file in this process: the last one to close stops its server.
_LITE_USERS: dict[str, int] = {}
_LITE_LOCK = threading.Lock()


class MilvusStore(Store):
    """A Milvus collection: ``milvus://FILE.db/COLLECTION`` (Milvus Lite, in this process, on a local file) or
    ``milvus+http://HOST:PORT/COLLECTION`` and ``milvus+https://...`` (a server, with the token from
    ``MILVUS_TOKEN`` or a credentials file; a path segment before the collection names the database).

    Collections embedlab creates have an INT64 or VARCHAR primary key (the ids), a FLOAT_VECTOR field, an index
    for the metric (AUTOINDEX on a server, FLAT on Milvus Lite), and the dynamic field for the payload (the
    metadata schema given to :meth:`create` is not declared). A collection made by others is read
    by its primary key (or ``?id=`` another scalar field), its FLOAT_VECTOR field (``?column=`` when several),
    and its declared scalar fields plus the dynamic keys of the first rows as metadata. Reading loads the
    collection when it is released (Milvus queries only loaded collections).

    Milvus does not refuse a primary key it holds: ``write(upsert=False)`` inserts, ``upsert=True`` upserts.
    """

    extra = "milvus"
    secret_variable = "MILVUS_TOKEN"

    def __init__(self, uri, **kwargs) -> None:
        super().__init__(uri, **kwargs)
        _check_name(uri.text, "collection", uri.collection)
        if not uri.remote and not uri.location.endswith(".db"):
            raise ConfigurationError(f"{uri.text}: Milvus Lite opens a file named *.db, not {uri.location!r}.")
        self._pymilvus = import_optional("pymilvus", "milvus", purpose=f"Opening {uri.text}")
        self._client = None
        self._lite_path = None if uri.remote else os.path.abspath(uri.location)
        self._loaded = False
        self._unflushed = False
        self._types: dict[str, pa.DataType] = {}
        self._fields: dict[str, str] = {}
        self._primary = ID_COLUMN
        self._dynamic = False
        if uri.remote or Path(uri.location).exists():
            self._connect()

    def _connect(self):
        if self.uri.remote:
            address = f"{self.uri.scheme.partition('+')[2]}://{self.uri.location}"
            with self.errors(f"connecting to {self.uri.location}"):
                self._client = self._pymilvus.MilvusClient(
                    uri=address, token=self.secret or "", timeout=_CONNECT_TIMEOUT
                )
            return self._client
        with _LITE_LOCK:
            with self.errors("opening the Milvus Lite file (one process at a time may open it)"):
                self._client = self._pymilvus.MilvusClient(self.uri.location)
            _LITE_USERS[self._lite_path] = _LITE_USERS.get(self._lite_path, 0) + 1
        return self._client

    def _client_now(self):
        return self._client if self._client is not None else self._connect()

    def _open(self):
        """The client, with the collection existing and loaded."""
        if self._loaded:
            return self._client
        if not self.exists():
            raise self.missing("collection")
        with self.errors("loading the collection"):
            state = self._client.get_load_state(self.uri.collection)["state"]
            if _type_name(state) != "Loaded":
                self._client.load_collection(self.uri.collection)
        self._loaded = True
        return self._client

    def _reading(self):
        """The client, ready to read: on Milvus Lite, rows written since the last read are flushed first (Lite
        scans unflushed rows in Python at every query: 2 s a query at 50k x 384 here, 0.1 s once flushed)."""
        client = self._open()
        if self._unflushed:
            with self.errors("flushing the rows written"):
                client.flush(self.uri.collection)
            self._unflushed = False
        return client

    def exists(self) -> bool:
        if self._client is None:
            return False
        with self.errors("looking for the collection"):
            return bool(self._client.has_collection(self.uri.collection))

    # reading

    def schema(self) -> StoreSchema:
        client = self._open()
        with self.errors("describing the collection"):
            described = client.describe_collection(self.uri.collection)
        fields = {f["name"]: f for f in described["fields"]}
        self._fields = {name: _type_name(f["type"]) for name, f in fields.items()}
        self._primary = next(name for name, f in fields.items() if f.get("is_primary"))
        self._dynamic = bool(described.get("enable_dynamic_field"))
        vector = self._vector_field()
        id_column = self.id_column or self._primary
        id_type = _ID_TYPES.get(self._fields.get(id_column, ""))
        if id_type is None:
            raise StoreError(
                f"{self.name}: no integer or VARCHAR field named {id_column!r} to read the ids from (fields: "
                f"{', '.join(fields)}); name one with ?id=NAME."
            )
        declared = [
            name for name, kind in self._fields.items() if name not in (vector, id_column) and kind not in _VECTOR_TYPES
        ]
        self._types = {
            name: _ARROW_TYPES[self._fields[name]] for name in declared if self._fields[name] in _ARROW_TYPES
        }
        dynamic: list[str] = []
        if self._dynamic:
            with closing(self._pages([self._primary, "$meta"], SCHEMA_SAMPLE_ROWS, limit=SCHEMA_SAMPLE_ROWS)) as pages:
                sample = next(pages, [])
            dynamic, types = infer_types([_dynamic_keys(row, self._fields) for row in sample])
            self._types.update(types)
        dim = int(fields[vector]["params"]["dim"])
        self._layout = StoreSchema(
            self.count(), dim, vector, id_column, id_type, tuple(declared + dynamic), self._metric(client, vector)
        )
        return self._layout

    def _vector_field(self) -> str:
        floats = [name for name, kind in self._fields.items() if kind == "FLOAT_VECTOR"]
        if self.column is not None:
            if self.column not in self._fields:
                raise StoreError(f"{self.name}: no vector field {self.column!r} (fields: {', '.join(self._fields)}).")
            if self._fields[self.column] != "FLOAT_VECTOR":
                raise StoreError(
                    f"{self.name}: field {self.column!r} is {self._fields[self.column]}; embedlab reads FLOAT_VECTOR "
                    "fields."
                )
            return self.column
        if len(floats) == 1:
            return floats[0]
        preferred = next((name for name in PREFERRED_VECTOR_COLUMNS if name in floats), None)
        if preferred is not None:
            return preferred
        if floats:
            raise StoreError(
                f"{self.name}: the collection has several float vector fields ({', '.join(floats)}); name one with "
                "?column=NAME."
            )
        others = [f"{name} ({kind})" for name, kind in self._fields.items() if kind in _VECTOR_TYPES]
        raise StoreError(
            f"{self.name}: no FLOAT_VECTOR field (vector fields: {', '.join(others) or 'none'}); embedlab reads "
            "float32 vectors, not binary, sparse or 16-bit ones."
        )

    def _metric(self, client, vector: str) -> str | None:
        with self.errors("reading the index"):
            names = client.list_indexes(self.uri.collection, field_name=vector)
            if not names:
                return None
            metric = client.describe_index(self.uri.collection, names[0]).get("metric_type")
        return str(metric).lower() if metric else None

    def _layout_now(self) -> StoreSchema:
        return getattr(self, "_layout", None) or self.schema()

    def count(self) -> int:
        client = self._reading()
        with self.errors("counting rows"):
            rows = client.query(self.uri.collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def scan(
        self,
        batch_size: int,
        *,
        with_vectors: bool = True,
        with_metadata: bool = True,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[StoreBatch]:
        layout = self._layout_now()
        fields = [self._primary, layout.id_column]
        if with_vectors:
            fields.append(layout.vector_column)
        if with_metadata:
            fields.extend(name for name in layout.metadata_columns if name in self._fields)
            if self._dynamic:
                fields.append("$meta")
        fields = list(dict.fromkeys(fields))
        after = None
        if start:
            after = self._key_before(start)
            if after is None:
                return
        limit = -1 if stop is None else max(stop - start, 0)
        if limit == 0:
            return
        rows: list[dict] = []
        for page in self._pages(fields, min(batch_size, self.batch_rows(layout.dim)), limit=limit, after=after):
            rows.extend(page)
            while len(rows) >= batch_size:
                yield self._batch(rows[:batch_size], layout, with_vectors, with_metadata)
                del rows[:batch_size]
        if rows:
            yield self._batch(rows, layout, with_vectors, with_metadata)

    def _key_before(self, position: int):
        """The primary key of row ``position - 1`` in key order (read by paging keys only); None past the end."""
        last, seen = None, 0
        with closing(self._pages([self._primary], _MAX_QUERY_ROWS, limit=position)) as pages:
            for page in pages:
                last, seen = page[-1][self._primary], seen + len(page)
        return last if seen == position else None

    def _pages(self, fields: list[str], rows: int, *, limit: int = -1, after=None) -> Iterator[list[dict]]:
        """Pages of ``rows`` rows in primary-key order, of the keys after ``after`` when given (pymilvus's
        query_iterator: each page is a query for the keys after the last one read, so no offset grows past
        Milvus's limit)."""
        client = self._reading()
        condition = "" if after is None else f"{self._primary} > {_literal(after)}"
        with self.errors("reading rows"), self._quiet_lite_iterator():
            pages = client.query_iterator(
                self.uri.collection,
                batch_size=rows,
                limit=limit,
                filter=condition,
                output_fields=fields,
                consistency_level="Strong",
                strict_float32=True,  # vectors as one float32 array per page, not lists of Python floats
            )
        try:
            while True:
                with self.errors("reading rows"):
                    page = pages.next()
                if not page:
                    return
                _check_pageable(self.name, page[-1][fields[0]])
                yield page
        finally:
            pages.close()

    @contextmanager
    def _quiet_lite_iterator(self) -> Iterator[None]:
        """Drop the warning pymilvus logs on every iterator over Milvus Lite, which returns no server timestamp
        (the client's own is as good in one process)."""
        if self._lite_path is None:
            yield
            return
        logger = logging.getLogger("pymilvus.client.iterator.query_iterator")
        quiet = _MessageFilter("failed to get mvccTs")
        logger.addFilter(quiet)
        try:
            yield
        finally:
            logger.removeFilter(quiet)

    def _batch(self, rows: list[dict], layout: StoreSchema, with_vectors: bool, with_metadata: bool) -> StoreBatch:
        ids = ids_array([row[layout.id_column] for row in rows], layout.id_type)
        vectors = None
        if with_vectors:
            vectors = vectors_array([row[layout.vector_column] for row in rows], layout.dim, self.name)
        metadata, extra = None, set()
        if with_metadata:
            known = {self._primary, layout.id_column, layout.vector_column, *layout.metadata_columns}
            extra = set().union(*rows) - known
            if layout.metadata_columns:
                metadata = records_table(rows, layout.metadata_columns, self._types)
        return StoreBatch(ids, vectors, metadata, extra)

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        layout = self._layout_now()
        client = self._reading()
        keys = ids.tolist()
        found: dict = {}
        step = self.batch_rows(layout.dim)
        for start in range(0, len(keys), step):
            with self.errors("fetching rows by id"):
                rows = client.query(
                    self.uri.collection,
                    filter=_in_filter(layout.id_column, keys[start : start + step]),
                    output_fields=[layout.id_column, layout.vector_column],
                    consistency_level="Strong",
                    strict_float32=True,
                )
            found.update((row[layout.id_column], row[layout.vector_column]) for row in rows)
        if len(found) < len(set(keys)):
            raise self.unknown_ids(ids, list(found))
        if not keys:
            return np.empty((0, layout.dim), dtype=np.float32)
        return vectors_array([found[key] for key in keys], layout.dim, self.name)

    # writing

    def create(self, dim: int, *, id_type: str, metric: str, metadata: pa.Schema | None) -> None:
        del metadata  # the payload goes to the dynamic field
        id_name, vector_name = self.id_column or ID_COLUMN, self.column or VECTOR_COLUMN
        _check_name(self.uri.text, "field", id_name)
        _check_name(self.uri.text, "field", vector_name)
        if not self.uri.remote:
            Path(self.uri.location).parent.mkdir(parents=True, exist_ok=True)
        client = self._client_now()
        if self.exists():
            raise StoreError(f"{self.name}: the collection exists; import with --mode append or --mode overwrite.")
        types = self._pymilvus.DataType
        with self.errors("creating the collection"):
            schema = client.create_schema(auto_id=False, enable_dynamic_field=True)
            if id_type == "int":
                schema.add_field(id_name, types.INT64, is_primary=True)
            else:
                schema.add_field(id_name, types.VARCHAR, is_primary=True, max_length=_MAX_VARCHAR)
            schema.add_field(vector_name, types.FLOAT_VECTOR, dim=dim)
            index = client.prepare_index_params()
            # Lite's AUTOINDEX is an HNSW graph built in Python when rows are flushed (18 s at 50k x 384 here);
            # its FLAT search is exact and costs nothing to build
            kind = "AUTOINDEX" if self.uri.remote else "FLAT"
            index.add_index(vector_name, index_type=kind, metric_type=metric.upper())
            client.create_collection(self.uri.collection, schema=schema, index_params=index)
        self._loaded = True  # create_collection with an index loads it
        self.__dict__.pop("_layout", None)

    def drop(self) -> None:
        with self.errors("dropping the collection"):
            self._client_now().drop_collection(self.uri.collection)
        self._loaded = False
        self.__dict__.pop("_layout", None)

    def write(self, ids: np.ndarray, vectors: np.ndarray, metadata: pa.Table | None, *, upsert: bool) -> None:
        layout = self._layout_now()
        client = self._open()
        keys = ids.tolist()
        if layout.id_type == "str":
            for key in keys:
                _check_pageable(self.name, key)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        payload = table_records(self._typed(metadata), len(keys))
        step = self.batch_rows(layout.dim)
        for start in range(0, len(keys), step):
            rows = [
                {**payload[i], layout.id_column: keys[i], layout.vector_column: vectors[i]}
                for i in range(start, min(start + step, len(keys)))
            ]
            with self.errors("writing rows"):
                if upsert:
                    client.upsert(self.uri.collection, rows)
                else:
                    client.insert(self.uri.collection, rows)
        self._unflushed = self._lite_path is not None

    def set_columns(self, ids: np.ndarray, columns: pa.Table) -> None:
        # a partial upsert writes the fields given (a new key into the dynamic field) and keeps the others and the
        # vector; every row of one request must name the same fields, so nulls are written as None
        layout = self._layout_now()
        client = self._open()
        keys = self._primary_keys(ids, layout)
        values = self._typed(columns).to_pylist()
        step = self.batch_rows(layout.dim)
        for start in range(0, len(keys), step):
            rows = [{**values[i], self._primary: keys[i]} for i in range(start, min(start + step, len(keys)))]
            with self.errors("writing columns"):
                client.upsert(self.uri.collection, rows, partial_update=True)
        self._unflushed = self._lite_path is not None
        self.__dict__.pop("_layout", None)

    def _primary_keys(self, ids: np.ndarray, layout: StoreSchema) -> list:
        """The primary keys of the rows whose id column holds ``ids`` (the ids themselves, usually)."""
        keys = ids.tolist()
        if layout.id_column == self._primary:
            return keys
        found: dict = {}
        step = self.batch_rows(layout.dim)
        for start in range(0, len(keys), step):
            with self.errors("looking up primary keys"):
                rows = self._reading().query(
                    self.uri.collection,
                    filter=_in_filter(layout.id_column, keys[start : start + step]),
                    output_fields=[self._primary, layout.id_column],
                    consistency_level="Strong",
                )
            found.update((row[layout.id_column], row[self._primary]) for row in rows)
        if len(found) < len(set(keys)):
            raise self.unknown_ids(ids, list(found))
        return [found[key] for key in keys]

    def _typed(self, table: pa.Table | None) -> pa.Table | None:
        """``table`` with the columns of declared fields cast to their types; the others must fit the dynamic
        field."""
        if table is None:
            return None
        columns = {}
        for name in table.column_names:
            kind = self._fields.get(name)
            if kind is None and not self._dynamic:
                raise StoreError(
                    f"{self.name}: the collection has no field {name!r} and no dynamic field to hold it; add the "
                    "field to the collection or leave the column out."
                )
            if kind in _VECTOR_TYPES:
                raise StoreError(f"{self.name}: {name!r} is the collection's vector field {kind}; it is not payload.")
            columns[name] = _cast(self.name, table.column(name), name, kind)
        return pa.table(columns)

    def batch_rows(self, dim: int) -> int:
        return max(1, min(_MAX_QUERY_ROWS, _VECTOR_BYTES // (4 * max(dim, 1))))

    def close(self) -> None:
        """Release the client, and stop the Milvus Lite server when no other store of this process uses the file."""
        if self._client is None:
            return
        with self.errors("closing the client"):
            self._client.close()
        self._client = None
        self._loaded = False
        if self._lite_path is not None:
            with _LITE_LOCK:
                _LITE_USERS[self._lite_path] -= 1
                last = _LITE_USERS[self._lite_path] == 0
                if last:
                    del _LITE_USERS[self._lite_path]
                    from milvus_lite.server_manager import server_manager_instance

                    server_manager_instance.release_server(self._lite_path)


class _MessageFilter(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def _check_name(text: str, what: str, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ConfigurationError(f"{text}: {name!r} is not a Milvus {what} name; Milvus names are {_NAME_RULE}.")


def _check_pageable(name: str, key) -> None:
    # pymilvus's query_iterator writes the last key of a page into the next filter without escaping it
    if isinstance(key, str) and ('"' in key or "\\" in key):
        raise StoreError(
            f"{name}: the id {key!r} holds a quote or a backslash, which pymilvus's query iterator cannot page past; "
            "Milvus collections read by embedlab need ids without them."
        )


def _type_name(kind) -> str:
    return getattr(kind, "name", str(kind))


def _dynamic_keys(row: dict, fields: dict[str, str]) -> dict:
    return {key: value for key, value in row.items() if key not in fields}


def _in_filter(field: str, keys: list) -> str:
    """A filter for rows whose ``field`` is one of ``keys`` (Milvus Lite takes no filter templates; strings are
    JSON literals, which Milvus's expressions read)."""
    return f"{field} in [{', '.join(map(_literal, keys))}]"


def _literal(key) -> str:
    return json.dumps(key, ensure_ascii=False) if isinstance(key, str) else str(int(key))


def _cast(name: str, values: pa.ChunkedArray, column: str, kind: str | None) -> pa.ChunkedArray:
    wanted = _ARROW_TYPES.get(kind or "")
    if wanted is None or values.type == wanted:
        return values
    try:
        return values.cast(wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise StoreError(
            f"{name}: field {column!r} is {kind}; the values written ({values.type}) do not convert ({err})."
        ) from None
