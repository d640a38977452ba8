"""Readers: .npy (memory-mapped), .npz, Parquet (file or directory), Arrow IPC / Feather, and Lance.

Each format is a *source* that yields raw chunks (vectors converted to float32, ids, metadata) without
judging their values; :func:`load` and :func:`iter_batches` turn those chunks into validated
:class:`~embedlab.io.embedding_set.EmbeddingSet` objects, and :func:`embedlab.io.summary.describe` counts
problems in them instead.
"""

from __future__ import annotations

import json
import math
import os
import tokenize
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from embedlab._checks import check_int
from embedlab._optional import import_optional
from embedlab.exceptions import EmbeddingDataError
from embedlab.io.embedding_set import ID_COLUMN, PROVENANCE_KEY, EmbeddingSet, sample_positions
from embedlab.io.validation import InvalidRows, OnInvalid, ValidationReport

__all__ = [
    "ArrowFiles",
    "Part",
    "RawChunk",
    "SourceInfo",
    "arrow_kind",
    "id_keys",
    "is_token_list_type",
    "iter_batches",
    "load",
    "load_npy",
    "open_source",
    "read_id_file",
    "row_ranges",
]

PREFERRED_VECTOR_COLUMNS = ("embedding", "embeddings", "vector", "vectors", "emb", "features", "X")
PREFERRED_ID_COLUMNS = ("id", "ids")
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_PARQUET_READ_ROWS = 8192
_PARQUET_BUFFER_BYTES = 2**20
_ARROW_SUFFIXES = {".arrow", ".feather", ".ipc", ".arrows"}
#: Ids hashed per block (the block's fixed-width text is 4 bytes a character of its longest id).
_ID_HASH_ROWS = 8192
_SAMPLE_BATCH_ROWS = 65_536
# A string id held as a Python object (about 60 bytes with its pointer) plus its Arrow copy.
_ID_BYTES = 90


@dataclass(frozen=True)
class SourceInfo:
    """What a file holds, read from its header or schema without loading the vectors.

    Attributes
    ----------
    path : str
    format : str
        One of ``"npy"``, ``"npz"``, ``"parquet"``, ``"arrow"``, ``"lance"``.
    n_rows : int
    dim : int
    dtype : str
        Element type on disk (vectors are float32 in memory).
    vector_column : str or None
    id_column : str or None
        None when ids are the row numbers.
    metadata_columns : tuple of str
    provenance : dict
        What embedlab stored when it wrote the file (model, source), if anything.
    """

    path: str
    format: str
    n_rows: int
    dim: int
    dtype: str
    vector_column: str | None
    id_column: str | None
    metadata_columns: tuple[str, ...] = ()
    provenance: dict = field(default_factory=dict)


@dataclass
class RawChunk:
    """Consecutive rows of a source: float32 vectors whose values are not yet checked."""

    vectors: np.ndarray
    ids: np.ndarray
    metadata: pa.Table | None
    start: int

    @property
    def stop(self) -> int:
        return self.start + self.vectors.shape[0]


@dataclass(frozen=True)
class Part:
    """Rows of a source that can be read on their own, by whoever opens ``file``.

    Attributes
    ----------
    start : int
        The row number, in the whole source, of the part's first row.
    n_rows : int
    file : str
        The file holding the rows (the dataset directory for Lance).
    pieces : tuple of int
        Parquet row groups or Lance fragment ids; empty for a row range (of a .npy file or a vector store's scan
        order), a whole .npz or Arrow IPC file.
    """

    start: int
    n_rows: int
    file: str
    pieces: tuple[int, ...] = ()


class _Source(ABC):
    """A readable embeddings file: subclasses know one format."""

    info: SourceInfo

    @abstractmethod
    def read_all(self) -> RawChunk:
        """All rows as one chunk (a memory map where the format allows)."""

    @abstractmethod
    def iter_chunks(self, batch_size: int, part: Part | None = None) -> Iterator[RawChunk]:
        """Consecutive chunks of ``batch_size`` rows (the last may be shorter), of ``part`` only when given."""

    def parts(self, rows: int) -> list[Part]:
        """The source cut into parts of about ``rows`` rows where its layout allows, else one part."""
        return [Part(0, self.info.n_rows, self.info.path)]


def row_ranges(n_rows: int, rows: int, file: str) -> list[Part]:
    """Parts of ``rows`` consecutive rows (the last may be shorter) of a source whose rows can be read from any
    position; one empty part for an empty source."""
    return [Part(start, min(rows, n_rows - start), file) for start in range(0, n_rows, rows)] or [Part(0, 0, file)]


def _row_ids(start: int, stop: int) -> np.ndarray:
    return np.arange(start, stop, dtype=np.int64)


def _to_float32(values: np.ndarray, name: str) -> np.ndarray:
    if values.dtype == object or not (
        np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)
    ):
        raise EmbeddingDataError(f"{name}: the vectors are not numeric (dtype {values.dtype}).")
    return np.ascontiguousarray(values, dtype=np.float32)


def load_npy(path: str | os.PathLike, *, mmap: bool = False) -> np.ndarray:
    """The array of a .npy file (memory-mapped read-only when ``mmap``), never unpickled.

    Raises
    ------
    EmbeddingDataError
        Naming the file, when it is missing or its header or data are damaged (numpy parses the header as Python
        literals, so a damaged one raises syntax and tokenizer errors).
    """
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise EmbeddingDataError(f"{path}: no such file.") from None
    except (ValueError, OSError, EOFError, OverflowError, SyntaxError, tokenize.TokenError, MemoryError) as err:
        raise EmbeddingDataError(f"{path}: not a readable .npy file ({type(err).__name__}: {err}).") from err


