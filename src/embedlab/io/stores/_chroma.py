"""Chroma (a persistent client on a folder, or a server): string ids, flat metadata, pages read by offset."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from embedlab._optional import import_optional
from embedlab.exceptions import ConfigurationError
from embedlab.io.embedding_set import ID_COLUMN, VECTOR_COLUMN
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

__all__ = ["ChromaStore"]

#: Collection metadata recording what Chroma cannot: the ids' type (Chroma's are text) and the dimension.
_ID_TYPE_KEY = "embedlab:id_type"
_DIM_KEY = "embedlab:dim"
#: The metadata column that holds Chroma's documents (the texts beside the vectors), read and written.
DOCUMENT_COLUMN = "document"
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")
_NAME_RULE = (
    "3-512 characters from [a-zA-Z0-9._-], starting and ending with a letter or digit, with no '..', "
    "and not an IPv4 address"
)
_DEFAULT_PORTS = {"chroma+http": 8000, "chroma+https": 443}


class ChromaStore(Store):
    """A Chroma collection: ``chroma://DIR/COLLECTION`` (a persistent client on a folder) or
    ``chroma+http://HOST:PORT/COLLECTION`` and ``chroma+https://...`` (a server, with the token from
    ``CHROMA_API_KEY`` or a credentials file, and ``?tenant=`` / ``?database=`` when not the defaults).

    Chroma ids are text: integer ids are written as their decimal text and the collection's metadata records
    that they are integers. Payload is each row's metadata (nulls left out, nested values as JSON text). No
    embedding function is ever given or called: vectors are always written, so Chroma never loads a model.
    """

    extra = "chroma"
    secret_variable = "CHROMA_API_KEY"

    def __init__(self, uri, **kwargs) -> None:
        super().__init__(uri, **kwargs)
        _check_name(uri.text, uri.collection)
        if self.column not in (None, VECTOR_COLUMN):
            raise StoreError(
                f"{self.name}: a Chroma row has one vector, {VECTOR_COLUMN!r}; there is no {self.column!r}."
            )
        if self.id_column not in (None, ID_COLUMN):
            raise StoreError(
                f"{self.name}: Chroma rows are read by their own ids; a payload field ({self.id_column!r}) cannot "
                "serve as the id."
            )
        self._chromadb = import_optional("chromadb", "chroma", purpose=f"Opening {uri.text}")
        self._client = None
        self._collection = None
        self._max_batch: int | None = None
        self._types: dict[str, pa.DataType] = {}
        self._documents = False  # whether the collection's documents are read, as the DOCUMENT_COLUMN
        if self._readable():
            self._connect()

    def _readable(self) -> bool:
        """Whether there is a server or a folder to read (reading never creates the folder; create does)."""
        return self.uri.remote or Path(self.uri.location).is_dir()

    def _connect(self):
        settings = self._chromadb.config.Settings(anonymized_telemetry=False)
        with self.errors("connecting"):
            if self.uri.remote:
                self._client = self._http_client(settings)
            else:
                self._client = self._chromadb.PersistentClient(path=self.uri.location, settings=settings)
        return self._client

    def _http_client(self, settings):
        host, port = _host_port(self.uri.text, self.uri.location, _DEFAULT_PORTS[self.uri.scheme])
        # a server checks one of the two, as its chroma_auth_token_transport_header says
        headers = {"x-chroma-token": self.secret, "Authorization": f"Bearer {self.secret}"} if self.secret else None
        where = {key: self.uri.options[key] for key in ("tenant", "database") if key in self.uri.options}
        return self._chromadb.HttpClient(
            host=host, port=port, ssl=self.uri.scheme == "chroma+https", headers=headers, settings=settings, **where
        )

    def _client_now(self):
        return self._client if self._client is not None else self._connect()

    def _batch_limit(self) -> int:
        if self._max_batch is None:
            with self.errors("reading the maximum batch size"):
                self._max_batch = int(self._client_now().get_max_batch_size())
        return self._max_batch

    def _find(self):
        if self._collection is None and (self._client is not None or self._readable()):
            client = self._client_now()
            with self.errors("opening the collection"):
                try:
                    self._collection = client.get_collection(self.uri.collection, embedding_function=None)
                except self._chromadb.errors.NotFoundError:
                    return None
        return self._collection

    def _open(self):
        collection = self._find()
        if collection is None:
            raise self.missing("collection")
        return collection

    def exists(self) -> bool:
        return self._find() is not None

    def schema(self) -> StoreSchema:
        collection = self._open()
        info = collection.metadata or {}
        with self.errors("reading the first rows"):
            first = collection.get(
                limit=min(SCHEMA_SAMPLE_ROWS, self._batch_limit()), include=["metadatas", "documents"]
            )
            n = collection.count()
        columns, types = infer_types([record or {} for record in first["metadatas"] or []])
        columns.sort()  # Chroma keeps no order of a row's keys
        self._documents = DOCUMENT_COLUMN not in columns and any(d is not None for d in first["documents"] or [])
        if self._documents:
            columns.append(DOCUMENT_COLUMN)
            types[DOCUMENT_COLUMN] = pa.string()
        id_type = "int" if info.get(_ID_TYPE_KEY) == "int" else "str"
        self._layout = StoreSchema(
            n, self._dimension(collection, info), VECTOR_COLUMN, ID_COLUMN, id_type, tuple(columns), _metric(collection)
        )
        self._types = types
        return self._layout

    def _dimension(self, collection, info: dict) -> int:
        if info.get(_DIM_KEY):
            return int(info[_DIM_KEY])
        with self.errors("reading the first vector"):
            first = collection.get(limit=1, include=["embeddings"])
        if not first["ids"]:
            raise StoreError(f"{self.name}: the collection is empty and records no dimension; nothing to read.")
        return len(first["embeddings"][0])

    def _layout_now(self) -> StoreSchema:
        return getattr(self, "_layout", None) or self.schema()

    def count(self) -> int:
        with self.errors("counting rows"):
            return self._open().count()

    def scan(
        self,
        batch_size: int,
        *,
        with_vectors: bool = True,
        with_metadata: bool = True,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[StoreBatch]:
        # Chroma's get pages in the rows' insertion order (an upsert keeps a row's place), and a page costs the
        # same at any offset (measured flat to 50k rows), so offsets neither skip nor repeat rows.
        layout = self._layout_now()
        collection = self._open()
        include = ["embeddings"] * with_vectors + ["metadatas"] * with_metadata
        if with_metadata and self._documents:
            include.append("documents")
        offset = start
        while stop is None or offset < stop:
            rows = batch_size if stop is None else min(batch_size, stop - offset)
            ids, vectors, records = self._page(collection, offset, rows, include, layout.dim)
            if ids:
                yield self._batch(ids, vectors, records, layout, with_metadata)
            if len(ids) < rows:
                return
            offset += len(ids)

    def _page(self, collection, offset: int, rows: int, include: list[str], dim: int):
        """Up to ``rows`` rows from ``offset``, in gets of at most Chroma's batch size."""
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        records: list[dict] = []
        while len(ids) < rows:
            want = min(self._batch_limit(), rows - len(ids))
            with self.errors("reading rows"):
                got = collection.get(limit=want, offset=offset + len(ids), include=include)
            if not got["ids"]:
                break
            ids.extend(got["ids"])
            if "embeddings" in include:
                vectors.append(vectors_array(got["embeddings"], dim, self.name))
            if "metadatas" in include:
                page = [dict(record or {}) for record in got["metadatas"]]
                if "documents" in include:
                    for record, document in zip(page, got["documents"], strict=True):
                        record[DOCUMENT_COLUMN] = document
                records.extend(page)
            if len(got["ids"]) < want:
                break
        return ids, (np.concatenate(vectors) if vectors else None), records

    def _batch(self, ids, vectors, records, layout: StoreSchema, with_metadata: bool) -> StoreBatch:
        with self.errors("reading ids"):
            out = ids_array(ids, layout.id_type)
        metadata, extra = None, set()
        if with_metadata:
            extra = set().union(*records) - set(layout.metadata_columns)
            if layout.metadata_columns:
                metadata = records_table(records, layout.metadata_columns, self._types)
        return StoreBatch(out, vectors, metadata, extra)

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        layout = self._layout_now()
        collection = self._open()
        keys = _chroma_ids(ids)
        wanted = list(dict.fromkeys(keys))  # Chroma refuses a get that names an id twice
        found: dict[str, np.ndarray] = {}
        step = self._batch_limit()
        for start in range(0, len(wanted), step):
            with self.errors("fetching rows by id"):
                got = collection.get(ids=wanted[start : start + step], include=["embeddings"])
            if got["ids"]:
                found.update(zip(got["ids"], vectors_array(got["embeddings"], layout.dim, self.name), strict=True))
        if len(found) < len(wanted):
            raise self.unknown_ids(ids, ids_array(list(found), layout.id_type))
        if not keys:
            return np.empty((0, layout.dim), dtype=np.float32)
        return np.stack([found[key] for key in keys])

    def create(self, dim: int, *, id_type: str, metric: str, metadata: pa.Schema | None) -> None:
        del metadata  # Chroma's row metadata has no schema
        client = self._client_now()
        if self.exists():
            raise StoreError(f"{self.name}: the collection exists; import with --mode append or --mode overwrite.")
        with self.errors("creating the collection"):
            self._collection = client.create_collection(
                self.uri.collection,
                configuration={"hnsw": {"space": metric}},
                metadata={_ID_TYPE_KEY: id_type, _DIM_KEY: dim},
                embedding_function=None,
            )
        self.__dict__.pop("_layout", None)

    def drop(self) -> None:
        with self.errors("dropping the collection"):
            self._client_now().delete_collection(self.uri.collection)
        self._collection = None
        self.__dict__.pop("_layout", None)

    def write(self, ids: np.ndarray, vectors: np.ndarray, metadata: pa.Table | None, *, upsert: bool) -> None:
        """Add rows, or upsert them (Chroma merges an existing row's metadata with the one written: keys not
        written keep their values)."""
        collection = self._open()
        keys = _chroma_ids(ids)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        documents = None
        if metadata is not None and DOCUMENT_COLUMN in metadata.column_names:
            if pa.types.is_string(metadata.schema.field(DOCUMENT_COLUMN).type):
                documents = metadata.column(DOCUMENT_COLUMN).to_pylist()  # Chroma's documents, not a metadata key
                metadata = metadata.drop_columns([DOCUMENT_COLUMN])
        records = None if metadata is None else [_chroma_metadata(r) for r in table_records(metadata, len(keys))]
        step = self._batch_limit()
        for start in range(0, len(keys), step):
            part = slice(start, start + step)
            rows = None if records is None or not metadata.num_columns else records[part]
            texts = None if documents is None else documents[part]
            if upsert:
                with self.errors("writing rows"):
                    collection.upsert(ids=keys[part], embeddings=vectors[part], metadatas=rows, documents=texts)
                continue
            self._refuse_present(collection, keys[part])
            with self.errors("writing rows"):
                collection.add(ids=keys[part], embeddings=vectors[part], metadatas=rows, documents=texts)

    def _refuse_present(self, collection, keys: list[str]) -> None:
        """Chroma's add skips ids it holds without a word; refuse them instead (a lookup of ids is cheap)."""
        with self.errors("looking up ids"):
            present = collection.get(ids=keys, include=[])["ids"]
        if present:
            raise StoreError(
                f"{self.name}: {len(present):,} of the ids written are already in the collection (first: "
                f"{', '.join(present[:5])}); Chroma would skip them. Import with mode='overwrite', or leave them out."
            )

    def set_columns(self, ids: np.ndarray, columns: pa.Table) -> None:
        # update merges the keys given into each row's metadata (others and the vector are kept); None deletes
        # a key, which is how a null is written
        collection = self._open()
        keys = _chroma_ids(ids)
        records = [{key: _chroma_value(value) for key, value in row.items()} for row in columns.to_pylist()]
        step = self._batch_limit()
        for start in range(0, len(keys), step):
            with self.errors("writing columns"):
                collection.update(ids=keys[start : start + step], metadatas=records[start : start + step])
        self.__dict__.pop("_layout", None)

    def batch_rows(self, dim: int) -> int:
        # Chroma refuses an add, upsert or get of more rows than the client's get_max_batch_size() (5461 for a
        # persistent client), the bulk-load failures of chroma issues 1049, 1079 and 1298
        return max(1, min(self._batch_limit(), super().batch_rows(dim)))

    def close(self) -> None:
        """Release the client (the persistent client's SQLite file once no other client in the process uses it)."""
        if self._client is not None:
            with self.errors("closing the client"):
                self._client.close()
        self._client = self._collection = None


