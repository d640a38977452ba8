"""MultiVectorSet: token-level (late-interaction) collections, one matrix of token vectors per row.

A row's tokens are ``vectors[offsets[i]:offsets[i + 1]]``: one float32 matrix for the whole set and the row
boundaries, so a set of a million documents is two arrays, not a million. On disk a set is a Parquet file or
folder, or a Lance dataset, with an ``id`` column and a ``tokens`` column of type
``list<fixed_size_list<float32, dim>>`` (``list<list<float>>`` is read too); :func:`iter_multivector_batches`
streams it in batches of rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from embedlab._checks import check_int
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.embedding_set import ID_COLUMN, PROVENANCE_KEY, _as_metadata_table
from embedlab.io.readers import ArrowFiles, Part, _read_provenance, arrow_kind, is_token_list_type
from embedlab.io.validation import as_float32_matrix, find_invalid_rows, repeated_positions
from embedlab.io.writers import write_table

__all__ = ["TOKENS_COLUMN", "MultiVectorSet", "iter_multivector_batches", "load_multivector", "open_multivector"]

TOKENS_COLUMN = "tokens"
#: Column names tried, in order, when a file's token column is not named.
PREFERRED_TOKEN_COLUMNS = (TOKENS_COLUMN, "token_embeddings", "multivector", "colbert", "embedding", "embeddings")
_SHOWN = 5


class MultiVectorSet:
    """Rows of token vectors (ragged: each row has its own number of tokens), with ids and metadata.

    Parameters
    ----------
    vectors : array-like of shape (n_tokens, dim)
        Every row's token vectors, one row after another.
    offsets : array-like of shape (n_rows + 1,)
        Row ``i`` holds ``vectors[offsets[i]:offsets[i + 1]]``; ``offsets[0] == 0``, ``offsets[-1] == n_tokens``.
    ids : array-like of shape (n_rows,), optional
        Unique ids; the row numbers by default.
    metadata : pyarrow.Table or mapping, optional
        Per-row columns.
    source, model : str, optional
    name : str, optional
        How errors name the input.

    Raises
    ------
    EmbeddingDataError
        On rows without tokens, tokens with NaN or Inf values, repeated ids, or offsets that do not describe
        the vectors (the rows are named).

    Examples
    --------
    >>> import numpy as np
    >>> mv = MultiVectorSet.from_matrices([np.eye(3), np.ones((2, 3))], ids=["a", "b"])
    >>> len(mv), mv.dim, mv.lengths.tolist(), mv[1].shape
    (2, 3, [3, 2], (2, 3))
    """

    def __init__(
        self,
        vectors: object,
        offsets: object,
        ids: object = None,
        metadata: pa.Table | Mapping[str, Any] | None = None,
        *,
        source: str | None = None,
        model: str | None = None,
        name: str | None = None,
    ) -> None:
        label = name or source or "multi-vectors"
        matrix = as_float32_matrix(vectors, name=label)
        bounds = np.asarray(offsets, dtype=np.int64)
        if bounds.ndim != 1 or bounds.size < 2 or bounds[0] != 0 or bounds[-1] != matrix.shape[0]:
            raise EmbeddingDataError(
                f"{label}: offsets must run from 0 to the number of token vectors ({matrix.shape[0]:,}), one more "
                f"than the rows; got {bounds.size} offsets from {bounds[:1].tolist()} to {bounds[-1:].tolist()}."
            )
        lengths = np.diff(bounds)
        if (lengths < 0).any():
            raise EmbeddingDataError(f"{label}: offsets must not decrease (row {int(np.argmax(lengths < 0))}).")
        n_rows = lengths.size
        id_array = np.arange(n_rows, dtype=np.int64) if ids is None else np.asarray(ids)
        if id_array.shape != (n_rows,):
            raise EmbeddingDataError(f"{label}: {n_rows:,} rows but {id_array.size:,} ids; give one id per row.")
        _check_rows(matrix, bounds, id_array, label)
        self.vectors: np.ndarray = matrix
        self.offsets: np.ndarray = bounds
        self.ids: np.ndarray = id_array
        self.metadata: pa.Table | None = _as_metadata_table(metadata, n_rows, label)
        self.source, self.model = source, model

    @classmethod
    def from_matrices(
        cls, matrices: Sequence[object], ids: object = None, metadata=None, **kwargs: Any
    ) -> MultiVectorSet:
        """A set from one ``(n_tokens_i, dim)`` matrix per row.

        Raises
        ------
        EmbeddingDataError
            When there are no rows, or the matrices differ in dimension (the first such row is named).
        """
        name = kwargs.get("name") or kwargs.get("source") or "multi-vectors"
        if len(matrices) == 0:
            raise EmbeddingDataError(f"{name}: no rows.")
        arrays = [np.asarray(m, dtype=np.float32) for m in matrices]
        dims = {a.shape[-1] if a.ndim == 2 else None for a in arrays}
        if len(dims) != 1 or None in dims:
            first = next(i for i, a in enumerate(arrays) if a.ndim != 2 or a.shape[-1] != arrays[0].shape[-1])
            raise EmbeddingDataError(
                f"{name}: every row must be a 2-D matrix of token vectors of one dimension; row {first} has shape "
                f"{arrays[first].shape}, row 0 {arrays[0].shape}."
            )
        offsets = np.concatenate([[0], np.cumsum([a.shape[0] for a in arrays])])
        return cls(np.concatenate(arrays), offsets, ids, metadata, **kwargs)

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    def __getitem__(self, row: int) -> np.ndarray:
        return self.vectors[self.offsets[row] : self.offsets[row + 1]]

    def __repr__(self) -> str:
        return f"MultiVectorSet(n={len(self)}, dim={self.dim}, tokens={self.n_tokens})"

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def n_tokens(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per row."""
        return np.diff(self.offsets)

    @property
    def row_of_token(self) -> np.ndarray:
        """The row each token vector belongs to."""
        return np.repeat(np.arange(len(self)), self.lengths)

    def row_blocks(self, max_tokens: int) -> list[tuple[int, int]]:
        """Consecutive row ranges ``(start, stop)`` of at most ``max_tokens`` tokens each (a longer row alone):
        how the set is cut to bound the memory of a computation on its tokens."""
        blocks, start = [], 0
        while start < len(self):
            stop = int(np.searchsorted(self.offsets, self.offsets[start] + max_tokens, side="right")) - 1
            stop = min(max(stop, start + 1), len(self))
            blocks.append((start, stop))
            start = stop
        return blocks

    def take(self, positions: Sequence[int] | np.ndarray) -> MultiVectorSet:
        """The rows at ``positions``, in that order."""
        index = np.asarray(positions, dtype=np.int64)
        lengths = self.lengths[index]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        tokens = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in index]) if index.size else []
        metadata = None if self.metadata is None else self.metadata.take(pa.array(index))
        out = MultiVectorSet.__new__(MultiVectorSet)
        out.vectors = np.ascontiguousarray(self.vectors[np.asarray(tokens, dtype=np.int64)])
        out.offsets, out.ids, out.metadata = offsets, self.ids[index], metadata
        out.source, out.model = self.source, self.model
        return out

    def to_table(self) -> pa.Table:
        """``id``, ``tokens`` (``list<fixed_size_list<float32, dim>>``) and the metadata columns."""
        flat = pa.array(self.vectors.reshape(-1))
        tokens = pa.ListArray.from_arrays(
            pa.array(self.offsets.astype(np.int32) if self.n_tokens < 2**31 else self.offsets),
            pa.FixedSizeListArray.from_arrays(flat, self.dim),
        )
        columns = {
            ID_COLUMN: pa.array(self.ids.tolist() if self.ids.dtype == object else self.ids),
            TOKENS_COLUMN: tokens,
        }
        for column in [] if self.metadata is None else self.metadata.column_names:
            if column in columns:
                raise ConfigurationError(f"metadata column {column!r} clashes with a reserved column name.")
            columns[column] = self.metadata.column(column)
        provenance = {"source": self.source, "model": self.model, "kind": "multivector"}
        return pa.table(columns).replace_schema_metadata({PROVENANCE_KEY: json.dumps(provenance).encode()})

    def to_parquet(self, path: str | os.PathLike) -> Path:
        """Write the set to Parquet atomically; :func:`load_multivector` reads it back unchanged."""
        return write_table(self.to_table(), path)


