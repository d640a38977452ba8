"""Qdrant, embedded on a folder (``qdrant://DIR/COLLECTION``) or a server (``qdrant+http(s)://HOST:PORT/COLLECTION``).

Qdrant's point ids are unsigned integers or UUIDs. Integer ids are the point ids. String ids are kept in a
payload field (the id column, ``id`` by default), and the point id is the string itself when it is a UUID
written canonically, else its uuid5 (so two spellings of one UUID stay two rows).
"""

from __future__ import annotations

import json
import math
import os
import threading
import uuid
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from embedlab._optional import import_optional
from embedlab.exceptions import ConfigurationError
from embedlab.io.embedding_set import ID_COLUMN
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

__all__ = ["QdrantStore"]

#: The namespace of the uuid5 point ids of string ids that are not UUIDs.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "embedlab:qdrant:id")
#: Qdrant's distances by embedlab's metric names, and back.
_DISTANCES = {"cosine": "Cosine", "l2": "Euclid", "ip": "Dot"}
_METRICS = {**{v: k for k, v in _DISTANCES.items()}, "Manhattan": "manhattan"}
#: The id column a schema names when the ids are the point ids (no payload field is called so).
_POINT_ID = "(point id)"
#: How a schema names Qdrant's unnamed vector (its API name is ""), and what a shard opens the store with.
_UNNAMED = "(unnamed vector)"
#: Seconds a request to a server may take (a refused or unreachable server fails within it).
_TIMEOUT = 10
#: Qdrant's REST API refuses requests over 32 MiB by default (``service.max_request_size_mb``); vectors are sent
#: as JSON, up to 24 bytes a float32 value, and take at most half of it so that the payload has room.
_REQUEST_BYTES = 32 * 2**20
_VALUE_BYTES = 24
#: Local-mode clients open in this process, by folder, with the count of stores using each: qdrant-client locks
#: the folder, so a second client on it (a shard reading its rows, an export verifying) would be refused.
_LOCAL_CLIENTS: dict[str, list] = {}
_LOCAL_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Layout:
    """A collection's schema and what reading it needs besides: the vector's name, where ids are, payload types."""

    schema: StoreSchema
    vector: str  # "" is Qdrant's unnamed vector
    id_key: str | None  # the payload field of the ids; None: the point ids
    unit: bool  # whether read vectors are normalised here (see QdrantStore._unit)
    types: dict[str, pa.DataType] = field(default_factory=dict)


