"""PostgreSQL with pgvector: a table with a ``vector`` column, loaded through binary ``COPY``.

Writes build PostgreSQL's binary COPY format with numpy: each row is a field count, then a length and a value
per field, and pgvector's binary vector is its dimension (int16), an unused int16 and the values as big-endian
float32. Fixed-width fields without nulls (the vector, integer ids, numbers, booleans) are one structured array
per chunk of rows; only text, JSON and null fields are encoded row by row. Reads fetch batches from a
server-side cursor in binary, on a connection of their own (so the table can be counted and written while a scan
is paused between batches), and take the vectors from their binary form in one numpy view.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from urllib.parse import urlencode

import numpy as np
import pyarrow as pa

from embedlab._optional import import_optional
from embedlab.io.embedding_set import ID_COLUMN, VECTOR_COLUMN
from embedlab.io.readers import PREFERRED_VECTOR_COLUMNS
from embedlab.io.stores._base import Store, StoreBatch, StoreError, StoreSchema, ids_array

__all__ = ["PgVectorStore"]

#: Query parameters embedlab reads itself; every other one goes to libpq (``host``, ``sslmode``, ...).
_OWN_OPTIONS = ("table", "column", "id")
#: Seconds libpq waits for a server before giving up (unless the URI sets ``connect_timeout``).
_CONNECT_TIMEOUT = 10
#: Bytes of vectors a write (one COPY, one transaction) or a scan batch carries. The server's cost is per row
#: (tuple, WAL, index entry) and a batch adds one commit (a WAL flush), so loads gain nothing beyond a few MB
#: (100k x 384 rows: 0.77 s in batches of 1.5 MB, 0.54 s at 7 MB, 0.51 s at 15-150 MB); arrays under glibc's
#: 32 MB mmap ceiling are reused between batches instead of being mapped afresh (scans 15% faster than at 32 MB).
_BATCH_BYTES = 16 * 2**20
#: Bytes of rows encoded at a time within a COPY.
_CHUNK_BYTES = 2**20
#: Bytes of rows a scan fetches at a time.
_FETCH_BYTES = 4 * 2**20
_METRIC = re.compile(r"embedlab:metric=(\w+)")
_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # the signature, no flags, no header extension
_TRAILER = b"\xff\xff"
_SIZE = struct.Struct(">i")
_NULL = _SIZE.pack(-1)
#: Fixed-width PostgreSQL types copied in binary: their big-endian numpy form and the Arrow type read back.
_FIXED = {
    "int8": (">i8", pa.int64()),
    "int4": (">i4", pa.int32()),
    "int2": (">i2", pa.int16()),
    "float8": (">f8", pa.float64()),
    "float4": (">f4", pa.float32()),
    "bool": ("?", pa.bool_()),
}
_INTEGERS = ("int8", "int4", "int2")
_TEXT = ("text", "varchar", "bpchar")
_JSON = ("jsonb", "json")
#: Column types holding vectors that embedlab reads (halfvec is read as float32; only vector is written).
_VECTOR_TYPES = ("vector", "halfvec")


@dataclass(frozen=True)
class _Column:
    """A column of the table, as the catalog describes it."""

    name: str
    type: str  # pg_type.typname: int8, text, vector, _float4 (real[]), ...
    typmod: int
    shown: str  # format_type(): bigint, vector(384), real[], ...
    primary: bool


@dataclass(frozen=True)
class _Fixed:
    """A column of fixed-width fields without nulls: their binary form and the (native) values."""

    dtype: np.dtype
    values: np.ndarray


class PgVectorStore(Store):
    """A PostgreSQL table with a pgvector column: ``postgresql://USER@HOST:PORT/DB?table=[SCHEMA.]TABLE``.

    The vector column is the table's ``vector`` (or ``halfvec``) column, or the one ``?column=`` names; the ids
    are column ``id``, else the single-column primary key, else ``?id=``; the other columns are the payload.
    Query parameters other than ``table``, ``column`` and ``id`` go to libpq (``host=/socket/dir``,
    ``sslmode=require``, ...). The password comes from ``--credentials`` or ``PGPASSWORD`` (else libpq's
    ``~/.pgpass``), never from the URI.

    Tables it creates have the id as primary key (``bigint`` or ``text``), ``embedding vector(dim)``, payload
    columns typed from Arrow (integers ``bigint``, floats ``double precision``, booleans ``boolean``, strings
    ``text``, anything else ``jsonb``) and the metric in the table's comment (``embedlab:metric=cosine``).
    """

    extra = "pgvector"
    fixed_columns = True
    secret_variable = "PGPASSWORD"

    def __init__(self, uri, **kwargs) -> None:
        super().__init__(uri, **kwargs)
        purpose = f"Opening {uri.text}"
        self._psycopg = import_optional("psycopg", "pgvector", purpose=purpose)
        self._sql = import_optional("psycopg.sql", "pgvector", purpose=purpose)
        self._params = self._connection_params()
        self.conn = self._connect()
        self._table = self._sql.Identifier(*uri.collection.split(".", 1))
        self._layout: StoreSchema | None = None
        self._columns: dict[str, _Column] = {}

    # connecting

    def _connection_params(self) -> dict[str, str]:
        libpq = {key: value for key, value in self.uri.options.items() if key not in _OWN_OPTIONS}
        conninfo = f"postgresql://{self.uri.location}" + (f"?{urlencode(libpq)}" if libpq else "")
        with self.errors("reading the connection parameters"):
            params = self._psycopg.conninfo.conninfo_to_dict(conninfo)
        params.setdefault("connect_timeout", str(_CONNECT_TIMEOUT))
        params.setdefault("application_name", "embedlab")
        if self.secret:
            params["password"] = self.secret
        return params

    def _connect(self, *, autocommit: bool = True):
        host = self._params.get("host") or "the default host"
        user = self._params.get("user") or "the default user"
        with self.errors(f"connecting to {host} as {user}"):
            return self._psycopg.connect(**self._params, autocommit=autocommit)

    def close(self) -> None:
        self.conn.close()

    # reading

    def _oid(self, cur) -> int | None:
        cur.execute("SELECT to_regclass(%s)::oid", [self._table.as_string(self.conn)])
        return cur.fetchone()[0]

    def exists(self) -> bool:
        with self.errors("looking for the table"), self.conn.cursor() as cur:
            return self._oid(cur) is not None

    def _read_columns(self, cur) -> dict[str, _Column]:
        oid = self._oid(cur)
        if oid is None:
            raise self.missing("table")
        cur.execute(
            """
            SELECT a.attname, t.typname, a.atttypmod, format_type(a.atttypid, a.atttypmod),
                   coalesce(a.attnum = ANY(i.indkey::int2[]), false)
            FROM pg_attribute a
            JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
            WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            [oid],
        )
        return {row[0]: _Column(*row) for row in cur.fetchall()}

    def schema(self) -> StoreSchema:
        with self.errors("reading the table's layout"), self.conn.cursor() as cur:
            columns = self._read_columns(cur)
            vector = self._vector_column(columns)
            id_column = self._id_column(columns)
            dim = columns[vector].typmod if columns[vector].typmod > 0 else self._first_dim(cur, vector)
            cur.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [self._table.as_string(self.conn)])
            comment = cur.fetchone()[0] or ""
            n = self._count(cur)
        metric = _METRIC.search(comment)
        id_type = "int" if columns[id_column].type in _INTEGERS else "str"
        metadata = tuple(c for c in columns if c not in (vector, id_column))
        self._columns = columns
        self._layout = StoreSchema(n, dim, vector, id_column, id_type, metadata, metric.group(1) if metric else None)
        return self._layout

    def _vector_column(self, columns: dict[str, _Column]) -> str:
        listed = ", ".join(f"{c.name} {c.shown}" for c in columns.values())
        if self.column is not None:
            if self.column not in columns:
                raise StoreError(f"{self.name}: no column {self.column!r} (columns: {listed}).")
            chosen = columns[self.column]
            if chosen.type not in _VECTOR_TYPES:
                raise StoreError(
                    f"{self.name}: column {chosen.name!r} has type {chosen.shown}, not a pgvector vector; embedlab "
                    "reads vector and halfvec columns (convert others, e.g. ALTER TABLE ... ALTER COLUMN "
                    f"{chosen.name} TYPE vector(N) USING {chosen.name}::vector(N))."
                )
            return chosen.name
        vectors = [c.name for c in columns.values() if c.type in _VECTOR_TYPES]
        preferred = [c for c in PREFERRED_VECTOR_COLUMNS if c in vectors]
        if preferred:
            return preferred[0]
        if len(vectors) == 1:
            return vectors[0]
        if vectors:
            raise StoreError(f"{self.name}: several vector columns ({', '.join(vectors)}); choose one with ?column=.")
        raise StoreError(
            f"{self.name}: no vector or halfvec column (columns: {listed}); embedlab reads pgvector's vector and "
            "halfvec types (sparsevec and arrays can be cast to vector(N))."
        )

    def _id_column(self, columns: dict[str, _Column]) -> str:
        if self.id_column is not None:
            if self.id_column not in columns:
                raise StoreError(f"{self.name}: no id column {self.id_column!r} (columns: {', '.join(columns)}).")
            return self.id_column
        if ID_COLUMN in columns:
            return ID_COLUMN
        primary = [c.name for c in columns.values() if c.primary]
        if len(primary) == 1:
            return primary[0]
        raise StoreError(
            f"{self.name}: no column 'id' and no single-column primary key (columns: {', '.join(columns)}); name the "
            "id column with ?id=NAME."
        )

    def _first_dim(self, cur, vector: str) -> int:
        """The dimension of a vector column declared without one, from its first row."""
        sql = self._sql
        cur.execute(
            sql.SQL("SELECT vector_dims({c}::vector) FROM {t} WHERE {c} IS NOT NULL LIMIT 1").format(
                c=sql.Identifier(vector), t=self._table
            )
        )
        row = cur.fetchone()
        if row is None:
            raise StoreError(
                f"{self.name}: column {vector!r} is declared without a dimension and the table is empty, so its "
                "dimension is unknown; declare it as vector(N)."
            )
        return int(row[0])

    def _count(self, cur) -> int:
        cur.execute(self._sql.SQL("SELECT count(*) FROM {}").format(self._table))
        return int(cur.fetchone()[0])

    def count(self) -> int:
        with self.errors("counting rows"), self.conn.cursor() as cur:
            if self._oid(cur) is None:
                raise self.missing("table")
            return self._count(cur)

    def _layout_now(self) -> StoreSchema:
        return self._layout or self.schema()

    def _select(self, layout: StoreSchema, *, vectors: bool, metadata: bool):
        """What a read selects: the id (as bigint or text), the vector (as vector), then the payload (the types
        psycopg reads in binary as Python values as they are, the others as text)."""
        sql = self._sql
        id_cast = "::bigint" if layout.id_type == "int" else "::text"
        fields = [sql.SQL("{}" + id_cast).format(sql.Identifier(layout.id_column))]
        if vectors:
            fields.append(sql.SQL("{}::vector").format(sql.Identifier(layout.vector_column)))
        if metadata:
            for name in layout.metadata_columns:
                plain = self._type(name) in _FIXED or self._type(name) in _TEXT
                fields.append(sql.SQL("{}" if plain else "{}::text").format(sql.Identifier(name)))
        return sql.SQL(", ").join(fields)

    def _id_in(self, layout: StoreSchema):
        """``id = ANY(%s)`` for a list of ids (text ids of another type, uuid say, are compared as text)."""
        sql = self._sql
        ident = sql.Identifier(layout.id_column)
        if layout.id_type == "int":
            return sql.SQL("{} = ANY(%s::bigint[])").format(ident)
        if self._type(layout.id_column) in _TEXT:
            return sql.SQL("{} = ANY(%s::text[])").format(ident)
        return sql.SQL("{}::text = ANY(%s::text[])").format(ident)

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
        sql = self._sql
        query = sql.SQL("SELECT {} FROM {} ORDER BY {} OFFSET {} LIMIT {}").format(
            self._select(layout, vectors=with_vectors, metadata=with_metadata),
            self._table,
            sql.Identifier(layout.id_column),
            sql.Literal(int(start)),
            sql.SQL("ALL") if stop is None else sql.Literal(max(int(stop) - int(start), 0)),
        )
        # FETCH a few MB at a time: large results cost more to allocate (libpq's, psycopg's, ours) than to send
        step = max(1, min(batch_size, _FETCH_BYTES // (4 * layout.dim + 64)))
        # a connection of its own, in a transaction: the cursor's snapshot, and the store's connection stays free
        conn = self._connect(autocommit=False)
        with conn, self.errors("reading rows"), conn.cursor(name="embedlab_scan", binary=True) as cur:
            cur.execute(query)
            while True:
                parts, n = [], 0
                while n < batch_size and (rows := cur.fetchmany(min(step, batch_size - n))):
                    parts.append(self._batch(rows, layout, start + n, vectors=with_vectors, metadata=with_metadata))
                    n += len(rows)
                if not parts:
                    return
                yield _concat(parts)
                start += n

    def _batch(
        self, rows: list[tuple], layout: StoreSchema, start: int, *, vectors: bool, metadata: bool
    ) -> StoreBatch:
        names = layout.metadata_columns if metadata else ()
        columns = list(zip(*rows, strict=True)) or [()] * (1 + vectors + len(names))
        if None in columns[0]:
            row = start + columns[0].index(None)
            raise StoreError(f"{self.name}: row {row:,} of the scan has no id (NULL in {layout.id_column}).")
        ids = ids_array(columns[0], layout.id_type)
        matrix = self._vectors(columns[1], layout, start) if vectors else None
        payload = zip(names, columns[1 + vectors :], strict=True)
        table = pa.table({n: pa.array(v, _arrow_type(self._type(n))) for n, v in payload}) if names else None
        return StoreBatch(ids, matrix, table)

    def _vectors(self, values: Sequence[bytes | None], layout: StoreSchema, start: int) -> np.ndarray:
        """pgvector's binary vectors as a float32 matrix, refusing NULL ones and those of another dimension."""
        dtype = _vector_dtype(layout.dim)
        joined = b"".join(values) if None not in values else b""
        if len(joined) != dtype.itemsize * len(values):
            i = next(i for i, v in enumerate(values) if v is None or len(v) != dtype.itemsize)
            got = (
                f"no vector (NULL in {layout.vector_column})"
                if values[i] is None
                else (f"a vector of dimension {(len(values[i]) - 4) // 4}, not {layout.dim}")
            )
            raise StoreError(
                f"{self.name}: row {start + i:,} of the scan (ordered by {layout.id_column}) has {got}; embedlab "
                "reads tables whose rows all have a vector of the same dimension."
            )
        return np.frombuffer(joined, dtype)["values"].astype(np.float32)

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        layout = self._layout_now()
        sql = self._sql
        query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
            self._select(layout, vectors=True, metadata=False), self._table, self._id_in(layout)
        )
        with self.errors("fetching rows by id"), self.conn.cursor(binary=True) as cur:
            cur.execute(query, [ids.tolist()])
            found = self._batch(cur.fetchall(), layout, 0, vectors=True, metadata=False)
        have = found.ids.tolist()
        where = {key: i for i, key in enumerate(have)}
        if len(where) < len(set(ids.tolist())):
            raise self.unknown_ids(ids, have)
        return found.vectors[[where[key] for key in ids.tolist()]]

    # writing

    def create(self, dim: int, *, id_type: str, metric: str, metadata: pa.Schema | None) -> None:
        if self.exists():
            raise StoreError(f"{self.name}: the table exists; import with --mode append or --mode overwrite.")
        sql = self._sql
        id_column, vector = self.id_column or ID_COLUMN, self.column or VECTOR_COLUMN
        columns = [
            sql.SQL("{} {} PRIMARY KEY").format(sql.Identifier(id_column), sql.SQL(_ID_TYPES[id_type])),
            sql.SQL("{} vector({}) NOT NULL").format(sql.Identifier(vector), sql.Literal(int(dim))),
        ]
        for field in metadata or []:
            if field.name not in (id_column, vector):
                columns.append(sql.SQL("{} {}").format(sql.Identifier(field.name), sql.SQL(_column_type(field.type))))
        self._ensure_extension()
        with self.errors("creating the table"), self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(self._table, sql.SQL(", ").join(columns)))
            cur.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(self._table, sql.Literal(f"embedlab:metric={metric}"))
            )
        self._layout = None

    def _ensure_extension(self) -> None:
        with self.errors("looking for the pgvector extension"), self.conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            if cur.fetchone():
                return
        database = self._params.get("dbname") or "the default database"
        action = (
            f"creating the pgvector extension in {database} (CREATE EXTENSION vector needs pgvector installed on "
            "the server and the CREATE privilege on the database; ask its owner to run it)"
        )
        with self.errors(action), self.conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def drop(self) -> None:
        with self.errors("dropping the table"), self.conn.cursor() as cur:
            cur.execute(self._sql.SQL("DROP TABLE IF EXISTS {}").format(self._table))
        self._layout = None

    def write(self, ids: np.ndarray, vectors: np.ndarray, metadata: pa.Table | None, *, upsert: bool) -> None:
        layout = self._layout_now()
        vector_type = self._columns[layout.vector_column]
        if vector_type.type != "vector":
            raise StoreError(
                f"{self.name}: column {layout.vector_column!r} is {vector_type.shown}; embedlab reads it but writes "
                "only into vector columns (float32), so that the values read back are the values written."
            )
        if vectors.ndim != 2 or vectors.shape[1] != layout.dim:
            raise StoreError(
                f"{self.name}: the table holds vectors of dimension {layout.dim}, these have shape {vectors.shape}."
            )
        columns = [(layout.vector_column, "vector", vectors), (layout.id_column, self._type(layout.id_column), ids)]
        if metadata is not None:
            columns += [
                (name, self._type(name), metadata.column(name))
                for name in layout.metadata_columns
                if name in metadata.column_names
            ]
        sql = self._sql
        with self.errors("writing rows"), self.conn.transaction(), self.conn.cursor() as cur:
            if upsert:
                cur.execute(sql.SQL("DELETE FROM {} WHERE {}").format(self._table, self._id_in(layout)), [ids.tolist()])
            self._copy_in(cur, self._table, columns)

    def _type(self, column: str) -> str:
        return self._columns[column].type

    def _copy_in(self, cur, table, columns: Sequence[tuple[str, str, object]]) -> None:
        """COPY ``columns`` (name, column type, values) into ``table``, fixed-width fields first.

        The rows are encoded and sent a chunk at a time, so that the server works on one while the next is built
        (and no encoded copy of the whole batch is held).
        """
        encoded = [(name, _encode(values, kind, name, self.name)) for name, kind, values in columns]
        fixed = [(name, block) for name, block in encoded if isinstance(block, _Fixed)]
        variable = [(name, block) for name, block in encoded if not isinstance(block, _Fixed)]
        names = self._sql.SQL(", ").join(self._sql.Identifier(name) for name, _ in [*fixed, *variable])
        statement = self._sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, names)
        layout = _row_dtype([(f"f{k}", block.dtype) for k, (_, block) in enumerate(fixed)])
        n = len(fixed[0][1].values) if fixed else len(variable[0][1])
        step = max(1, _CHUNK_BYTES // layout.itemsize)
        with cur.copy(statement) as copy:
            copy.write(_HEADER)
            for start in range(0, n, step):
                rows = slice(start, start + step)
                copy.write(
                    _rows(layout, len(columns), [b.values[rows] for _, b in fixed], [b[rows] for _, b in variable])
                )
            copy.write(_TRAILER)

    def set_columns(self, ids: np.ndarray, columns: pa.Table) -> None:
        layout = self._layout_now()
        sql = self._sql
        staging = sql.Identifier("embedlab_set_columns")
        names = [sql.Identifier(name) for name in columns.column_names]
        with self.errors("writing columns"), self.conn.transaction(), self.conn.cursor() as cur:
            for name, field in zip(names, columns.schema, strict=True):
                cur.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        self._table, name, sql.SQL(_column_type(field.type))
                    )
                )
            self._columns = self._read_columns(cur)
            cur.execute(
                sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {}, {} FROM {} WITH NO DATA").format(
                    staging, sql.Identifier(layout.id_column), sql.SQL(", ").join(names), self._table
                )
            )
            values = [(layout.id_column, self._type(layout.id_column), ids)]
            values += [(name, self._type(name), columns.column(name)) for name in columns.column_names]
            self._copy_in(cur, staging, values)
            cur.execute(
                sql.SQL("UPDATE {} AS t SET {} FROM {} AS s WHERE t.{} = s.{}").format(
                    self._table,
                    sql.SQL(", ").join(sql.SQL("{} = s.{}").format(name, name) for name in names),
                    staging,
                    sql.Identifier(layout.id_column),
                    sql.Identifier(layout.id_column),
                )
            )
        self._layout = None

    def batch_rows(self, dim: int) -> int:
        return max(1, min(100_000, _BATCH_BYTES // (4 * max(dim, 1))))


_ID_TYPES = {"int": "bigint", "str": "text"}


def _arrow_type(column_type: str) -> pa.DataType:
    """The Arrow type a payload column of this PostgreSQL type is read as (text for all but numbers and booleans)."""
    return _FIXED[column_type][1] if column_type in _FIXED else pa.string()


def _concat(parts: list[StoreBatch]) -> StoreBatch:
    if len(parts) == 1:
        return parts[0]
    vectors = None if parts[0].vectors is None else np.concatenate([p.vectors for p in parts])
    metadata = None if parts[0].metadata is None else pa.concat_tables([p.metadata for p in parts])
    return StoreBatch(np.concatenate([p.ids for p in parts]), vectors, metadata)


def _column_type(arrow: pa.DataType) -> str:
    """The column type a payload field of this Arrow type gets in a table embedlab creates."""
    if pa.types.is_dictionary(arrow):
        return _column_type(arrow.value_type)
    if pa.types.is_integer(arrow):
        return "bigint"
    if pa.types.is_floating(arrow):
        return "double precision"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "text"
    return "jsonb"


def _vector_dtype(dim: int) -> np.dtype:
    """pgvector's binary vector: its dimension, an unused int16, then the values as big-endian float32."""
    return np.dtype([("dim", ">i2"), ("unused", ">i2"), ("values", ">f4", (dim,))])


def _row_dtype(fields: Sequence[tuple[str, np.dtype]]) -> np.dtype:
    """A binary COPY row of fixed-width, non-null fields: a field count, then a length and a value per field."""
    layout: list[tuple[str, object]] = [("count", ">i2")]
    for name, dtype in fields:
        layout += [(f"{name}_size", ">i4"), (name, dtype)]
    return np.dtype(layout)


# writing


def _encode(values, kind: str, column: str, name: str) -> _Fixed | list[bytes]:
    """A column's fields for binary COPY: its values when fixed-width and without nulls (encoded with the rows),
    else each field's bytes (its length, then its value)."""
    if kind == "vector":
        return _Fixed(_vector_dtype(values.shape[1]), values)
    array = _arrow(values)
    if kind in _FIXED:
        dtype, arrow = _FIXED[kind]
        array = array.cast(arrow)
        if not array.null_count:
            return _Fixed(np.dtype(dtype), array.to_numpy(zero_copy_only=False))
        step = np.dtype(dtype).itemsize
        width = _SIZE.pack(step)
        filled = array.fill_null(False if kind == "bool" else 0).to_numpy(zero_copy_only=False)
        data = np.asarray(filled, dtype=dtype).tobytes()
        nulls = array.is_null().to_pylist()
        return [_NULL if null else width + data[i * step : (i + 1) * step] for i, null in enumerate(nulls)]
    if kind in _TEXT:
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            array = _as_text(array)
        return [_field(None if v is None else v.encode()) for v in array.to_pylist()]
    if kind in _JSON:
        version = b"\x01" if kind == "jsonb" else b""
        return [_field(None if v is None else version + _json(v).encode()) for v in array.to_pylist()]
    raise StoreError(
        f"{name}: column {column!r} has type {kind}; embedlab writes integer, real, double precision, boolean, "
        "text, varchar, json and jsonb columns (leave it out of the payload, or change its type)."
    )


def _arrow(values) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        if pa.types.is_dictionary(values.type):
            return values.cast(values.type.value_type)
        return values
    return pa.array(values.tolist() if values.dtype == object else values)


def _as_text(array) -> pa.Array | pa.ChunkedArray:
    try:
        return array.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else _json(v) for v in array.to_pylist()], type=pa.string())


def _json(value) -> str:
    return json.dumps(value, default=str)


def _field(value: bytes | None) -> bytes:
    return _NULL if value is None else _SIZE.pack(len(value)) + value


def _rows(layout: np.dtype, count: int, fixed: list[np.ndarray], variable: list[list[bytes]]) -> bytes:
    """Rows of a binary COPY: the fixed-width fields of all rows as one structured array of ``layout``, the
    variable ones joined after them row by row."""
    rows = np.empty(len(fixed[0]) if fixed else len(variable[0]), layout)
    rows["count"] = count
    for k, values in enumerate(fixed):
        field = rows[f"f{k}"]
        rows[f"f{k}_size"] = field.dtype.itemsize
        if field.dtype.names:  # a vector
            field["dim"], field["unused"], field["values"] = values.shape[1], 0, values
        else:
            field[:] = values
    body = rows.tobytes()
    if not variable:
        return body
    size = layout.itemsize
    view = memoryview(body)
    heads = (view[i : i + size] for i in range(0, len(body), size))
    return b"".join(chain.from_iterable(zip(heads, *variable, strict=False)))
