"""The one interface every vector store implements, and the reader that makes a store a source of chunks."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from embedlab.exceptions import EmbeddingDataError, EmbedlabError
from embedlab.io.readers import Part, RawChunk, SourceInfo, _Source, row_ranges
from embedlab.io.stores._uri import StoreURI, read_secret, scrub

__all__ = ["METRICS", "Store", "StoreBatch", "StoreError", "StoreSchema", "StoreSource", "records_table"]

logger = logging.getLogger(__name__)

#: Distances a collection may be created with (each store's own name is chosen by its module).
METRICS = ("cosine", "l2", "ip")
#: Rows whose payload fixes the metadata columns of a schemaless store (keys first seen later are reported).
SCHEMA_SAMPLE_ROWS = 1000


class StoreError(EmbeddingDataError):
    """A store refused or failed an operation: unreachable, authentication failed, missing collection, ...

    The message names the store and the collection, never a password, key or token.
    """


@dataclass(frozen=True)
class StoreSchema:
    """What a collection holds, read without its vectors.

    Attributes
    ----------
    n_rows : int
    dim : int
    vector_column : str
        The vector field (Qdrant's named vector, Milvus's vector field, the table column).
    id_column : str
        Where the ids come from: the store's own id, or a payload field holding them.
    id_type : {"int", "str"}
    metadata_columns : tuple of str
        Payload fields read as metadata (for schemaless stores, those of the first rows).
    metric : str or None
        The distance the collection was created with, when the store records one.
    """

    n_rows: int
    dim: int
    vector_column: str
    id_column: str
    id_type: str
    metadata_columns: tuple[str, ...] = ()
    metric: str | None = None


@dataclass
class StoreBatch:
    """Consecutive rows of a scan: ids (int64 or object strings), float32 vectors, payload columns."""

    ids: np.ndarray
    vectors: np.ndarray | None
    metadata: pa.Table | None = None
    extra_keys: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.ids)


class Store(ABC):
    """One collection (or table) of a vector store, opened from its URI.

    Subclasses know one store. Ids are int64 or string numpy arrays; vectors float32 ``(n, dim)``; payload an
    Arrow table. Every error a client raises leaves through :meth:`errors` as a :class:`StoreError` that names
    the store and the collection with the secret scrubbed.

    Parameters
    ----------
    uri : StoreURI
    column : str, optional
        The vector field, when the collection has several (else the URI's ``column`` option or the only one).
    id_column : str, optional
        A payload field holding the ids, instead of the store's own ids.
    credentials : path-like, optional
        A file whose first line is the password, API key or token; else the store's environment variable.
    """

    #: The embedlab extra that installs the client.
    extra: ClassVar[str]
    #: The environment variable holding the secret, if the store has one.
    secret_variable: ClassVar[str | None] = None
    #: Whether the store keeps vectors as given (False: cosine collections store them unit-normalised).
    keeps_norms: ClassVar[bool] = True
    #: Whether a collection's payload columns are fixed by its schema (a table): then rows whose payload has
    #: other fields cannot be appended without losing them, and an append refuses them.
    fixed_columns: ClassVar[bool] = False

    def __init__(
        self, uri: StoreURI, *, column: str | None = None, id_column: str | None = None, credentials=None
    ) -> None:
        self.uri = uri
        self.column = column or uri.options.get("column")
        self.id_column = id_column or uri.options.get("id")
        self.secret = read_secret(credentials, self.secret_variable)

    @property
    def name(self) -> str:
        """How errors name the collection: the URI (which holds no secret)."""
        return self.uri.text

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn a client's exception during ``action`` into a :class:`StoreError` without the secret."""
        try:
            yield
        except EmbedlabError:
            raise
        except Exception as err:  # every client has its own hierarchy; all of them end here
            detail = scrub(f"{type(err).__name__}: {err}", self.secret).strip()
            raise StoreError(f"{self.name}: {action} failed ({detail[:600]}).") from None

    # reading

    @abstractmethod
    def exists(self) -> bool:
        """Whether the collection exists."""

    @abstractmethod
    def schema(self) -> StoreSchema:
        """The collection's layout and row count.

        Raises
        ------
        StoreError
            When the collection does not exist or holds no float vectors.
        """

    @abstractmethod
    def count(self) -> int:
        """Rows in the collection now."""

    @abstractmethod
    def scan(
        self,
        batch_size: int,
        *,
        with_vectors: bool = True,
        with_metadata: bool = True,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[StoreBatch]:
        """Rows ``start`` to ``stop - 1`` (every row by default) of the store's stable order, each once,
        ``batch_size`` rows at a time (the last may be shorter).

        The order is the one every scan of an unchanged collection gives, so row ranges read in different
        processes (shards, a resumed export) together cover the collection once.
        """

    @abstractmethod
    def fetch(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of ``ids``, in that order.

        Raises
        ------
        StoreError
            When some ids are not in the collection (the first are named).
        """

    # writing

    @abstractmethod
    def create(self, dim: int, *, id_type: str, metric: str, metadata: pa.Schema | None) -> None:
        """Create the collection, empty (it must not exist)."""

    @abstractmethod
    def drop(self) -> None:
        """Delete the collection and everything in it."""

    @abstractmethod
    def write(self, ids: np.ndarray, vectors: np.ndarray, metadata: pa.Table | None, *, upsert: bool) -> None:
        """Add rows; with ``upsert`` rows whose id exists are replaced (how a resumed import rewrites its last
        batch without writing a row twice)."""

    @abstractmethod
    def set_columns(self, ids: np.ndarray, columns: pa.Table) -> None:
        """Set payload ``columns`` of the existing rows ``ids`` (which the caller has checked), vectors untouched."""

    def batch_rows(self, dim: int) -> int:
        """Rows per write or read request: within the store's documented limits."""
        return max(1, min(10_000, (16 * 2**20) // (4 * max(dim, 1))))

    def close(self) -> None:  # noqa: B027 - most clients need no closing
        """Release the client."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # shared helpers

    def missing(self, what: str) -> StoreError:
        return StoreError(f"{self.name}: no {what} {self.uri.collection!r} in {self.uri.location}.")

    def unknown_ids(self, wanted: np.ndarray, found: Sequence[Any]) -> StoreError:
        absent = sorted(set(_plain(wanted)) - set(_plain(np.asarray(found, dtype=wanted.dtype))))
        return StoreError(
            f"{self.name}: {len(absent):,} of the {len(wanted):,} ids asked for are not in the collection "
            f"(first: {', '.join(map(str, absent[:5]))})."
        )


def _plain(ids: np.ndarray) -> list:
    return ids.tolist()


def ids_array(values: Sequence[Any], id_type: str) -> np.ndarray:
    """Ids as the int64 or object array embedlab uses everywhere."""
    if id_type == "int":
        return np.asarray(values, dtype=np.int64)
    out = np.empty(len(values), dtype=object)
    out[:] = [str(v) for v in values]
    return out


def id_type_of(ids: np.ndarray) -> str:
    """``"int"`` for integer ids, else ``"str"``."""
    return "int" if np.issubdtype(ids.dtype, np.integer) else "str"


def vectors_array(values: Sequence[Sequence[float]], dim: int, name: str) -> np.ndarray:
    """A float32 ``(n, dim)`` matrix from a client's vectors, refusing ragged or missing ones."""
    try:
        out = np.asarray(values, dtype=np.float32)
    except (ValueError, TypeError) as err:
        raise StoreError(f"{name}: the vectors are missing or of different lengths ({err}).") from None
    if out.ndim != 2 or out.shape[1] != dim:
        raise StoreError(f"{name}: expected vectors of dimension {dim}, got an array of shape {out.shape}.")
    return out


def payload_value(value: Any) -> Any:
    """A metadata value as a JSON-like store holds it: numpy scalars as Python ones, nested values kept."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def records_table(records: Sequence[dict], columns: Sequence[str], types: dict[str, pa.DataType] | None) -> pa.Table:
    """The payload of a schemaless store's rows as a table of ``columns`` (missing keys are nulls).

    Values that do not fit the column's type (or nested values) are kept as JSON text rather than dropped.
    """
    arrays = {}
    for column in columns:
        values = [record.get(column) for record in records]
        wanted = None if types is None else types.get(column)
        arrays[column] = _column_array(values, wanted)
    return pa.table(arrays) if arrays else pa.table({})


def _column_array(values: list, wanted: pa.DataType | None) -> pa.Array:
    try:
        array = pa.array(values, type=wanted)
        if pa.types.is_nested(array.type) or (pa.types.is_null(array.type) and wanted is None):
            raise pa.ArrowInvalid("nested")
        return array
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        text = [None if v is None else (v if isinstance(v, str) else json.dumps(v, default=str)) for v in values]
        return pa.array(text, type=pa.string())


def infer_types(records: Sequence[dict]) -> tuple[list[str], dict[str, pa.DataType]]:
    """The columns (in first-seen order) and Arrow types of a schemaless store's first rows."""
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    types = {name: _column_array([r.get(name) for r in records], None).type for name in columns}
    return list(columns), types


def table_records(metadata: pa.Table | None, n: int) -> list[dict]:
    """One payload dict per row (nulls left out), what JSON-like stores write."""
    if metadata is None or metadata.num_columns == 0:
        return [{} for _ in range(n)]
    rows = metadata.to_pylist()
    return [{key: value for key, value in row.items() if value is not None} for row in rows]


class StoreSource(_Source):
    """A store collection read as a source of raw chunks (what :func:`embedlab.load`, ``iter_batches`` and
    ``open_shards`` read), with a check that the collection does not change while it is read."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.errors("reading the collection's layout"):
            self.layout = store.schema()
        layout = self.layout
        self.info = SourceInfo(
            store.uri.text,
            store.uri.store,
            layout.n_rows,
            layout.dim,
            "float32",
            layout.vector_column,
            layout.id_column,
            layout.metadata_columns,
            {},
        )

    def parts(self, rows: int) -> list[Part]:
        """Row ranges of the store's scan order, each read by whoever opens the URI (Qdrant's local mode and
        Milvus Lite lock their folder or file: only the process that holds it may read them)."""
        return row_ranges(self.info.n_rows, rows, self.info.path)

    def iter_chunks(self, batch_size: int, part: Part | None = None) -> Iterator[RawChunk]:
        total = self.info.n_rows
        first = 0 if part is None else part.start
        stop = total if part is None else part.start + part.n_rows
        start = first
        extra: set[str] = set()
        # the last part reads on to the scan's end, so rows added since the layout was read are noticed
        for batch in self.store.scan(batch_size, start=first, stop=None if stop == total else stop):
            if batch.vectors is None:
                raise StoreError(f"{self.store.name}: the scan returned no vectors.")
            if start + len(batch) > stop:
                raise self.changed(total, f"more than {start + len(batch):,} rows were read")
            extra |= batch.extra_keys
            yield RawChunk(batch.vectors, batch.ids, batch.metadata, start)
            start += len(batch)
        now = self.store.count()
        if start != stop or now != total:
            raise self.changed(total, f"{start - first:,} rows were read from row {first:,} and it holds {now:,} now")
        if extra:
            logger.warning(
                "%s: payload keys %s first appear after the first %d rows and were not read",
                self.store.name,
                ", ".join(sorted(extra)),
                SCHEMA_SAMPLE_ROWS,
            )

    def changed(self, expected: int, what: str) -> StoreError:
        return StoreError(
            f"{self.store.name}: the collection changed while it was read: it held {expected:,} rows when the read "
            f"began, and {what}. Read it again when no one is writing to it (or from a snapshot)."
        )

    def read_all(self) -> RawChunk:
        n, dim = self.info.n_rows, self.info.dim
        vectors = np.empty((n, dim), dtype=np.float32)
        ids, metadata = [], []
        for chunk in self.iter_chunks(self.store.batch_rows(dim)):
            vectors[chunk.start : chunk.stop] = chunk.vectors
            ids.append(chunk.ids)
            if chunk.metadata is not None and chunk.metadata.num_columns:
                metadata.append(chunk.metadata)
        all_ids = np.concatenate(ids) if ids else np.empty(0, np.int64)
        table = pa.concat_tables(metadata, promote_options="permissive").combine_chunks() if metadata else None
        return RawChunk(vectors, all_ids, table, 0)