def _check_rows(matrix: np.ndarray, offsets: np.ndarray, ids: np.ndarray, name: str) -> None:
    lengths = np.diff(offsets)
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise EmbeddingDataError(
            f"{name}: {empty.size:,} of {lengths.size:,} rows have no token vectors (ids {_shown(ids[empty])}); "
            "every row needs at least one token (drop empty texts before embedding)."
        )
    for problem in find_invalid_rows(matrix, allow_zero=True):
        rows = np.unique(np.searchsorted(offsets, problem.positions, side="right") - 1)
        raise EmbeddingDataError(
            f"{name}: {rows.size:,} of {lengths.size:,} rows have token vectors with {problem.reason} "
            f"(ids {_shown(ids[rows])}). Fix the data upstream."
        )
    repeated = repeated_positions(ids)
    if repeated.size:
        raise EmbeddingDataError(
            f"{name}: {repeated.size:,} rows repeat an earlier row's id (ids {_shown(ids[repeated])}); ids must be "
            "unique."
        )


def _shown(ids: np.ndarray) -> str:
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in ids[:_SHOWN])
    return shown + (", ..." if ids.size > _SHOWN else "")


# reading


class _MultiVectorSource:
    """A Parquet file or folder, Arrow IPC file or Lance dataset holding a token column: its layout, read from the
    schema, and its parts (row groups, files, fragments) for sharded work."""

    def __init__(self, path: str | os.PathLike, column: str | None, id_column: str | None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise EmbeddingDataError(f"{self.path}: no such file or directory.")
        kind = arrow_kind(self.path)
        if kind is None:
            raise EmbeddingDataError(
                f"{self.path}: not a Parquet file or folder, Arrow file or Lance dataset, which multi-vector sets are "
                "read from."
            )
        self.files = ArrowFiles(self.path, kind)
        schema = self.files.schema
        self.column = _token_column(schema, column, self.path)
        self.dim = _token_dim(schema.field(self.column).type, self.path, self.column)
        if id_column is not None and id_column not in schema.names:
            raise EmbeddingDataError(f"{self.path}: no id column {id_column!r} (columns: {', '.join(schema.names)}).")
        self.id_column = id_column or (ID_COLUMN if ID_COLUMN in schema.names else None)
        self.metadata_columns = [n for n in schema.names if n not in (self.column, self.id_column)]
        model = _read_provenance(schema).get("model")
        self.model = model if isinstance(model, str) else None
        self.n_rows = self.files.count_rows()

    def parts(self, rows: int) -> list[Part]:
        """Runs of Parquet row groups of about ``rows`` rows, Arrow files or Lance fragments."""
        return self.files.parts(rows)

    def batches(self, batch_rows: int, columns: list[str], part: Part | None) -> Iterator[pa.RecordBatch]:
        return self.files.batches(batch_rows, columns, part)


def _token_column(schema: pa.Schema, column: str | None, path: Path) -> str:
    if column is not None:
        if column not in schema.names:
            raise EmbeddingDataError(f"{path}: no column {column!r} (columns: {', '.join(schema.names)}).")
        return column
    candidates = [f.name for f in schema if is_token_list_type(f.type)]
    preferred = [name for name in PREFERRED_TOKEN_COLUMNS if name in candidates]
    if preferred or len(candidates) == 1:
        return (preferred or candidates)[0]
    if not candidates:
        raise EmbeddingDataError(
            f"{path}: no column of token vectors (a list of float vectors per row, such as "
            f"list<fixed_size_list<float32, dim>>); columns: "
            + ", ".join(f"{f.name} ({f.type})" for f in schema)
            + ". A file of one vector per row is read with embedlab.load."
        )
    raise EmbeddingDataError(f"{path}: several columns hold token vectors ({', '.join(candidates)}); name one.")


def _token_dim(kind: pa.DataType, path: Path, column: str) -> int | None:
    if not is_token_list_type(kind):
        raise EmbeddingDataError(
            f"{path}: column {column!r} is {kind}, not a list of token vectors (list<fixed_size_list<float32, dim>>)."
        )
    inner = kind.value_type
    return int(inner.list_size) if pa.types.is_fixed_size_list(inner) else None


def open_multivector(path: str | os.PathLike, *, column: str | None = None, id_column: str | None = None):
    """The layout of a multi-vector file (rows, dimension, columns) read from its schema, without the vectors.

    Raises
    ------
    EmbeddingDataError
        When the file is missing or unreadable, or holds no column of token vectors.
    """
    return _MultiVectorSource(path, column, id_column)


def iter_multivector_batches(
    path: str | os.PathLike,
    batch_rows: int = 1024,
    *,
    column: str | None = None,
    id_column: str | None = None,
    part: Part | None = None,
) -> Iterator[MultiVectorSet]:
    """Stream a multi-vector file in sets of at most ``batch_rows`` rows (memory: one batch of token vectors).

    Ids are the file's ``id`` column (or ``id_column``), else the row numbers. Every batch is validated as a
    :class:`MultiVectorSet`; errors name the file and the rows. Ids repeated across batches are refused by
    the consumers that key by id. With ``part`` (one of ``open_multivector(path).parts(rows)``), only its rows
    are read, numbered as in the whole set.

    Raises
    ------
    EmbeddingDataError
        On an unreadable file, no token column, token vectors of different dimensions, null rows or tokens,
        rows without tokens, NaN or Inf values.
    """
    batch_rows = check_int(batch_rows, "batch_rows")
    source = _MultiVectorSource(path, column, id_column)
    columns = [source.column, *([source.id_column] if source.id_column else []), *source.metadata_columns]
    start = 0 if part is None else part.start
    for batch in source.batches(batch_rows, columns, part):
        if batch.num_rows == 0:
            continue
        name = f"{source.path} (rows {start}-{start + batch.num_rows - 1})"
        vectors, offsets = _tokens_of(batch.column(source.column), source.dim, name, start)
        source.dim = vectors.shape[1]  # a list<list<float>> column's dimension is known from its first batch
        ids = (
            batch.column(source.id_column).to_numpy(zero_copy_only=False)
            if source.id_column
            else np.arange(start, start + batch.num_rows, dtype=np.int64)
        )
        metadata = pa.table({c: batch.column(c) for c in source.metadata_columns}) if source.metadata_columns else None
        yield MultiVectorSet(vectors, offsets, ids, metadata, source=str(source.path), model=source.model, name=name)
        start += batch.num_rows


def load_multivector(
    path: str | os.PathLike, *, column: str | None = None, id_column: str | None = None
) -> MultiVectorSet:
    """Read a whole multi-vector file (see :func:`iter_multivector_batches`); ids must be unique across it.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "mv.parquet")
    >>> _ = MultiVectorSet.from_matrices([np.eye(2), np.ones((3, 2))]).to_parquet(path)
    >>> load_multivector(path).lengths.tolist()
    [2, 3]
    """
    parts = list(iter_multivector_batches(path, 65_536, column=column, id_column=id_column))
    if not parts:
        raise EmbeddingDataError(f"{path}: the input is empty (0 rows).")
    if len(parts) == 1:
        return parts[0]
    vectors = np.concatenate([p.vectors for p in parts])
    offsets = np.concatenate([[0], np.cumsum(np.concatenate([p.lengths for p in parts]))])
    ids = np.concatenate([p.ids for p in parts])
    tables = [p.metadata for p in parts if p.metadata is not None]
    metadata = pa.concat_tables(tables) if tables else None
    return MultiVectorSet(vectors, offsets, ids, metadata, source=str(path), model=parts[0].model)


def _tokens_of(values: pa.Array, dim: int | None, name: str, start: int) -> tuple[np.ndarray, np.ndarray]:
    """The token vectors and row offsets of a batch's token column, refusing nulls and ragged tokens."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        rows = np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False)) + start
        raise EmbeddingDataError(f"{name}: rows {rows[:_SHOWN].tolist()} have no token list (null).")
    lengths = values.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    tokens = values.flatten()
    if tokens.null_count:
        raise EmbeddingDataError(f"{name}: {tokens.null_count:,} token vectors are null; every token needs a vector.")
    if pa.types.is_fixed_size_list(tokens.type):
        width = tokens.type.list_size
    else:
        sizes = tokens.value_lengths().to_numpy(zero_copy_only=False)
        width = int(sizes[0]) if sizes.size else (dim or 0)
        if sizes.size and (sizes != width).any():
            bad = int(np.flatnonzero(sizes != width)[0])
            row = int(np.searchsorted(np.cumsum(lengths), bad, side="right")) + start
            raise EmbeddingDataError(
                f"{name}: token vectors of different dimensions ({width} and {int(sizes[bad])}, first at row {row}); "
                "every token vector of a set must have one dimension."
            )
    if dim is not None and width != dim:
        raise EmbeddingDataError(f"{name}: token vectors of dimension {width}, unlike the file's {dim}.")
    flat = tokens.flatten()
    if flat.null_count:
        raise EmbeddingDataError(f"{name}: token vectors hold null values.")
    matrix = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, max(width, 1))
    return matrix, np.concatenate([[0], np.cumsum(lengths)])