def read_id_file(path: str | os.PathLike, n: int) -> np.ndarray:
    """The ids an index or collection keeps beside its codes: the ``id`` column of a Parquet file, ``n`` of them.

    Raises
    ------
    EmbeddingDataError
        Naming the file, when it is missing, damaged, or holds no ``id`` column of integers or strings with ``n``
        values and no nulls.
    """
    with reading_errors(path):
        table = pq.read_table(path)
        table.validate(full=True)
    if ID_COLUMN not in table.column_names or table.num_rows != n:
        raise EmbeddingDataError(f"{path} must hold an '{ID_COLUMN}' column of {n} rows; it has {table.num_rows}.")
    column = table.column(ID_COLUMN)
    if not is_id_type(column.type) or column.null_count:
        raise EmbeddingDataError(f"{path}: its '{ID_COLUMN}' column ({column.type}) must hold integers or strings.")
    return column.to_numpy(zero_copy_only=False)


class _NpySource(_Source):
    """A .npy file: memory-mapped when float32, streamed with plain reads otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        header = load_npy(path, mmap=True)
        shape, dtype, self._offset = header.shape, header.dtype, header.offset
        fortran = header.ndim == 2 and not header.flags.c_contiguous
        if len(shape) != 2:
            raise EmbeddingDataError(f"{path}: expected a 2-D array of shape (n_rows, dim), got shape {shape}.")
        if dtype.hasobject or not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
            raise EmbeddingDataError(f"{path}: the vectors are not numeric (dtype {dtype}).")
        self._dtype, self._fortran = dtype, fortran
        self.info = SourceInfo(str(path), "npy", int(shape[0]), int(shape[1]), str(dtype), None, None)

    def read_all(self) -> RawChunk:
        array = load_npy(self.path, mmap=True)
        if array.dtype == np.float32 and array.flags.c_contiguous:
            vectors = array
        else:
            vectors = _to_float32(np.asarray(array), str(self.path))
        return RawChunk(vectors, _row_ids(0, self.info.n_rows), None, 0)

    def parts(self, rows: int) -> list[Part]:
        return row_ranges(self.info.n_rows, rows, self.info.path)

    def iter_chunks(self, batch_size: int, part: Part | None = None) -> Iterator[RawChunk]:
        first, last = (0, self.info.n_rows) if part is None else (part.start, part.start + part.n_rows)
        if self._fortran:
            whole = self.read_all()
            for start in range(first, last, batch_size):
                stop = min(start + batch_size, last)
                yield RawChunk(np.ascontiguousarray(whole.vectors[start:stop]), _row_ids(start, stop), None, start)
            return
        row_bytes = self.info.dim * self._dtype.itemsize
        with open(self.path, "rb") as handle:
            for start in range(first, last, batch_size):
                stop = min(start + batch_size, last)
                handle.seek(self._offset + start * row_bytes)
                block = np.fromfile(handle, dtype=self._dtype, count=(stop - start) * self.info.dim)
                if block.size != (stop - start) * self.info.dim:
                    raise EmbeddingDataError(f"{self.path}: the file ends before row {stop - 1}; it is truncated.")
                vectors = _to_float32(block.reshape(stop - start, self.info.dim), str(self.path))
                yield RawChunk(vectors, _row_ids(start, stop), None, start)


def _check_npz_sizes(path: Path) -> None:
    """Refuse an archive whose arrays declare more bytes than their entries hold, before any is allocated."""
    with zipfile.ZipFile(path) as archive:
        for entry in archive.infolist():
            if not entry.filename.endswith(".npy"):
                continue
            with archive.open(entry) as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(handle)
                declared = math.prod(shape) * dtype.itemsize
                if declared > entry.file_size:
                    raise EmbeddingDataError(
                        f"{path}: array {entry.filename[:-4]!r} declares shape {shape} of {dtype} ({declared:,} "
                        f"bytes) but its entry holds {entry.file_size:,}; the archive is damaged."
                    )


class _NpzSource(_Source):
    """A .npz archive: one 2-D array of vectors, optional ``ids``, other 1-D arrays as metadata."""

    def __init__(self, path: Path, column: str | None, id_column: str | None) -> None:
        self.path = path
        try:
            _check_npz_sizes(path)
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except EmbeddingDataError:
            raise
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            ValueError,
            OSError,
            SyntaxError,
            tokenize.TokenError,
            NotImplementedError,  # zipfile's answer to a damaged compression method or version field
        ) as err:
            raise EmbeddingDataError(
                f"{path}: not a readable .npz archive ({type(err).__name__}: {err}); the file is damaged or not "
                "an .npz written by numpy.savez."
            ) from err
        matrices = [key for key, value in arrays.items() if value.ndim == 2]
        self.vector_key = _pick_column(path, column, matrices, list(arrays), "2-D array")
        vectors = arrays.pop(self.vector_key)
        self._vectors = _to_float32(vectors, f"{path}[{self.vector_key}]")
        n = self._vectors.shape[0]
        id_key = id_column or next((k for k in PREFERRED_ID_COLUMNS if k in arrays), None)
        if id_key is not None and id_key not in arrays:
            raise EmbeddingDataError(f"{path}: no array named {id_key!r} for the ids (arrays: {', '.join(arrays)}).")
        self._ids = arrays.pop(id_key) if id_key else _row_ids(0, n)
        if self._ids.dtype.kind not in "iuU":
            raise EmbeddingDataError(
                f"{path}: the ids {id_key!r} have dtype {self._ids.dtype}; ids must be integers or str "
                "(numpy.savez(..., ids=ids.astype(str)))."
            )
        columns = {}
        for key, value in arrays.items():
            if value.ndim != 1 or value.shape[0] != n:
                raise EmbeddingDataError(
                    f"{path}: array {key!r} has shape {value.shape}; extra arrays must be 1-D with one value "
                    f"per vector ({n})."
                )
            try:
                columns[key] = pa.array(value)
            except (pa.ArrowException, ValueError, TypeError) as err:
                raise EmbeddingDataError(
                    f"{path}: array {key!r} of dtype {value.dtype} cannot be a column ({err})."
                ) from err
        self._metadata = pa.table(columns) if columns else None
        if self._ids.shape != (n,):
            raise EmbeddingDataError(f"{path}: {n} vectors but ids of shape {self._ids.shape}.")
        self.info = SourceInfo(
            str(path),
            "npz",
            n,
            int(self._vectors.shape[1]),
            str(vectors.dtype),
            self.vector_key,
            id_key,
            tuple(columns),
        )

    def read_all(self) -> RawChunk:
        return RawChunk(self._vectors, self._ids, self._metadata, 0)

    def iter_chunks(self, batch_size: int, part: Part | None = None) -> Iterator[RawChunk]:
        del part  # an archive is one part
        for start in range(0, self.info.n_rows, batch_size):
            stop = min(start + batch_size, self.info.n_rows)
            meta = None if self._metadata is None else self._metadata.slice(start, stop - start)
            yield RawChunk(self._vectors[start:stop], self._ids[start:stop], meta, start)


def _is_damage(error: BaseException) -> bool:
    """Whether a reader library's exception means the file is damaged: Arrow's and the system's errors, the
    ValueError and RuntimeError Lance raises, and the panic of a reader written in Rust (pyo3's PanicException,
    which derives from BaseException so that a bare ``except Exception`` lets it through)."""
    if isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError, EmbeddingDataError)):
        return False
    return isinstance(error, (pa.ArrowException, OSError, ValueError, RuntimeError)) or (
        type(error).__name__ == "PanicException"
    )


@contextmanager
def reading_errors(name: object) -> Iterator[None]:
    """Turn what a reader library raises on a damaged file into one :class:`EmbeddingDataError` naming it."""
    try:
        yield
    except pa.ArrowMemoryError as error:
        raise EmbeddingDataError(
            f"{name}: reading it needs more memory than there is ({error}); either the file is damaged and claims "
            "sizes it does not hold, or its row groups or record batches are too large for this machine."
        ) from error
    except BaseException as error:
        if not _is_damage(error):
            raise
        raise EmbeddingDataError(f"{name}: cannot be read ({error}); the file is damaged or truncated.") from error


def check_column_names(path: object, names: list[str]) -> None:
    """Refuse a table whose column names repeat: which one a reader meant could not be told.

    Raises
    ------
    EmbeddingDataError
        Naming the file and the repeated names.
    """
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise EmbeddingDataError(
            f"{path}: column name(s) {', '.join(map(repr, repeated))} appear more than once; which column is meant "
            "cannot be told. Rename the columns so that each name is used once."
        )


class ArrowFiles:
    """Parquet files and folders, Arrow IPC / Feather files and Lance datasets as one Arrow dataset: what every
    Arrow-backed reader shares (opening, parts of about so many rows, batches of some columns in bounded memory).

    Parameters
    ----------
    path : Path
    kind : {"parquet", "arrow", "lance"}
        As :func:`arrow_kind` tells it.

    Raises
    ------
    EmbeddingDataError
        When the files cannot be opened.
    """

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self.dataset = self._open(path, kind)

    @staticmethod
    def _open(path: Path, kind: str):
        if kind == "lance":
            lance = import_optional("lance", "lance", purpose=f"Reading the Lance dataset {path}")
            with reading_errors(path):
                return lance.dataset(str(path))
        with reading_errors(path):
            return pads.dataset(str(path), format="ipc" if kind == "arrow" else "parquet")

    @property
    def schema(self) -> pa.Schema:
        """The dataset's schema (read from the files' footers or manifest)."""
        with reading_errors(self.path):
            schema = self.dataset.schema
            check_column_names(self.path, schema.names)  # names that are not UTF-8 fail here, not later
            return schema

    def count_rows(self) -> int:
        """The dataset's rows, from its metadata."""
        with reading_errors(self.path):
            return self.dataset.count_rows()

    def parts(self, rows: int) -> list[Part]:
        """Runs of Parquet row groups of about ``rows`` rows, Arrow IPC files, or Lance fragments."""
        with reading_errors(self.path):
            if self.kind == "lance":
                return self._lance_parts()
            if self.kind == "parquet":
                return self._parquet_parts(rows)
            files = self.dataset.files
            starts = np.cumsum([0] + [pads.dataset(f, format="ipc").count_rows() for f in files])
            return [Part(int(a), int(b - a), f) for a, b, f in zip(starts[:-1], starts[1:], files, strict=True)]

    def _parquet_parts(self, rows: int) -> list[Part]:
        """Consecutive row groups of each file, about ``rows`` rows a part (at least one row group)."""
        parts, start = [], 0
        for path in self.dataset.files:
            metadata = pq.ParquetFile(path).metadata
            groups: list[int] = []
            held = 0
            for group in range(metadata.num_row_groups):
                n = metadata.row_group(group).num_rows
                if groups and held + n > rows:
                    parts.append(Part(start, held, path, tuple(groups)))
                    start, groups, held = start + held, [], 0
                groups.append(group)
                held += n
            if groups:
                parts.append(Part(start, held, path, tuple(groups)))
                start += held
        return parts

    def _lance_parts(self) -> list[Part]:
        parts, start = [], 0
        for fragment in self.dataset.get_fragments():
            n = fragment.count_rows()
            parts.append(Part(start, n, str(self.path), (fragment.fragment_id,)))
            start += n
        return parts

    def batches(self, batch_size: int, columns: list[str], part: Part | None = None) -> Iterator[pa.RecordBatch]:
        """Batches of at most ``batch_size`` rows of ``columns``, of ``part`` only when given, each validated in
        full before it is used (a damaged Arrow IPC file is read without copying, so offsets that point outside
        its buffers would otherwise be followed)."""
        with reading_errors(self.path if part is None else part.file):  # corrupt pages raise OSError (LZ4, snappy)
            for batch in self._raw_batches(batch_size, columns, part):
                batch.validate(full=True)
                yield batch

    def _raw_batches(self, batch_size: int, columns: list[str], part: Part | None) -> Iterator[pa.RecordBatch]:
        if self.kind == "lance":
            # Rows are taken by position, not streamed: Lance's batch stream aborts the whole process when a
            # damaged file's decoding error holds a NUL byte (arrow-rs unwraps it into a C string), while take()
            # raises the same error as an exception, at about the same speed (0.85 s against 0.78 s for 200,000
            # rows of 384 floats). A part's rows are its fragment's, at their positions in the dataset.
            start, stop = (0, self.count_rows()) if part is None else (part.start, part.start + part.n_rows)
            for first in range(start, stop, batch_size):
                rows = np.arange(first, min(first + batch_size, stop))
                yield from self.dataset.take(rows, columns=columns).to_batches()
        elif self.kind == "parquet":
            # Arrow's dataset scanner buffers whole column chunks ahead (GBs on large row groups); a
            # ParquetFile without pre-buffering decodes page by page, and small reads keep list decoding
            # small, so memory stays near one output batch.
            for path in self.dataset.files if part is None else [part.file]:
                parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=_PARQUET_BUFFER_BYTES)
                yield from parquet.iter_batches(
                    batch_size=min(batch_size, _PARQUET_READ_ROWS),
                    columns=columns,
                    row_groups=None if part is None else list(part.pieces),
                )
        else:
            scanned = self.dataset if part is None else pads.dataset(part.file, format="ipc")
            yield from scanned.to_batches(
                columns=columns, batch_size=batch_size, batch_readahead=1, fragment_readahead=1
            )