class QdrantStore(Store):
    """A Qdrant collection: ``qdrant://DIR/COLLECTION`` (local mode), ``qdrant+http://HOST:PORT/COLLECTION``.

    A cosine collection holds its vectors unit-normalised (Qdrant normalises them on insert), so for it
    :attr:`keeps_norms` is False. The URI option ``timeout`` sets the seconds a server request may take
    (default 10).
    """

    extra = "qdrant"
    secret_variable = "QDRANT_API_KEY"

    def __init__(self, uri, **kwargs) -> None:
        super().__init__(uri, **kwargs)
        qdrant_client = import_optional("qdrant_client", "qdrant", purpose=f"Opening {uri.text}")
        self.models = qdrant_client.models
        if uri.remote:
            scheme = "https" if uri.scheme == "qdrant+https" else "http"
            timeout = _timeout(uri.options.get("timeout", _TIMEOUT), uri.text)
            with self.errors("connecting"):
                self.client = qdrant_client.QdrantClient(
                    url=f"{scheme}://{uri.location}", api_key=self.secret, timeout=timeout, check_compatibility=False
                )
        else:
            folder = os.path.abspath(uri.location)
            with _LOCAL_LOCK:
                if folder not in _LOCAL_CLIENTS:
                    with self.errors("opening the storage folder (one process at a time may open it)"):
                        _LOCAL_CLIENTS[folder] = [qdrant_client.QdrantClient(path=uri.location), 0]
                entry = _LOCAL_CLIENTS[folder]
                entry[1] += 1
                self.client = entry[0]
            # released when closed, or when the store is collected unclosed (a source read by embedlab.load)
            self._release = weakref.finalize(self, _release_local, folder)
        self._layout: _Layout | None = None

    @property
    def keeps_norms(self) -> bool:  # type: ignore[override]  # decided by the collection's distance
        """False for a cosine collection, whose vectors Qdrant stores unit-normalised."""
        return self._layout_now().schema.metric != "cosine"

    def close(self) -> None:
        """Release the client (in local mode, the storage folder's lock once no store of this process uses it)."""
        if self.uri.remote:
            with self.errors("closing the client"):
                self.client.close()
        else:
            self._release()

    # reading

    def exists(self) -> bool:
        with self.errors("listing collections"):
            return self.client.collection_exists(self.uri.collection)

    def schema(self) -> StoreSchema:
        if not self.exists():
            raise self.missing("collection")
        with self.errors("reading the collection's configuration"):
            params = self.client.get_collection(self.uri.collection).config.params
        vector, dim, distance = self._vector(params)
        with self.errors("reading the first points"):
            sample, _ = self.client.scroll(
                self.uri.collection, limit=SCHEMA_SAMPLE_ROWS, with_payload=True, with_vectors=False
            )
        payloads = [point.payload or {} for point in sample]
        id_key = self._id_key(payloads)
        if id_key is None:
            found = [point.id for point in sample]
        else:
            found = [payload[id_key] for payload in payloads]
        id_type = "int" if all(isinstance(v, int) and not isinstance(v, bool) for v in found) else "str"
        columns, types = infer_types([{k: v for k, v in p.items() if k != id_key} for p in payloads])
        schema = StoreSchema(
            self.count(),
            dim,
            vector or _UNNAMED,
            id_key or _POINT_ID,
            id_type,
            tuple(columns),
            _METRICS.get(getattr(distance, "value", distance)),
        )
        self._layout = _Layout(schema, vector, id_key, self._unit(schema.metric), types)
        return schema

    def _vector(self, params) -> tuple[str, int, Any]:
        """The dense vector read (its name, dimension and distance), refusing what embedlab cannot read."""
        vectors = params.vectors
        named = {"": vectors} if isinstance(vectors, self.models.VectorParams) else dict(vectors or {})
        dense = {name: p for name, p in named.items() if p.multivector_config is None}
        others = sorted(set(named) - set(dense)) + sorted(params.sparse_vectors or {})
        if self.column is not None and not (self.column == _UNNAMED and "" in dense):
            if self.column not in dense:
                what = "a multivector or sparse vector" if self.column in others else "not one of its vectors"
                raise StoreError(
                    f"{self.name}: {self.column!r} is {what}; the collection's dense vectors are {_names(dense)}."
                )
            name = self.column
        elif len(dense) == 1:
            name = next(iter(dense))
        elif not dense:
            raise StoreError(
                f"{self.name}: the collection holds no dense vector of one row each (only multivectors or sparse "
                f"vectors: {', '.join(map(repr, others)) or 'none'}), which embedlab does not read."
            )
        else:
            raise StoreError(
                f"{self.name}: the collection has several named vectors ({_names(dense)}); choose one with "
                "?column=NAME."
            )
        return name, int(dense[name].size), dense[name].distance

    def _unit(self, metric: str | None) -> bool:
        """Whether vectors read from the collection must be normalised here: a cosine collection holds unit
        vectors, but qdrant-client's local mode stores them as given and, once the folder is opened again,
        returns them so (it normalises only those inserted since it opened)."""
        return metric == "cosine" and not self.uri.remote

    def _id_key(self, payloads: Sequence[dict]) -> str | None:
        if self.id_column == _POINT_ID:  # as a schema names the point ids (a shard opens the store with it)
            return None
        if self.id_column is not None:
            if any(self.id_column not in payload for payload in payloads):
                raise StoreError(
                    f"{self.name}: the first points have no payload field {self.id_column!r} to read ids from."
                )
            return self.id_column
        return ID_COLUMN if payloads and all(ID_COLUMN in payload for payload in payloads) else None

    def _layout_now(self) -> _Layout:
        if self._layout is None:
            self.schema()
        return self._layout

    def count(self) -> int:
        with self.errors("counting points"):
            return self.client.count(self.uri.collection, exact=True).count

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
        payload: bool | list[str] = True if with_metadata else ([layout.id_key] if layout.id_key else False)
        vectors: bool | list[str] = ([layout.vector] if layout.vector else True) if with_vectors else False
        offset = self._point_at(start) if start else None
        if start and offset is None:
            return
        left = None if stop is None else stop - start
        while left is None or left > 0:
            limit = batch_size if left is None else min(batch_size, left)
            with self.errors("reading points"):
                points, offset = self.client.scroll(
                    self.uri.collection, limit=limit, offset=offset, with_payload=payload, with_vectors=vectors
                )
            if points:
                yield self._batch(points, layout, with_vectors, with_metadata)
                left = None if left is None else left - len(points)
            if offset is None:
                return

    def _point_at(self, position: int) -> Any:
        """The id of the point at ``position`` of the scroll order (points are scrolled by id, so a scan can start
        there), found by scrolling ids only; None past the end."""
        offset, left = None, position
        while left > 0:
            with self.errors("reading point ids"):
                points, offset = self.client.scroll(
                    self.uri.collection, limit=min(left, 10_000), offset=offset, with_payload=False, with_vectors=False
                )
            left -= len(points)
            if offset is None:
                return None
        return offset

    def _batch(self, points, layout: _Layout, with_vectors: bool, with_metadata: bool) -> StoreBatch:
        payloads = [point.payload or {} for point in points]
        ids = ids_array([self._id_of(point, layout) for point in points], layout.schema.id_type)
        vectors = None
        if with_vectors:
            vectors = self._vectors([self._vector_of(p, layout) for p in points], layout)
        metadata, extra = None, set()
        if with_metadata:
            columns = layout.schema.metadata_columns
            metadata = records_table(payloads, columns, layout.types) if columns else None
            known = {*columns, layout.id_key}
            extra = {key for payload in payloads for key in payload if key not in known}
        return StoreBatch(ids, vectors, metadata, extra)

    def _id_of(self, point, layout: _Layout) -> Any:
        if layout.id_key is None:
            return point.id
        value = (point.payload or {}).get(layout.id_key)
        if value is None:
            raise StoreError(f"{self.name}: point {point.id} has no payload field {layout.id_key!r} holding its id.")
        return value

    @staticmethod
    def _vector_of(point, layout: _Layout) -> Any:
        vector = point.vector
        return vector.get(layout.vector) if isinstance(vector, dict) else vector

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        layout = self._layout_now()
        found = self._find(ids, layout, with_vectors=True)
        wanted = ids.tolist()
        if any(key not in found for key in wanted):
            raise self.unknown_ids(ids, list(found))
        return self._vectors([self._vector_of(found[key], layout) for key in wanted], layout)

    def _vectors(self, values: list, layout: _Layout) -> np.ndarray:
        vectors = vectors_array(values, layout.schema.dim, self.name)
        if layout.unit:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            np.divide(vectors, norms, out=vectors, where=norms > 0)
        return vectors

    def _find(self, ids: np.ndarray, layout: _Layout, *, with_vectors: bool) -> dict[Any, Any]:
        """The points of ``ids`` by id: retrieved by the point ids they were written under, then (for ids kept in
        the payload of a collection not written by embedlab) looked for by a payload filter."""
        vectors: bool | list[str] = ([layout.vector] if layout.vector else True) if with_vectors else False
        payload: bool | list[str] = [layout.id_key] if layout.id_key else False
        with self.errors("fetching points by id"):
            records = self.client.retrieve(
                self.uri.collection, _point_ids(ids), with_payload=payload, with_vectors=vectors
            )
        found = {}
        for record in records:
            key = (record.payload or {}).get(layout.id_key) if layout.id_key else record.id
            found[key] = record
        rest = [key for key in dict.fromkeys(ids.tolist()) if key not in found]
        if rest and layout.id_key:
            match = self.models.FieldCondition(key=layout.id_key, match=self.models.MatchAny(any=rest))
            with self.errors("fetching points by their payload id"):
                records, _ = self.client.scroll(
                    self.uri.collection,
                    scroll_filter=self.models.Filter(must=[match]),
                    limit=len(rest),
                    with_payload=payload,
                    with_vectors=vectors,
                )
            found.update({record.payload[layout.id_key]: record for record in records})
        return found

    # writing

    def create(self, dim: int, *, id_type: str, metric: str, metadata: pa.Schema | None) -> None:
        del metadata  # payload is schemaless
        if self.exists():
            raise StoreError(f"{self.name}: the collection exists; import with --mode append or --mode overwrite.")
        params = self.models.VectorParams(size=dim, distance=self.models.Distance(_DISTANCES[metric]))
        with self.errors("creating the collection"):
            self.client.create_collection(
                self.uri.collection, vectors_config={self.column: params} if self.column else params
            )
        id_key = self.id_column or (ID_COLUMN if id_type == "str" else None)
        schema = StoreSchema(0, dim, self.column or "", id_key or _POINT_ID, id_type, (), metric)
        self._layout = _Layout(schema, self.column or "", id_key, self._unit(metric))

    def drop(self) -> None:
        with self.errors("dropping the collection"):
            self.client.delete_collection(self.uri.collection)
        self._layout = None

    def write(self, ids: np.ndarray, vectors: np.ndarray, metadata: pa.Table | None, *, upsert: bool) -> None:
        """Upsert the rows and wait until they are applied (Qdrant replaces a point by id, so a plain write and
        an upsert are the same request)."""
        del upsert
        layout = self._layout_now()
        payloads = table_records(metadata, len(ids))
        id_key = self.id_column or (None if np.issubdtype(ids.dtype, np.integer) else ID_COLUMN)
        if id_key is not None:
            for payload, key in zip(payloads, ids.tolist(), strict=True):
                payload[id_key] = key
        rows = np.asarray(vectors, dtype=np.float32).tolist()
        batch = self.models.Batch(
            ids=self._checked_point_ids(ids),
            vectors={layout.vector: rows} if layout.vector else rows,
            payloads=payloads,
        )
        with self.errors("writing points"):
            self.client.upsert(self.uri.collection, points=batch, wait=True)

    def _checked_point_ids(self, ids: np.ndarray) -> list:
        if np.issubdtype(ids.dtype, np.integer) and ids.size and int(ids.min()) < 0:
            raise StoreError(
                f"{self.name}: Qdrant's point ids are unsigned integers or UUIDs, and {int(ids.min())} is negative; "
                "write the ids as strings (they are then kept in the payload) or shift them."
            )
        return _point_ids(ids)

    def set_columns(self, ids: np.ndarray, columns: pa.Table) -> None:
        """Set payload fields by id, one request per batch: rows given the same values share one operation, and
        null values delete the field."""
        layout = self._layout_now()
        if layout.id_key is None:
            points = _point_ids(ids)
        else:
            found = self._find(ids, layout, with_vectors=False)
            if len(found) < len(set(ids.tolist())):
                raise self.unknown_ids(ids, list(found))
            points = [found[key].id for key in ids.tolist()]
        groups: dict[str, tuple[dict, list]] = {}
        nulls: dict[str, list] = {}
        for point, row in zip(points, columns.to_pylist(), strict=True):
            values = {key: value for key, value in row.items() if value is not None}
            for key in row.keys() - values.keys():
                nulls.setdefault(key, []).append(point)
            if values:
                text = json.dumps(values, sort_keys=True, default=str)
                groups.setdefault(text, (values, []))[1].append(point)
        models = self.models
        operations = [
            models.SetPayloadOperation(set_payload=models.SetPayload(payload=values, points=group))
            for values, group in groups.values()
        ]
        operations += [
            models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=[key], points=group))
            for key, group in nulls.items()
        ]
        if not operations:
            return
        with self.errors("writing payload"):
            self.client.batch_update_points(self.uri.collection, operations, wait=True)
        if not set(columns.column_names) <= set(layout.schema.metadata_columns):
            self._layout = None  # a scan reads the new fields

    def batch_rows(self, dim: int) -> int:
        return max(1, min(10_000, (_REQUEST_BYTES // 2) // (_VALUE_BYTES * max(dim, 1))))


def _point_ids(ids: np.ndarray) -> list:
    """The point ids embedlab writes ``ids`` under: integers as they are, strings as UUIDs."""
    if np.issubdtype(ids.dtype, np.integer):
        return ids.tolist()
    return [_uuid_of(str(key)) for key in ids.tolist()]


def _uuid_of(key: str) -> str:
    try:
        if str(uuid.UUID(key)) == key:
            return key
    except ValueError:
        pass
    return str(uuid.uuid5(_NAMESPACE, key))


def _names(vectors: dict) -> str:
    return ", ".join(repr(name) for name in vectors)


def _release_local(folder: str) -> None:
    """One store fewer on the local-mode client of ``folder``; the last one closes it."""
    with _LOCAL_LOCK:
        entry = _LOCAL_CLIENTS.get(folder)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _LOCAL_CLIENTS[folder]
            entry[0].close()


def _timeout(value: Any, name: str) -> int:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise ConfigurationError(f"{name}: timeout must be a positive number of seconds, not {value!r}.")
    return math.ceil(seconds)
