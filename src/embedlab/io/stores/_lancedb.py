"""LanceDB (embedded, on a folder): a table is a Lance dataset, scanned fragment by fragment."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embedlab._optional import import_optional
from embedlab.io.embedding_set import ID_COLUMN, VECTOR_COLUMN
from embedlab.io.readers import PREFERRED_VECTOR_COLUMNS, _is_vector_type, _vectors_from_arrow
from embedlab.io.stores._base import Store, StoreBatch, StoreError, StoreSchema

__all__ = ["LanceDBStore"]

_METRIC_KEY = b"embedlab.metric"
#: Bytes of vectors a LanceDB request carries (Lance writes a fragment per call, so larger is better).
_BATCH_BYTES = 64 * 2**20


class LanceDBStore(Store):
    """A LanceDB table: ``lancedb://DIR/TABLE``."""

    extra = "lancedb"
    fixed_columns = True

    def __init__(self, uri, **kwargs) -> None:
        super().__init__(uri, **kwargs)
        lancedb = import_optional("lancedb", "lancedb", purpose=f"Opening {uri.text}")
        with self.errors("connecting"):
            self.db = lancedb.connect(uri.location)
        self._table = None

    def _open(self):
        if self._table is None:
            if not self.exists():
                raise self.missing("table")
            with self.errors("opening the table"):
                self._table = self.db.open_table(self.uri.collection)
        return self._table

    def exists(self) -> bool:
        with self.errors("listing tables"):
            return self.uri.collection in _table_names(self.db)

    def schema(self) -> StoreSchema:
        table = self._open()
        schema = table.schema
        vectors = [f.name for f in schema if _is_vector_type(f.type) and pa.types.is_fixed_size_list(f.type)]
        column = self.column or next((c for c in PREFERRED_VECTOR_COLUMNS if c in vectors), None)
        if column is None and len(vectors) == 1:
            column = vectors[0]
        if column is None or column not in schema.names:
            raise StoreError(
                f"{self.name}: no vector column {'named ' + repr(self.column) if self.column else 'found'} "
                f"(columns: {', '.join(schema.names)}); name it with ?column=NAME."
            )
        vector_type = schema.field(column).type
        if not _is_vector_type(vector_type) or not pa.types.is_fixed_size_list(vector_type):
            raise StoreError(f"{self.name}: column {column!r} has type {vector_type}, not a fixed-size vector.")
        id_column = self.id_column or (ID_COLUMN if ID_COLUMN in schema.names else None)
        if id_column is None or id_column not in schema.names:
            raise StoreError(
                f"{self.name}: no id column {'named ' + repr(self.id_column) if self.id_column else 'id'} "
                f"(columns: {', '.join(schema.names)}); name it with ?id=NAME."
            )
        id_type = "int" if pa.types.is_integer(schema.field(id_column).type) else "str"
        metadata = tuple(c for c in schema.names if c not in (column, id_column))
        metric = (schema.metadata or {}).get(_METRIC_KEY)
        with self.errors("counting rows"):
            n = table.count_rows()
        self._layout = StoreSchema(
            n, vector_type.list_size, column, id_column, id_type, metadata, metric.decode() if metric else None
        )
        return self._layout

    def count(self) -> int:
        with self.errors("counting rows"):
            return self._open().count_rows()

    def _layout_now(self) -> StoreSchema:
        return getattr(self, "_layout", None) or self.schema()

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
        columns = [layout.id_column]
        if with_vectors:
            columns.append(layout.vector_column)
        if with_metadata:
            columns.extend(layout.metadata_columns)
        limit = None if stop is None else max(stop - start, 0)
        if limit == 0:
            return
        with self.errors("reading rows"):
            dataset = self._open().to_lance()
            # Lance reads ahead many batches and fragments by default (twice the memory at 1M x 384)
            batches = dataset.to_batches(
                columns=columns,
                batch_size=batch_size,
                batch_readahead=1,
                fragment_readahead=1,
                offset=start or None,
                limit=limit,
            )
            for batch in batches:
                yield self._batch(batch, layout, start, with_vectors, with_metadata)
                start += batch.num_rows

    def _batch(self, batch, layout: StoreSchema, start: int, with_vectors: bool, with_metadata: bool) -> StoreBatch:
        ids = batch.column(layout.id_column).to_numpy(zero_copy_only=False)
        if layout.id_type == "str":
            ids = ids.astype(object)
        vectors = None
        if with_vectors:
            vectors = _vectors_from_arrow(batch.column(layout.vector_column), self.name, start, layout.dim, np.float32)
        metadata = None
        if with_metadata and layout.metadata_columns:
            metadata = pa.table({c: batch.column(c) for c in layout.metadata_columns})
        return StoreBatch(ids, vectors, metadata)

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        layout = self._layout_now()
        with self.errors("fetching rows by id"):
            found = (
                self._open()
                .to_lance()
                .to_table(
                    columns=[layout.id_column, layout.vector_column],
                    filter=pc.field(layout.id_column).isin(pa.array(ids.tolist())),
                )
            )
        have = found.column(layout.id_column).to_pylist()
        where = {key: i for i, key in enumerate(have)}
        if len(where) < len(set(ids.tolist())):
            raise self.unknown_ids(ids, have)
        vectors = _vectors_from_arrow(found.column(layout.vector_column), self.name, 0, layout.dim, np.float32)
        return vectors[[where[key] for key in ids.tolist()]]

    def create(self, dim: int, *, id_type: str, metric: str, metadata: pa.Schema | None) -> None:
        if self.exists():
            raise StoreError(f"{self.name}: the table exists; import with --mode append or --mode overwrite.")
        fields = [
            pa.field(self.id_column or ID_COLUMN, pa.int64() if id_type == "int" else pa.string(), nullable=False),
            pa.field(self.column or VECTOR_COLUMN, pa.list_(pa.float32(), dim)),
            *(metadata or []),
        ]
        schema = pa.schema(fields, metadata={_METRIC_KEY: metric.encode()})
        with self.errors("creating the table"):
            self._table = self.db.create_table(self.uri.collection, schema=schema)
        self.__dict__.pop("_layout", None)

    def drop(self) -> None:
        with self.errors("dropping the table"):
            self.db.drop_table(self.uri.collection)
        self._table = None
        self.__dict__.pop("_layout", None)

    def write(self, ids: np.ndarray, vectors: np.ndarray, metadata: pa.Table | None, *, upsert: bool) -> None:
        layout = self._layout_now()
        table = self._arrow(ids, vectors, metadata, layout)
        with self.errors("writing rows"):
            if upsert:
                (
                    self._open()
                    .merge_insert(layout.id_column)
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute(table)
                )
            else:
                self._open().add(table)

    def _arrow(self, ids, vectors, metadata, layout: StoreSchema) -> pa.Table:
        schema = self._open().schema
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        columns = {
            layout.id_column: pa.array(ids.tolist(), type=schema.field(layout.id_column).type),
            layout.vector_column: pa.FixedSizeListArray.from_arrays(flat, layout.dim),
        }
        for name in layout.metadata_columns:
            wanted = schema.field(name).type
            if metadata is not None and name in metadata.column_names:
                columns[name] = metadata.column(name).cast(wanted)
            else:
                columns[name] = pa.nulls(len(ids), type=wanted)
        return pa.table(columns).cast(schema)

    def set_columns(self, ids: np.ndarray, columns: pa.Table) -> None:
        layout = self._layout_now()
        table = self._open()
        new = [pa.field(c, columns.schema.field(c).type) for c in columns.column_names if c not in table.schema.names]
        with self.errors("writing columns"):
            if new:
                table.add_columns(new)
            schema = table.schema
            update = {layout.id_column: pa.array(ids.tolist(), type=schema.field(layout.id_column).type)}
            for name in columns.column_names:
                update[name] = columns.column(name).cast(schema.field(name).type)
            table.merge_insert(layout.id_column).when_matched_update_all().execute(pa.table(update))
        self.__dict__.pop("_layout", None)

    def batch_rows(self, dim: int) -> int:
        return max(1, min(200_000, _BATCH_BYTES // (4 * max(dim, 1))))


def _table_names(db) -> list[str]:
    listed = db.list_tables() if hasattr(db, "list_tables") else db.table_names()
    names = getattr(listed, "tables", listed)
    return list(names)