def arrow_kind(path: Path) -> str | None:
    """``"lance"``, ``"parquet"`` or ``"arrow"`` for a path Arrow datasets read, else None."""
    suffix = path.suffix.lower()
    if path.is_dir():
        if suffix == ".lance" or (path / "_versions").is_dir():
            return "lance"
        if any(f.suffix.lower() in _PARQUET_SUFFIXES for f in path.iterdir()):
            return "parquet"
        return None
    if suffix in _PARQUET_SUFFIXES:
        return "parquet"
    if suffix in _ARROW_SUFFIXES:
        return "arrow"
    return None


class _ArrowSource(_Source):
    """Parquet files and directories, Arrow IPC / Feather files and Lance datasets, via Arrow datasets."""

    def __init__(self, path: Path, kind: str, column: str | None, id_column: str | None) -> None:
        self.path, self.kind = path, kind
        self.files = ArrowFiles(path, kind)
        self.dataset = self.files.dataset
        schema = self.files.schema
        vector_types = [f.name for f in schema if _is_vector_type(f.type)]
        tokens = [f.name for f in schema if is_token_list_type(f.type)]
        if not vector_types and tokens and column is None:
            raise EmbeddingDataError(
                f"{path}: column {tokens[0]!r} holds a list of token vectors per row (a multi-vector set), not one "
                "vector per row; read it with embedlab.multivector.load_multivector (CLI: 'embedlab multivector')."
            )
        self.vector_column = _pick_column(path, column, vector_types, schema.names, "vector column")
        vector_type = schema.field(self.vector_column).type
        if not _is_vector_type(vector_type):
            raise EmbeddingDataError(
                f"{path}: column {self.vector_column!r} has type {vector_type}, which is not a vector column "
                "(expected a list or fixed-size list of numbers, or binary float32 blobs)."
            )
        self.id_column = id_column or next((c for c in PREFERRED_ID_COLUMNS if c in schema.names), None)
        if self.id_column is not None and self.id_column not in schema.names:
            raise EmbeddingDataError(f"{path}: no id column {self.id_column!r} (columns: {', '.join(schema.names)}).")
        if self.id_column is not None and not is_id_type(schema.field(self.id_column).type):
            raise EmbeddingDataError(
                f"{path}: the id column {self.id_column!r} has type {schema.field(self.id_column).type}; ids must be "
                "integers or strings (name another column with id_column=..., CLI: --id-column)."
            )
        self.metadata_columns = tuple(c for c in schema.names if c not in (self.vector_column, self.id_column))
        if kind == "parquet" and path.is_dir():
            self._check_files_agree()
        provenance = _read_provenance(schema)
        self._dtype = _binary_dtype(provenance, path)
        n_rows = self.files.count_rows()
        dim = self._probe_dim(n_rows)
        self.info = SourceInfo(
            str(path),
            kind,
            n_rows,
            dim,
            _element_type(vector_type, self._dtype),
            self.vector_column,
            self.id_column,
            self.metadata_columns,
            provenance,
        )

    def _check_files_agree(self) -> None:
        """Every file of a Parquet folder must store its vectors with the same type and dimension, and its ids
        in the same column."""
        expected, first = None, None
        for fragment in self.dataset.get_fragments():
            with reading_errors(fragment.path):
                schema = fragment.physical_schema
                schema.names  # noqa: B018 - column names that are not UTF-8 fail here, not later
            for needed in (self.vector_column, self.id_column, *self.metadata_columns):
                if needed is not None and len(schema.get_all_field_indices(needed)) != 1:
                    found = "no" if needed not in schema.names else "more than one"
                    raise EmbeddingDataError(
                        f"{fragment.path}: {found} column {needed!r}, unlike the other files of {self.path}. Every "
                        "file of a folder must hold the same vector, id and metadata columns, each once."
                    )
            found = schema.field(self.vector_column).type
            if expected is None:
                expected, first = found, fragment.path
            elif found != expected:
                raise EmbeddingDataError(
                    f"{self.path}: files disagree on the vectors: {first} has {expected} but {fragment.path} has "
                    f"{found}. Every file of a folder must hold vectors of the same dimension and type."
                )

    def _probe_dim(self, n_rows: int) -> int:
        if n_rows == 0:
            vector_type = self.files.schema.field(self.vector_column).type
            return int(getattr(vector_type, "list_size", 0) or 0)
        first = next(self._batches(1, [self.vector_column]), None)
        if first is None:
            raise EmbeddingDataError(
                f"{self.path}: its metadata declares {n_rows:,} row(s) but no row can be read; the file is damaged."
            )
        return _vectors_from_arrow(first.column(0), str(self.path), 0, None, self._dtype).shape[1]

    def parts(self, rows: int) -> list[Part]:
        return self.files.parts(rows)

    def _batches(self, batch_size: int, columns: list[str], part: Part | None = None) -> Iterator[pa.RecordBatch]:
        return self.files.batches(batch_size, columns, part)

    def _chunk(self, table: pa.Table | pa.RecordBatch, start: int) -> RawChunk:
        n = table.num_rows
        vectors = _vectors_from_arrow(
            table.column(self.vector_column), str(self.path), start, self.info.dim, self._dtype
        )
        if self.id_column is None:
            ids = _row_ids(start, start + n)
        else:
            id_values = table.column(self.id_column)
            if id_values.null_count:
                rows = np.flatnonzero(pc.is_null(id_values).to_numpy(zero_copy_only=False)) + start
                raise EmbeddingDataError(
                    f"{self.path}: {rows.size} row(s) have no id in column {self.id_column!r} "
                    f"(rows {rows[:5].tolist()}). Every row needs an id."
                )
            ids = id_values.to_numpy(zero_copy_only=False)
        metadata = None
        if self.metadata_columns:
            metadata = pa.table({c: table.column(c) for c in self.metadata_columns})
        return RawChunk(vectors, ids, metadata, start)

    def read_all(self) -> RawChunk:
        # Streaming into one preallocated array holds the data once, not as an Arrow table plus copies.
        return next(self.iter_chunks(max(self.info.n_rows, 1)), None) or RawChunk(
            np.empty((0, self.info.dim), np.float32), _row_ids(0, 0), None, 0
        )

    def _extra_columns(self) -> list[str]:
        return ([self.id_column] if self.id_column else []) + list(self.metadata_columns)

    def iter_chunks(self, batch_size: int, part: Part | None = None) -> Iterator[RawChunk]:
        # Small reads are copied into one preallocated float32 array per output batch, so at most one batch
        # (plus one small read) is held while it is assembled.
        dim = self.info.dim
        start, filled = (0 if part is None else part.start), 0
        vectors = np.empty((batch_size, dim), dtype=np.float32)
        ids: list[np.ndarray] = []
        metadata: list[pa.Table] = []
        for batch in self._batches(batch_size, [self.vector_column, *self._extra_columns()], part):
            offset = 0
            while offset < batch.num_rows:
                take = min(batch_size - filled, batch.num_rows - offset)
                piece = self._chunk(batch.slice(offset, take), start + filled)
                vectors[filled : filled + take] = piece.vectors
                ids.append(piece.ids)
                if piece.metadata is not None:
                    metadata.append(piece.metadata)
                filled, offset = filled + take, offset + take
                if filled == batch_size:
                    yield RawChunk(vectors, np.concatenate(ids), _concat_tables(metadata), start)
                    start, filled = start + batch_size, 0
                    vectors = np.empty((batch_size, dim), dtype=np.float32)
                    ids, metadata = [], []
        if filled:
            yield RawChunk(vectors[:filled], np.concatenate(ids), _concat_tables(metadata), start)
            start += filled
        first, expected = (0, self.info.n_rows) if part is None else (part.start, part.n_rows)
        if start - first != expected:
            raise EmbeddingDataError(
                f"{self.path if part is None else part.file}: its metadata declares {expected:,} row(s) but "
                f"{start - first:,} can be read; the file is damaged or truncated."
            )