def _check_name(text: str, name: str) -> None:
    if _NAME.fullmatch(name) and ".." not in name and not _is_ipv4(name):
        return
    raise ConfigurationError(f"{text}: {name!r} is not a Chroma collection name; Chroma names are {_NAME_RULE}.")


def _is_ipv4(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def _host_port(text: str, location: str, default: int) -> tuple[str, int]:
    host, port = location, str(default)
    if ":" in location and not location.endswith("]"):  # "[::1]" is a host without a port
        host, port = location.rsplit(":", 1)
    if "/" in location or not host or not port.isdigit():
        raise ConfigurationError(f"{text}: expected HOST:PORT before the collection, got {location!r}.")
    return host.strip("[]"), int(port)


def _metric(collection) -> str | None:
    # the JSON, not .configuration, which would build the collection's embedding function from it
    configuration = collection.configuration_json or {}
    for index in ("hnsw", "spann"):
        space = (configuration.get(index) or {}).get("space")
        if space:
            return str(space)
    return None


def _chroma_ids(ids: np.ndarray) -> list[str]:
    return [str(key) for key in ids.tolist()]


def _chroma_metadata(record: dict) -> dict | None:
    """A row's payload as Chroma metadata: scalars kept, anything else as text (Chroma refuses an empty dict)."""
    return {key: _chroma_value(value) for key, value in record.items()} or None


def _chroma_value(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)
