"""Moving collections between files and stores: export, import (resumable, verified) and write-back by id."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedlab._checks import check_choice, check_int
from embedlab._json import document_errors, member, read_document, with_timings
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.embedding_set import ID_COLUMN, PROVENANCE_KEY, VECTOR_COLUMN
from embedlab.io.readers import Part, id_keys, iter_batches, open_source
from embedlab.io.stores._base import METRICS, Store, StoreError, StoreSource, id_type_of
from embedlab.io.stores._uri import StoreURI, is_store_uri, parse_uri
from embedlab.io.writers import atomic_path, write_json

__all__ = [
    "MODES",
    "PARTS_SUFFIX",
    "ExportResult",
    "ImportResult",
    "Verification",
    "WriteBackResult",
    "export_store",
    "import_store",
    "write_back",
]

logger = logging.getLogger(__name__)

MODES = ("create", "append", "overwrite")
#: Rows whose vectors are read back and compared after a transfer.
VERIFY_ROWS = 100
#: Bytes of vectors an export reads (and writes as one Parquet row group) at a time.
READ_BYTES = 16 * 2**20
#: float32 values read back may differ this much (stores that keep float32 differ by nothing).
_ATOL, _RTOL = 1e-6, 1e-5


@dataclass(frozen=True)
class Verification:
    """What was read back after a transfer.

    Attributes
    ----------
    rows : int
        Rows the destination holds.
    expected_rows : int
    ids_match : bool
        Whether the destination's ids are exactly the source's (after an append: include them).
    sampled : int
        Rows whose vectors were read back and compared.
    max_abs_error : float
        The largest difference of a sampled value (0 where the store keeps float32 as written).
    passed : bool
    """

    rows: int
    expected_rows: int
    ids_match: bool
    sampled: int
    max_abs_error: float

    @property
    def passed(self) -> bool:
        return self.rows == self.expected_rows and self.ids_match and self.max_abs_error <= _ATOL + _RTOL

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class ExportResult:
    """An export: the store read, the file written, and its verification."""

    uri: str
    output: str
    n_rows: int
    dim: int
    metadata_columns: tuple[str, ...]
    verification: Verification
    seconds: float = 0.0
    resumed_from: int = 0

    def to_dict(self) -> dict:
        return with_timings(
            {
                **asdict(self),
                "metadata_columns": list(self.metadata_columns),
                "verification": self.verification.to_dict(),
            },
            "seconds",
        )


@dataclass(frozen=True)
class ImportResult:
    """An import: rows written (and skipped on resume), the checkpoint used, and the verification."""

    source: str
    uri: str
    mode: str
    n_rows: int
    written: int
    resumed_from: int
    dim: int
    batch_size: int
    verification: Verification
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return with_timings({**asdict(self), "verification": self.verification.to_dict()}, "seconds")


@dataclass(frozen=True)
class WriteBackResult:
    """Columns set on existing rows of a collection, by id."""

    uri: str
    columns: tuple[str, ...]
    updated: int
    n_rows: int
    vectors_unchanged: bool

    def to_dict(self) -> dict:
        return {**asdict(self), "columns": list(self.columns)}


def _open(uri, column, id_column, credentials) -> Store:
    from embedlab.io.stores import open_store

    return open_store(uri, column=column, id_column=id_column, credentials=credentials)


def _sample_positions(n: int, size: int, random_state: int) -> np.ndarray:
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=min(size, n), replace=False)) if n else np.empty(0, np.int64)


class _Sampler:
    """Keeps the ids and vectors at chosen row positions while rows stream past."""

    def __init__(self, positions: np.ndarray) -> None:
        self.positions = positions
        self.ids: list[np.ndarray] = []
        self.vectors: list[np.ndarray] = []

    def see(self, start: int, ids: np.ndarray, vectors: np.ndarray) -> None:
        lo, hi = np.searchsorted(self.positions, [start, start + len(ids)])
        if hi > lo:
            at = self.positions[lo:hi] - start
            self.ids.append(ids[at])
            self.vectors.append(np.asarray(vectors[at], dtype=np.float32))

    def compare(self, store: Store, *, normalise: bool) -> tuple[int, float]:
        if not self.ids:
            return 0, 0.0
        ids, expected = np.concatenate(self.ids), np.concatenate(self.vectors)
        with store.errors("reading sampled rows back"):
            found = store.fetch(ids)
        if normalise:
            expected = expected / np.maximum(np.linalg.norm(expected, axis=1, keepdims=True), 1e-30)
            found = found / np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-30)
        scale = np.maximum(np.abs(expected), 1.0)
        return len(ids), float(np.max(np.abs(found - expected) / scale))


def _store_keys(store: Store, batch_size: int) -> np.ndarray:
    keys = [id_keys(batch.ids) for batch in store.scan(batch_size, with_vectors=False, with_metadata=False)]
    return np.sort(np.concatenate(keys)) if keys else np.empty(0, np.int64)


# export


def export_store(
    uri: str | StoreURI,
    output: str | os.PathLike,
    *,
    column: str | None = None,
    id_column: str | None = None,
    credentials: str | os.PathLike | None = None,
    batch_size: int | None = None,
    restart: bool = False,
    verify_rows: int = VERIFY_ROWS,
    random_state: int = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> ExportResult:
    """Stream a collection into one Parquet file (``id``, ``embedding``, payload columns), then verify it.

    Memory stays near one batch. Each batch read from the store is kept in a work folder beside the output
    (``OUTPUT.parts``, one Arrow file per batch, with a checkpoint), so an export that is interrupted resumes
    where it stopped: the same call again reads the rows after the last batch kept, from that position of the
    store's scan order. The batches are then written as the Parquet file's row groups, and the file appears only
    when it has been verified (row count against the store's count before and after, ids unique, the sampled
    vectors read again from the store equal to those written); the work folder is removed. The collection is
    never modified.

    Parameters
    ----------
    uri : str or StoreURI
    output : path-like
        A ``.parquet`` file, written atomically.
    column, id_column, credentials
        See :func:`open_store`.
    batch_size : int, optional
        Rows per request; by default the store's documented limit (a resumed export keeps its own).
    restart : bool, default=False
        Discard the work folder of an earlier export that does not match this one (another collection, or
        the collection changed since) instead of refusing it.
    verify_rows : int, default=100
    random_state : int, default=0
        Chooses the rows read back.
    progress : ProgressReporter, optional

    Raises
    ------
    StoreError
        When the store is unreachable, the collection is missing, its count changes during the export, or the
        verification fails.
    ConfigurationError
        When the work folder holds an earlier export that does not match and ``restart`` is False.
    """
    import time

    began = time.perf_counter()
    store = _open(uri, column, id_column, credentials)
    with store:
        source = StoreSource(store)
        info = source.info
        batch = check_int(batch_size, "batch_size") if batch_size is not None else _read_rows(store, info.dim)
        parts = _ExportParts.open(Path(str(output) + PARTS_SUFFIX), store.uri.text, info, batch, restart=restart)
        with progress.task(f"Exporting {store.uri.collection}", info.n_rows) as advance:
            advance(parts.rows_done)
            if parts.rows_done < info.n_rows:
                rest = Part(parts.rows_done, info.n_rows - parts.rows_done, info.path)
                for chunk in source.iter_chunks(parts.batch_size, rest):
                    parts.add(_export_table(chunk.ids, chunk.vectors, chunk.metadata, info.dim, store.name))
                    advance(len(chunk.ids))
            elif store.count() != info.n_rows:
                raise source.changed(info.n_rows, f"it holds {store.count():,} now")
        verification = _assemble(parts, output, store, info, verify_rows, random_state)
        parts.remove()
    return ExportResult(
        store.uri.text,
        str(output),
        verification.expected_rows,
        info.dim,
        info.metadata_columns,
        verification,
        time.perf_counter() - began,
        parts.resumed_from,
    )


#: The work folder of an export, beside its output: ``out.parquet.parts``.
PARTS_SUFFIX = ".parts"
_PARTS_STATE = "checkpoint.json"


@dataclass
class _ExportParts:
    """The batches an export has read so far, one Arrow IPC file each, and the checkpoint that lists them."""

    folder: Path
    document: dict
    resumed_from: int = 0
    schema: pa.Schema | None = None

    @classmethod
    def open(cls, folder: Path, uri: str, info, batch: int, *, restart: bool) -> _ExportParts:
        fingerprint = [info.n_rows, info.dim, info.vector_column, info.id_column, list(info.metadata_columns)]
        state = folder / _PARTS_STATE
        if folder.exists():
            try:
                document = read_document(state, what="export checkpoint")
                with document_errors(state, "export checkpoint"):
                    same = document["uri"] == uri and document["fingerprint"] == fingerprint
                    kept = _kept_batches(folder, document["files"]) if same else []
            except EmbeddingDataError:
                same = False
            if same:
                document["files"] = [name for name, _rows, _schema in kept]
                document["rows_done"] = sum(rows for _name, rows, _schema in kept)
                parts = cls(folder, document, document["rows_done"])
                parts.schema = kept[0][2] if kept else None
                return parts
            if not restart:
                raise ConfigurationError(
                    f"{folder}: the work folder of an earlier export of another collection (or of {uri} before it "
                    "changed) is here; pass restart=True (CLI: --restart) to discard it and export from the start."
                )
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        document = {"uri": uri, "fingerprint": fingerprint, "batch_size": batch, "rows_done": 0, "files": []}
        write_json(document, state)
        return cls(folder, document)

    @property
    def rows_done(self) -> int:
        return int(self.document["rows_done"])

    @property
    def batch_size(self) -> int:
        return int(self.document["batch_size"])

    def files(self) -> list[Path]:
        return [self.folder / name for name in self.document["files"]]

    def add(self, table: pa.Table) -> None:
        """Keep one batch (in the first batch's schema), then record it in the checkpoint."""
        if self.schema is None:
            self.schema = table.schema
        table = _conform(table, self.schema, self.document["uri"], self.rows_done)
        name = f"batch-{len(self.document['files']):06d}.arrow"
        # not fsynced (it would double the export's time): a resumed export keeps only the files that read whole
        with atomic_path(self.folder / name, durable=False) as tmp, pa.OSFile(str(tmp), "wb") as sink:
            with pa.ipc.new_file(sink, self.schema) as writer:
                writer.write_table(table)
        self.document["files"].append(name)
        self.document["rows_done"] = self.rows_done + table.num_rows
        write_json(self.document, self.folder / _PARTS_STATE)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _kept_batches(folder: Path, names: list[str]) -> list[tuple[str, int, pa.Schema]]:
    """The listed batch files that open whole, with their rows and schema, up to the first that does not (a
    machine that lost power may have lost the end of a file it had not written to disk)."""
    kept = []
    for name in names:
        try:
            with pa.memory_map(str(member(folder, name, what="the export checkpoint"))) as source:
                reader = pa.ipc.open_file(source)
                rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
        except (OSError, pa.ArrowInvalid, EmbeddingDataError):
            break
        if kept and not reader.schema.equals(kept[0][2]):
            break
        kept.append((name, rows, reader.schema))
    return kept


def _assemble(parts: _ExportParts, output, store: Store, info, verify_rows: int, random_state: int) -> Verification:
    """The kept batches written as one Parquet file (a row group each), which appears only once verified."""
    sampler = _Sampler(_sample_positions(info.n_rows, verify_rows, random_state))
    provenance = json.dumps({"source": store.uri.text, "model": None, "store": store.uri.store})
    schema = parts.schema
    if schema is None:
        schema = _export_table(np.empty(0, np.int64), np.empty((0, info.dim), np.float32), None, info.dim, "").schema
    seen: list[np.ndarray] = []
    written = 0
    schema = schema.with_metadata({PROVENANCE_KEY: provenance.encode()})
    with atomic_path(output) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as out:
            for file in parts.files():
                with pa.memory_map(str(file)) as stream:
                    table = pa.ipc.open_file(stream).read_all()
                out.write_table(table)
                ids = table.column(ID_COLUMN).to_numpy(zero_copy_only=False)
                vectors = table.column(VECTOR_COLUMN).combine_chunks().flatten().to_numpy().reshape(-1, info.dim)
                sampler.see(written, ids, vectors)
                seen.append(id_keys(ids))
                written += table.num_rows
        keys = np.sort(np.concatenate(seen)) if seen else np.empty(0, np.int64)
        unique = bool(keys.size < 2 or np.all(keys[1:] != keys[:-1]))
        if not unique:
            raise StoreError(
                f"{store.name}: the collection holds repeated ids ({keys.size - np.unique(keys).size:,} rows), so it "
                "cannot be exported keyed by id; name another id column with ?id=NAME."
            )
        sampled, error = sampler.compare(store, normalise=False)
        verification = Verification(store.count(), written, unique, sampled, error)
        if not verification.passed:
            raise StoreError(f"{store.name}: the export did not verify ({verification.to_dict()}); nothing written.")
    return verification


def _read_rows(store: Store, dim: int) -> int:
    """Rows a read request asks for: the store's limit, and at most ``READ_BYTES`` of vectors (each batch is also
    a Parquet row group, encoded and compressed in memory before it is written)."""
    return max(1, min(store.batch_rows(dim), READ_BYTES // (4 * max(dim, 1))))


def _export_table(ids, vectors, metadata, dim: int, name: str) -> pa.Table:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    columns = {
        ID_COLUMN: pa.array(ids.tolist() if ids.dtype == object else ids),
        VECTOR_COLUMN: pa.FixedSizeListArray.from_arrays(flat, dim),
    }
    if metadata is not None:
        for field_name in metadata.column_names:
            if field_name in columns:
                raise StoreError(
                    f"{name}: a payload field is called {field_name!r}, like the id or vector column of the export; "
                    "rename it in the store or name the id field with ?id=."
                )
            columns[field_name] = metadata.column(field_name)
    return pa.table(columns)


def _conform(table: pa.Table, schema: pa.Schema, name: str, start: int) -> pa.Table:
    """A later batch in the schema of the first (payload types of schemaless stores may vary)."""
    if table.schema.equals(schema, check_metadata=False):
        return table
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, type=field.type))
            continue
        values = table.column(field.name)
        try:
            columns.append(values.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            if pa.types.is_string(field.type):
                columns.append(
                    pa.array([None if v is None else json.dumps(v, default=str) for v in values.to_pylist()])
                )
            else:
                raise StoreError(
                    f"{name}: payload field {field.name!r} holds {values.type} at rows from {start:,}, after "
                    f"{field.type} in the first rows; the export cannot give it one type."
                ) from None
    return pa.Table.from_arrays(columns, schema=schema)


# import


def import_store(
    data: str | os.PathLike,
    uri: str | StoreURI,
    *,
    mode: str = "create",
    metric: str = "cosine",
    column: str | None = None,
    id_column: str | None = None,
    credentials: str | os.PathLike | None = None,
    batch_size: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    restart: bool = False,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    verify_rows: int = VERIFY_ROWS,
    random_state: int = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> ImportResult:
    """Write an embeddings file (or another store's collection) into a store, resumably, then verify it.

    A file's rows are validated (NaN/Inf, zero vectors, ids repeated anywhere in it) in one streamed pass before
    the store is opened, so a bad file leaves nothing behind; then they are written in batches the store accepts.
    After each batch a checkpoint records the rows written; run the same import again after an interruption and
    it continues from there, rewriting only the batch that may have been cut short (as an upsert, so no row is
    written twice). At the end the row count, the id set and sampled vectors are read back.

    Parameters
    ----------
    data : path-like or str
        Any file :func:`embedlab.load` reads, or a store URI.
    uri : str or StoreURI
        The destination collection.
    mode : {"create", "append", "overwrite"}, default="create"
        ``create`` refuses an existing collection; ``append`` adds to one (same dimension and id type);
        ``overwrite`` deletes it first.
    metric : {"cosine", "l2", "ip"}, default="cosine"
        The distance of a created collection (Qdrant and Chroma search by it; Qdrant stores cosine vectors
        unit-normalised).
    column, id_column : str, optional
        The source's vector and id columns (the destination uses ``embedding`` and ``id`` or the URI's
        ``?column=`` / ``?id=``).
    credentials : path-like, optional
        See :func:`open_store`.
    batch_size : int, optional
        Rows per write; by default the store's documented limit.
    checkpoint : path-like, optional
        Where the progress is recorded; by default under ``~/.cache/embedlab/imports``, named from the
        source and the destination.
    restart : bool, default=False
        Discard a checkpoint that does not match this import instead of refusing.
    transform : callable, optional
        Applied to each batch of vectors before it is written (an align adapter's ``transform``).
    verify_rows : int, default=100
    random_state : int, default=0
    progress : ProgressReporter, optional

    Raises
    ------
    StoreError
        When the store is unreachable, the collection exists under ``create`` (or is missing under
        ``append``), the dimension or id type differs, or the verification fails.
    EmbeddingDataError
        On invalid source rows (named by file and row).
    """
    import time

    began = time.perf_counter()
    check_choice(mode, "mode", MODES)
    check_choice(metric, "metric", METRICS)
    source = open_source(data, column=column, id_column=id_column)
    info = source.info
    if info.n_rows == 0:
        raise EmbeddingDataError(f"{data}: the input is empty (0 rows).")
    destination = uri if isinstance(uri, StoreURI) else parse_uri(uri)
    if is_store_uri(str(data)) and parse_uri(str(data)).text == destination.text:
        raise ConfigurationError(f"{destination.text}: the source and the destination are the same collection.")
    if not is_store_uri(str(data)):
        # A file is validated whole before the store is touched, so that a bad row near its end leaves no
        # collection half imported (reading a file costs little beside writing a store; a store is read once).
        for _ in iter_batches(data, max(1, READ_BYTES // (4 * info.dim)), column=column, id_column=id_column):
            pass
    store = _open(destination, None, None, credentials)
    with store:
        state_path = Path(checkpoint) if checkpoint is not None else _default_checkpoint(str(data), destination.text)
        fingerprint = _fingerprint(str(data), info.n_rows)
        state = _read_checkpoint(state_path, str(data), destination.text, fingerprint, restart)
        batch = int(state["batch_size"]) if state else _batch_size(batch_size, store, info.dim)
        done = int(state["rows_done"]) if state else 0
        before = int(state["rows_before"]) if state else 0
        if state:
            if not store.exists():
                raise StoreError(
                    f"{store.name}: the checkpoint {state_path} says {done:,} rows were written, but the collection "
                    "is gone; pass restart=True (CLI: --restart) to import again from the start."
                )
            logger.info("resuming the import into %s after %d rows", store.name, done)
        sampler = _Sampler(_sample_positions(info.n_rows, verify_rows, random_state))
        keys: list[np.ndarray] = []
        dim = None
        first_write = True
        with progress.task(f"Importing into {destination.collection}", info.n_rows) as advance:
            advance(done)
            position = 0
            for emb in iter_batches(data, batch, column=column, id_column=id_column):
                ids = emb.ids
                keys.append(id_keys(ids))
                start, position = position, position + len(ids)
                if position <= done:
                    if transform is not None or sampler.positions.size:
                        vectors = emb.vectors if transform is None else np.asarray(transform(emb.vectors), np.float32)
                        sampler.see(start, ids, vectors)
                    continue
                vectors = emb.vectors if transform is None else np.asarray(transform(emb.vectors), dtype=np.float32)
                if dim is None:
                    dim = int(vectors.shape[1])
                    if not state:
                        before = _prepare(store, mode, dim, id_type_of(ids), metric, emb.metadata)
                        state = {"rows_before": before}
                    else:
                        _check_compatible(store, dim, id_type_of(ids), emb.metadata)
                store.write(ids, vectors, emb.metadata, upsert=first_write and done > 0)
                first_write = False
                sampler.see(start, ids, vectors)
                _write_checkpoint(state_path, str(data), destination.text, fingerprint, batch, position, before)
                advance(len(ids))
        if dim is None:  # every row was written before the interruption
            dim = store.schema().dim
        all_keys = np.sort(np.concatenate(keys))
        store_keys = _store_keys(store, store.batch_rows(dim))
        if before:
            ids_match = bool(np.isin(all_keys, store_keys, assume_unique=True).all())
        else:
            ids_match = bool(np.array_equal(all_keys, store_keys))
        layout_metric = metric if mode != "append" else (store.schema().metric or metric)
        sampled, error = sampler.compare(store, normalise=not store.keeps_norms and layout_metric == "cosine")
        verification = Verification(int(store_keys.size), before + info.n_rows, ids_match, sampled, error)
        if not verification.passed:
            raise StoreError(
                f"{store.name}: the import did not verify: {verification.to_dict()}. The checkpoint {state_path} is "
                "kept; look for another writer of the collection."
            )
        state_path.unlink(missing_ok=True)
    return ImportResult(
        str(data),
        destination.text,
        mode,
        info.n_rows,
        info.n_rows - done,
        done,
        dim,
        batch,
        verification,
        time.perf_counter() - began,
    )


def _batch_size(batch_size: int | None, store: Store, dim: int) -> int:
    if batch_size is None:
        return store.batch_rows(dim)
    return check_int(batch_size, "batch_size")


def _prepare(store: Store, mode: str, dim: int, id_type: str, metric: str, metadata: pa.Table | None) -> int:
    """Create, clear or check the destination for ``mode``; the rows it holds before the import."""
    exists = store.exists()
    if mode == "create" and exists:
        raise StoreError(
            f"{store.name}: the collection exists; import with mode='append' or 'overwrite' (CLI: --mode), or choose "
            "another name."
        )
    if mode == "append":
        if not exists:
            raise store.missing("collection")
        _check_compatible(store, dim, id_type, metadata)
        return store.count()
    if exists:
        store.drop()
    store.create(dim, id_type=id_type, metric=metric, metadata=None if metadata is None else metadata.schema)
    return 0


def _check_compatible(store: Store, dim: int, id_type: str, metadata: pa.Table | None) -> None:
    layout = store.schema()
    if layout.dim != dim:
        raise StoreError(f"{store.name}: the collection holds vectors of dimension {layout.dim}, these have {dim}.")
    if layout.id_type != id_type:
        raise StoreError(f"{store.name}: the collection's ids are {layout.id_type}, these are {id_type}.")
    lacking = [] if metadata is None else sorted(set(metadata.column_names) - set(layout.metadata_columns))
    if store.fixed_columns and lacking:
        raise StoreError(
            f"{store.name}: the table has no column for the rows' payload field(s) {', '.join(map(repr, lacking))}, "
            "so appending would drop them; add the columns to the table, or remove them from the data first."
        )


def _default_checkpoint(data: str, uri: str) -> Path:
    root = Path(os.environ.get("EMBEDLAB_CACHE_DIR") or Path.home() / ".cache" / "embedlab")
    source = data if is_store_uri(data) else str(Path(data).resolve())
    digest = hashlib.sha256(f"{source}\n{uri}".encode()).hexdigest()[:20]
    return root / "imports" / f"{digest}.json"


def _fingerprint(data: str, n_rows: int) -> list:
    if is_store_uri(data):
        return [n_rows]
    path = Path(data)
    stats = [p.stat() for p in ([path] if path.is_file() else sorted(path.rglob("*")))]
    return [n_rows, sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)]


def _read_checkpoint(path: Path, data: str, uri: str, fingerprint: list, restart: bool) -> dict | None:
    if not path.exists():
        return None
    try:
        state = read_document(path, what="import checkpoint")
        with document_errors(path, "import checkpoint"):
            same = state["source"] == data and state["uri"] == uri and state["fingerprint"] == fingerprint
    except EmbeddingDataError:
        same, state = False, {}
    if same:
        return state
    if restart:
        path.unlink(missing_ok=True)
        return None
    raise ConfigurationError(
        f"{path}: a checkpoint of another import into {uri} (or of {data} before it changed) is here; pass "
        "restart=True (CLI: --restart) to discard it and import from the start."
    )


def _write_checkpoint(path: Path, data: str, uri: str, fingerprint: list, batch: int, done: int, before: int) -> None:
    document = {
        "source": data,
        "uri": uri,
        "fingerprint": fingerprint,
        "batch_size": batch,
        "rows_done": done,
        "rows_before": before,
    }
    write_json(document, path)


# write-back


def write_back(
    uri: str | StoreURI,
    table: pa.Table,
    *,
    key: str = ID_COLUMN,
    columns: list[str] | None = None,
    id_column: str | None = None,
    credentials: str | os.PathLike | None = None,
    batch_size: int | None = None,
    progress: ProgressReporter = NULL_PROGRESS,
) -> WriteBackResult:
    """Set per-row columns (cluster labels, duplicate flags and groups, sample weights) on existing rows by id.

    The vectors are not written: sampled rows are read before and after to show they are unchanged. Rows of the
    collection absent from ``table`` keep what they had (a new column is empty there).

    Parameters
    ----------
    uri : str or StoreURI
    table : pyarrow.Table
        The ids in ``key`` and the columns to write (what ``embedlab cluster -o`` or ``curate ... -o`` wrote).
    key : str, default="id"
    columns : list of str, optional
        The columns of ``table`` to write; all but ``key`` by default.
    id_column, credentials, batch_size, progress
        See :func:`import_store`.

    Raises
    ------
    EmbeddingDataError
        When ``table`` repeats or lacks ids, or names ids the collection does not hold (the first are named).
    ConfigurationError
        When a column is missing, or is the collection's vector or id column.
    """
    if key not in table.column_names:
        raise ConfigurationError(f"the table has no id column {key!r} (columns: {', '.join(table.column_names)}).")
    names = [c for c in table.column_names if c != key] if columns is None else list(columns)
    for name in names:
        if name not in table.column_names:
            raise ConfigurationError(f"the table has no column {name!r} (columns: {', '.join(table.column_names)}).")
    if not names:
        raise ConfigurationError("there is no column to write besides the ids.")
    ids = table.column(key).to_numpy(zero_copy_only=False)
    if table.column(key).null_count:
        raise EmbeddingDataError(f"{table.column(key).null_count:,} rows of the table have no id.")
    store = _open(uri, None, id_column, credentials)
    with store:
        layout = store.schema()
        clash = [n for n in names if n in (layout.vector_column, layout.id_column)]
        if clash:
            raise ConfigurationError(
                f"{store.name}: column {clash[0]!r} is the collection's vector or id column; it is never written."
            )
        ids = _matching_ids(ids, layout.id_type, store.name)
        keys = id_keys(ids)
        order = np.sort(keys)
        repeated = order[1:][order[1:] == order[:-1]]
        if repeated.size:
            shown = ids[np.isin(keys, repeated[:5])][:5].tolist()
            raise EmbeddingDataError(
                f"{repeated.size:,} ids repeat in the table written back to {store.name} (first: {shown}); each row "
                "may be written once."
            )
        store_keys = _store_keys(store, store.batch_rows(layout.dim))
        absent = ~np.isin(keys, store_keys)
        if absent.any():
            raise EmbeddingDataError(
                f"{int(absent.sum()):,} ids of the table are not in {store.name} (first: {ids[absent][:5].tolist()}); "
                "nothing was written."
            )
        witness = _sample_positions(len(ids), 20, 0)
        before = store.fetch(ids[witness])
        batch = _batch_size(batch_size, store, layout.dim)
        payload = table.select(names)
        with progress.task(f"Writing {', '.join(names)}", len(ids)) as advance:
            for start in range(0, len(ids), batch):
                stop = min(start + batch, len(ids))
                store.set_columns(ids[start:stop], payload.slice(start, stop - start))
                advance(stop - start)
        after = store.fetch(ids[witness])
        return WriteBackResult(
            store.uri.text, tuple(names), len(ids), store.count(), bool(np.array_equal(before, after))
        )


def _matching_ids(ids: np.ndarray, id_type: str, name: str) -> np.ndarray:
    """The table's ids in the collection's id type (integer ids read back as text are converted)."""
    if id_type == "int" and not np.issubdtype(ids.dtype, np.integer):
        try:
            return np.asarray([int(v) for v in ids], dtype=np.int64)
        except (TypeError, ValueError):
            raise EmbeddingDataError(f"{name}: the collection's ids are integers; the table's are not.") from None
    if id_type == "str" and np.issubdtype(ids.dtype, np.integer):
        out = np.empty(len(ids), dtype=object)
        out[:] = [str(v) for v in ids.tolist()]
        return out
    return ids.astype(object) if id_type == "str" else ids