def _concat_tables(tables: list[pa.Table]) -> pa.Table | None:
    return pa.concat_tables(tables).combine_chunks() if tables else None


def _is_vector_type(t: pa.DataType) -> bool:
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        value = t.value_type
        return pa.types.is_floating(value) or pa.types.is_integer(value)
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def _element_type(t: pa.DataType, binary_dtype: np.dtype) -> str:
    if hasattr(t, "value_type"):
        return str(t.value_type.to_pandas_dtype().__name__)
    return str(binary_dtype)


def is_token_list_type(kind: pa.DataType) -> bool:
    """Whether an Arrow type holds a list of numeric vectors per row (``list<fixed_size_list<float32>>`` or
    ``list<list<float>>``): a multi-vector column."""
    lists = (pa.types.is_list, pa.types.is_large_list)
    if not any(test(kind) for test in lists):
        return False
    inner = kind.value_type
    if not (pa.types.is_fixed_size_list(inner) or any(test(inner) for test in lists)):
        return False
    return pa.types.is_floating(inner.value_type) or pa.types.is_integer(inner.value_type)


def _pick_column(path: Path, requested: str | None, candidates: list[str], names: list[str], what: str) -> str:
    if requested is not None:
        if requested not in names:
            raise EmbeddingDataError(f"{path}: no column {requested!r}; it has {', '.join(names) or 'no columns'}.")
        return requested
    if len(candidates) == 1:
        return candidates[0]
    preferred = [c for c in PREFERRED_VECTOR_COLUMNS if c in candidates]
    if preferred:
        return preferred[0]
    if not candidates:
        raise EmbeddingDataError(
            f"{path}: found no {what} among {', '.join(names) or 'no columns'}. Vectors must be a list or "
            "fixed-size list of numbers (or float32 bytes); name the column with column=... (CLI: --column)."
        )
    raise EmbeddingDataError(
        f"{path}: several columns could hold the vectors ({', '.join(candidates)}); choose one with "
        "column=... (CLI: --column)."
    )


def _read_provenance(schema: pa.Schema) -> dict:
    """The provenance embedlab wrote into the schema, or nothing when it is absent or not a JSON object."""
    raw = (schema.metadata or {}).get(PROVENANCE_KEY)
    if not raw:
        return {}
    try:
        provenance = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return provenance if isinstance(provenance, dict) else {}


def _binary_dtype(provenance: dict, path: Path) -> np.dtype:
    """The element type of binary vector blobs, as the provenance states it (float32 when it does not)."""
    stated = provenance.get("binary_dtype", "float32")
    try:
        dtype = np.dtype(stated)
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.kind not in "fiu":
        raise EmbeddingDataError(f"{path}: its provenance gives binary_dtype {stated!r}, which is not a number type.")
    return dtype


def is_id_type(kind: pa.DataType) -> bool:
    """Whether a column of this type can hold ids (integers or strings)."""
    return pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _vectors_from_arrow(
    column: pa.Array | pa.ChunkedArray, name: str, start: int, dim: int | None, binary_dtype: np.dtype
) -> np.ndarray:
    """Convert a list, fixed-size-list or binary vector column into a float32 matrix, checking its shape."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        rows = np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)) + start
        raise EmbeddingDataError(
            f"{name}: {rows.size} row(s) have no vector (null) at rows {rows[:5].tolist()}"
            f"{' ...' if rows.size > 5 else ''}. Remove them or fill them upstream."
        )
    n = len(array)
    if (
        pa.types.is_fixed_size_binary(array.type)
        or pa.types.is_binary(array.type)
        or pa.types.is_large_binary(array.type)
    ):
        values, lengths = _binary_values(array)
        itemsize = binary_dtype.itemsize
        if np.any(lengths % itemsize):
            rows = np.flatnonzero(lengths % itemsize)[:5] + start
            raise EmbeddingDataError(
                f"{name}: binary vectors at rows {rows.tolist()} are not a whole number of {binary_dtype} values."
            )
        lengths = lengths // itemsize
        flat = values.view(binary_dtype)
    else:
        if pa.types.is_fixed_size_list(array.type):
            lengths = np.full(n, array.type.list_size, dtype=np.int64)
        else:
            lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = array.flatten().to_numpy(zero_copy_only=False)
    expected = int(lengths[0]) if dim is None and n else dim
    if n and np.any(lengths != expected):
        bad = np.flatnonzero(lengths != expected)
        shown = ", ".join(f"row {start + i} has {lengths[i]}" for i in bad[:5])
        raise EmbeddingDataError(
            f"{name}: vectors of different lengths (expected {expected} values: {shown}"
            f"{', ...' if bad.size > 5 else ''}; {bad.size} row(s) in all). Every vector must have the same "
            "dimension."
        )
    return _to_float32(np.asarray(flat).reshape(n, expected or 0), name)


def _binary_values(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated bytes of a binary array and each value's length, honouring slicing."""
    buffers = array.buffers()
    if pa.types.is_fixed_size_binary(array.type):
        width = array.type.byte_width
        data = np.frombuffer(buffers[1], dtype=np.uint8)[array.offset * width : (array.offset + len(array)) * width]
        return data, np.full(len(array), width, dtype=np.int64)
    offset_type = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data, np.diff(offsets).astype(np.int64)


def open_source(path: str | os.PathLike, *, column: str | None = None, id_column: str | None = None) -> _Source:
    """Open an embeddings file of any supported format, reading only its header or schema.

    Parameters
    ----------
    path : path-like
        ``.npy``, ``.npz``, ``.parquet`` / ``.pq`` (or a directory of them), ``.arrow`` / ``.feather`` /
        ``.ipc``, a Lance dataset directory (``.lance``), or a vector store's URI (``lancedb://DIR/TABLE``,
        ``qdrant://DIR/COLLECTION``, ``postgresql://USER@HOST/DB?table=T``, ...; see
        :mod:`embedlab.io.stores`), whose secret comes from the store's environment variable.
    column : str, optional
        The vector column (Parquet, Arrow, Lance) or array (npz); auto-detected when omitted.
    id_column : str, optional
        The id column; ``id`` when present, else ids are the row numbers.

    Raises
    ------
    EmbeddingDataError
        If the file is missing, of an unknown format, unreadable, or holds no usable vector column.
    """
    if isinstance(path, str) and "://" in path:
        from embedlab.io.stores import StoreSource, is_store_uri, open_store

        if is_store_uri(path):
            return StoreSource(open_store(path, column=column, id_column=id_column))
    p = Path(path)
    if not p.exists():
        raise EmbeddingDataError(f"{p}: no such file or directory.")
    suffix = p.suffix.lower()
    if p.is_dir() and arrow_kind(p) is None:
        raise EmbeddingDataError(f"{p}: a directory with neither Parquet files nor a Lance dataset.")
    if suffix == ".npy":
        return _NpySource(p)
    if suffix == ".npz":
        try:
            return _NpzSource(p, column, id_column)
        except (ValueError, OSError) as err:
            if isinstance(err, EmbeddingDataError):
                raise
            raise EmbeddingDataError(f"{p}: not a readable .npz archive ({err}).") from err
    kind = arrow_kind(p)
    if kind is not None:
        return _ArrowSource(p, kind, column, id_column)
    raise EmbeddingDataError(
        f"{p}: unknown format {suffix or '(no suffix)'}; embedlab reads .npy, .npz, .parquet, .arrow, "
        ".feather and Lance datasets."
    )


def load(
    path: str | os.PathLike,
    *,
    column: str | None = None,
    id_column: str | None = None,
    on_invalid: OnInvalid = "raise",
    sample: int | None = None,
    random_state: int | None = 0,
) -> EmbeddingSet:
    """Read an embeddings file into a validated :class:`EmbeddingSet`.

    A float32 ``.npy`` file stays memory-mapped; other formats are read into memory (use
    :func:`iter_batches` for sets larger than RAM, or ``sample``).

    Parameters
    ----------
    path : path-like
        See :func:`open_source` for the formats.
    column, id_column : str, optional
        Vector and id columns; auto-detected when omitted.
    on_invalid : {"raise", "drop"}, default="raise"
        Fail on rows with NaN/Inf, all-zero vectors or repeated ids, or drop them and list them in
        ``EmbeddingSet.validation``.
    sample : int, optional
        Read only a uniform sample of this many rows, streamed (memory near the sample plus one batch): the rows
        ``EmbeddingSet.sample(sample, random_state)`` of the whole file would keep, when none is invalid.
    random_state : int, optional
        Seed of ``sample``.

    Returns
    -------
    EmbeddingSet

    Raises
    ------
    EmbeddingDataError
        On an unreadable file, a missing or ragged vector column, or invalid rows with ``on_invalid="raise"``.
    """
    source = open_source(path, column=column, id_column=id_column)
    if source.info.n_rows == 0:
        raise EmbeddingDataError(f"{path}: the input is empty (0 rows).")
    positions = None
    if sample is not None:
        positions = sample_positions(source.info.n_rows, check_int(sample, "sample"), random_state)
    if positions is not None and positions.size < source.info.n_rows:
        chunk = _sampled_rows(source, positions)
    else:
        chunk = source.read_all()
    # Arrow's allocator keeps the freed page buffers of the read for reuse; hand them back to the system.
    pa.default_memory_pool().release_unused()
    return EmbeddingSet(
        chunk.vectors,
        chunk.ids,
        chunk.metadata,
        source=str(path),
        model=source.info.provenance.get("model"),
        on_invalid=on_invalid,
    )


def reading_memory(n_rows: int, dim: int) -> tuple[tuple[str, float], ...]:
    """What :func:`load` holds for ``n_rows`` float32 vectors of dimension ``dim``, as parts of a memory estimate:
    the vectors (Arrow's buffer becomes the array, without a copy, or a .npy file's pages), the ids (string ids
    as Python objects and their Arrow copy, the larger case) and the validated copy that a unit-normalising
    metric or a conversion makes."""
    vectors = 4.0 * n_rows * dim
    return (("vectors", vectors), ("ids", _ID_BYTES * n_rows), ("validated copy", vectors))


def _sampled_rows(source: _Source, positions: np.ndarray) -> RawChunk:
    """The rows of ``source`` at the ascending ``positions``, read batch by batch."""
    vectors, ids, tables = [], [], []
    for chunk in source.iter_chunks(_SAMPLE_BATCH_ROWS):
        lo, hi = np.searchsorted(positions, [chunk.start, chunk.stop])
        local = positions[lo:hi] - chunk.start
        vectors.append(chunk.vectors[local])
        ids.append(chunk.ids[local])
        if chunk.metadata is not None:
            tables.append(chunk.metadata.take(pa.array(local)))
    metadata = pa.concat_tables(tables) if tables else None
    return RawChunk(np.concatenate(vectors), np.concatenate(ids), metadata, 0)


def iter_batches(
    path: str | os.PathLike,
    batch_size: int = 65_536,
    *,
    column: str | None = None,
    id_column: str | None = None,
    on_invalid: OnInvalid = "raise",
) -> Iterator[EmbeddingSet]:
    """Stream a file as validated :class:`EmbeddingSet` batches without loading it whole.

    Memory stays near one batch (plus one Parquet page or Arrow record batch). Ids are checked for
    repeats across batches as well as within each.

    Parameters
    ----------
    path : path-like
        See :func:`open_source`.
    batch_size : int, default=65536
        Rows per batch; the last batch may be shorter.
    column, id_column : str, optional
        Vector and id columns; auto-detected when omitted.
    on_invalid : {"raise", "drop"}, default="raise"
        As for :func:`load`; dropped rows are listed in each batch's ``validation``.

    Yields
    ------
    EmbeddingSet
        Consecutive batches; ``ids`` are row numbers of the whole file when the file has no id column.
    """
    batch_size = check_int(batch_size, "batch_size")
    source = open_source(path, column=column, id_column=id_column)
    if source.info.n_rows == 0:
        raise EmbeddingDataError(f"{path}: the input is empty (0 rows).")
    seen = _SeenIds(source.info.id_column is not None)
    model = source.info.provenance.get("model")
    for chunk in source.iter_chunks(batch_size):
        name = f"{path} (rows {chunk.start}-{chunk.stop - 1})"
        vectors, ids, metadata = chunk.vectors, chunk.ids, chunk.metadata
        repeated = seen.repeated_in_earlier_batches(ids)
        earlier: tuple[InvalidRows, ...] = ()
        if repeated.size:
            earlier = (InvalidRows("a duplicate id (an earlier batch has the same id)", repeated, ids[repeated]),)
            if on_invalid == "raise":
                raise EmbeddingDataError(
                    f"{name}: {earlier[0].describe(len(ids))}. Ids must be unique; fix them upstream or pass "
                    "on_invalid='drop' (CLI: --on-invalid drop)."
                )
            keep = np.ones(len(ids), dtype=bool)
            keep[repeated] = False
            vectors, ids = vectors[keep], ids[keep]
            metadata = None if metadata is None else metadata.filter(pa.array(keep))
        emb = EmbeddingSet(vectors, ids, metadata, source=str(path), model=model, on_invalid=on_invalid, name=name)
        if earlier:
            # Positions of rows dropped for other reasons count from the batch after the repeats left it.
            emb.validation = ValidationReport(len(chunk.ids), earlier + emb.validation.dropped)
        seen.add(emb.ids)
        yield emb


def id_keys(ids: np.ndarray) -> np.ndarray:
    """64-bit keys for ids: integer ids themselves, else a hash of their text that every process agrees on
    (Python's ``hash`` of a string differs between processes, so keys from two workers could not be compared).

    Examples
    --------
    >>> keys = id_keys(np.array(["a", "bb", "a"], dtype=object))
    >>> bool(keys[0] == keys[2]), bool(keys[0] == keys[1])
    (True, False)
    """
    if np.issubdtype(ids.dtype, np.integer):
        return ids.astype(np.int64)
    keys = np.empty(len(ids), dtype=np.uint64)
    for start in range(0, len(ids), _ID_HASH_ROWS):
        keys[start : start + _ID_HASH_ROWS] = _text_hashes(np.asarray(ids[start : start + _ID_HASH_ROWS], dtype=str))
    return keys.view(np.int64)


def _text_hashes(text: np.ndarray) -> np.ndarray:
    """FNV-style 64-bit hashes of fixed-width unicode strings, over each string's own characters only."""
    width = text.dtype.itemsize // 4
    codes = text.view(np.uint32).reshape(len(text), width)
    lengths = np.char.str_len(text)
    acc = np.full(len(text), 0xCBF29CE484222325, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(width):
            mixed = (acc ^ codes[:, j].astype(np.uint64)) * np.uint64(0x100000001B3)
            mixed ^= mixed >> np.uint64(29)
            acc = np.where(j < lengths, mixed, acc)
        acc = (acc ^ lengths.astype(np.uint64)) * np.uint64(0x100000001B3)
    return acc


class _SeenIds:
    """Remembers the ids of earlier batches as 64-bit keys (hashes for strings) to find repeats.

    Keys are kept in sorted blocks whose sizes halve from the first to the last, merged like a binary
    counter, so adding n ids costs O(n log n) in all and a lookup O(log n) per block.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.blocks: list[np.ndarray] = []

    def repeated_in_earlier_batches(self, ids: np.ndarray) -> np.ndarray:
        if not self.enabled or not self.blocks:
            return np.empty(0, dtype=np.int64)
        keys = id_keys(ids)
        found = np.zeros(keys.size, dtype=bool)
        for block in self.blocks:
            at = np.minimum(np.searchsorted(block, keys), block.size - 1)
            found |= block[at] == keys
        return np.flatnonzero(found)

    def add(self, ids: np.ndarray) -> None:
        if not self.enabled or ids.size == 0:
            return
        self.blocks.append(np.unique(id_keys(ids)))
        while len(self.blocks) > 1 and self.blocks[-1].size >= self.blocks[-2].size:
            last = self.blocks.pop()
            self.blocks[-1] = np.union1d(self.blocks[-1], last)
