"""Shards: a set on disk cut into pieces that are each opened by path where they are processed.

A shard is a row range of a ``.npy`` file (read through the file, never loaded whole), consecutive row groups
of a Parquet file, an Arrow IPC file, or a Lance fragment. A :class:`Shard` is a few hundred bytes: it is what
travels to a worker, never the rows. Row numbers are those of the whole set, so ids and positions agree with
:func:`embedlab.load` of the same path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from embedlab._checks import check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.embedding_set import ID_COLUMN
from embedlab.io.readers import Part, RawChunk, SourceInfo, open_source
from embedlab.io.validation import prepare
from embedlab.io.writers import atomic_directory, write_json, write_table
from embedlab.scale import Backend, get_backend, worker_cache

__all__ = [
    "COLUMNS_MANIFEST",
    "SHARD_BYTES",
    "Shard",
    "ShardedSet",
    "gather_rows",
    "open_shards",
    "part_name",
    "read_ids",
    "write_columns",
    "write_parts",
]

#: The manifest of a directory of per-shard columns (:func:`write_columns`); a leading underscore makes Arrow
#: (``pyarrow.parquet.read_table(folder)``) and Spark readers of the folder skip it.
COLUMNS_MANIFEST = "_columns.json"

#: Float32 bytes of vectors a shard holds by default (rows per shard = this / (4 dim)).
SHARD_BYTES = 256 * 2**20
#: Shards a task holds at once at most (the kNN graph: its query shard and the shard it searches).
WORKING_SHARDS = 2


@dataclass(frozen=True)
class Shard:
    """One piece of a set on disk.

    Attributes
    ----------
    number : int
        Its place among the set's shards (results are merged in this order).
    path : str
        The set as given (a file, a Parquet folder, a Lance dataset).
    format : str
        As :class:`~embedlab.io.readers.SourceInfo` names it.
    part : Part
        The rows: their first row number in the set, their count, the file holding them.
    column, id_column : str or None
        The vector and id columns resolved for the whole set.
    dim : int
    """

    number: int
    path: str
    format: str
    part: Part
    column: str | None
    id_column: str | None
    dim: int

    @property
    def start(self) -> int:
        return self.part.start

    @property
    def n_rows(self) -> int:
        return self.part.n_rows

    @property
    def name(self) -> str:
        """``file (rows a-b)``, as errors name it."""
        return f"{self.part.file} (rows {self.start}-{self.start + self.n_rows - 1})"

    def iter_chunks(self, batch_size: int = 65_536) -> Iterator[RawChunk]:
        """The shard's rows in chunks of ``batch_size`` (unvalidated float32 vectors, ids, metadata).

        Raises
        ------
        EmbeddingDataError
            When the file is missing, unreadable, or no longer holds vectors of the set's dimension.
        """
        cache = worker_cache()
        if cache is None:
            yield from self._read_chunks(batch_size)
            return
        whole = cache.get(self._cache_key(), self._read_whole)  # one copy, whatever the chunking asked
        for offset in range(0, whole.vectors.shape[0], batch_size):
            rows = slice(offset, offset + batch_size)
            metadata = None if whole.metadata is None else whole.metadata.slice(offset, batch_size)
            yield RawChunk(whole.vectors[rows], whole.ids[rows], metadata, whole.start + offset)

    def iter_prepared(self, metric: str, batch_size: int = 65_536) -> Iterator[tuple[RawChunk, np.ndarray]]:
        """Each chunk with its rows validated and prepared for ``metric`` (unit rows under cosine).

        Raises
        ------
        EmbeddingDataError
            On an unreadable shard or an invalid row, naming the file and the rows.
        """
        for chunk in self.iter_chunks(batch_size):
            name = f"{self.part.file} (rows {chunk.start}-{chunk.stop - 1})"
            yield chunk, prepare(chunk.vectors, metric, name=name).vectors

    def _read_whole(self) -> tuple[RawChunk, int]:
        """The shard as one chunk, and the bytes it holds (what a worker cache counts)."""
        chunk = next(self._read_chunks(max(self.n_rows, 1)), None) or self._empty()
        metadata = 0 if chunk.metadata is None else chunk.metadata.nbytes
        return chunk, chunk.vectors.nbytes + chunk.ids.nbytes + metadata

    def _empty(self) -> RawChunk:
        return RawChunk(np.empty((0, self.dim), np.float32), np.empty(0, np.int64), None, self.start)

    def _read_chunks(self, batch_size: int) -> Iterator[RawChunk]:
        # a Lance fragment is read through its dataset; every other part is a file of its own
        target = self.path if self.format == "lance" else self.part.file
        source = open_source(target, column=self.column, id_column=self.id_column)
        if source.info.dim != self.dim:
            raise EmbeddingDataError(
                f"{self.name}: vectors of dimension {source.info.dim}, unlike the set's {self.dim}; every shard must "
                "hold vectors of one dimension."
            )
        yield from source.iter_chunks(batch_size, self.part)

    def _cache_key(self) -> tuple:
        """The shard and its file's size and modification time (a rewritten file is read again)."""
        try:
            stat = os.stat(self.part.file)
            version = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            version = None  # a missing file: reading it names the problem
        return (self.path, self.part, self.column, self.id_column, version)

    def read(self) -> RawChunk:
        """All the shard's rows as one chunk (what a worker holds while it works on them)."""
        return next(self.iter_chunks(max(self.n_rows, 1)), None) or self._empty()


@dataclass(frozen=True)
class ShardedSet:
    """A set on disk as its shards, with what its header or schema says.

    Attributes
    ----------
    path : str
    info : SourceInfo
    shards : tuple of Shard
    """

    path: str
    info: SourceInfo
    shards: tuple[Shard, ...]

    @property
    def n_rows(self) -> int:
        return self.info.n_rows

    @property
    def dim(self) -> int:
        return self.info.dim

    def __len__(self) -> int:
        return len(self.shards)

    def __iter__(self) -> Iterator[Shard]:
        return iter(self.shards)


def open_shards(
    path: str | os.PathLike,
    *,
    column: str | None = None,
    id_column: str | None = None,
    shard_rows: int | None = None,
    memory_budget: int | None = None,
    allow_empty: bool = False,
) -> ShardedSet:
    """Cut the set at ``path`` into shards of about ``shard_rows`` rows, reading only headers and footers.

    Parameters
    ----------
    path : path-like
        Any format :func:`embedlab.load` reads. A ``.npy`` file is cut into row ranges, a Parquet file or
        folder into runs of row groups (a row group is never split), an Arrow IPC file or folder by file, a
        Lance dataset by fragment; an ``.npz`` archive is one shard.
    column, id_column : str, optional
        Vector and id columns; auto-detected when omitted (the same for every file of a folder).
    shard_rows : int, optional
        Rows per shard; by default as many as 256 MiB of float32 vectors hold, or as fit ``memory_budget``.
    memory_budget : int, optional
        Bytes a task may hold: two shards of float32 vectors (the kNN graph holds its query shard and the
        shard it searches; every other step less) must fit, or the set is refused.
    allow_empty : bool, default=False
        Give an empty set one empty shard instead of refusing it.

    Returns
    -------
    ShardedSet

    Raises
    ------
    EmbeddingDataError
        When the set is missing, empty or unreadable, or its files disagree on the vector type, dimension or
        id column (the file is named).
    ConfigurationError
        When ``memory_budget`` cannot hold two of its shards (a Parquet row group, an Arrow file, a Lance
        fragment or an ``.npz`` archive is never split): the largest is named.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "x.npy"), np.ones((10, 4), dtype=np.float32))
    >>> [shard.n_rows for shard in open_shards(os.path.join(folder, "x.npy"), shard_rows=4)]
    [4, 4, 2]
    """
    source = open_source(path, column=column, id_column=id_column)
    info = source.info
    if info.n_rows == 0 and not allow_empty:
        raise EmbeddingDataError(f"{path}: the input is empty (0 rows).")
    row_bytes = 4 * max(info.dim, 1)
    default = SHARD_BYTES
    if memory_budget is not None:
        default = min(default, check_int(memory_budget, "memory_budget") // WORKING_SHARDS)
    rows = check_int(shard_rows, "shard_rows") if shard_rows is not None else max(1, default // row_bytes)
    shards = tuple(
        Shard(number, str(path), info.format, part, info.vector_column, info.id_column, info.dim)
        for number, part in enumerate(source.parts(rows))
    )
    if memory_budget is not None and shards:
        largest = max(shards, key=lambda shard: shard.n_rows)
        needed = WORKING_SHARDS * largest.n_rows * row_bytes
        if needed > memory_budget:
            raise ConfigurationError(
                f"a memory budget of {memory_budget:,} bytes cannot hold two shards of {largest.n_rows:,} rows "
                f"({needed:,} bytes of float32 vectors at dimension {info.dim}); the largest is {largest.name}. "
                "Raise the budget, give smaller --shard-rows, or rewrite the set in smaller row groups or files."
            )
    return ShardedSet(str(path), info, shards)


def _rows_at(shard: Shard, positions: np.ndarray) -> np.ndarray:
    """The rows of ``shard`` at the sorted set-wide ``positions`` that fall in it (unvalidated float32)."""
    lo, hi = np.searchsorted(positions, [shard.start, shard.start + shard.n_rows])
    if lo == hi:
        return np.empty((0, shard.dim), np.float32)
    picked = []
    for chunk in shard.iter_chunks():
        a, b = np.searchsorted(positions, [chunk.start, chunk.stop])
        picked.append(chunk.vectors[positions[a:b] - chunk.start])
    return np.concatenate(picked)


def gather_rows(sharded: ShardedSet, positions: np.ndarray, *, backend: str | Backend = "local") -> np.ndarray:
    """The rows at set-wide ``positions`` (distinct, any order), in that order: each shard reads its own.

    Raises
    ------
    ConfigurationError
        When a position repeats or lies outside the set.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(20, dtype=np.float32).reshape(10, 2))
    >>> gather_rows(open_shards(path, shard_rows=3), np.array([7, 1])).tolist()
    [[14.0, 15.0], [2.0, 3.0]]
    """
    positions = np.asarray(positions, dtype=np.int64)
    order = np.argsort(positions, kind="stable")
    ordered = positions[order]
    if ordered.size and (ordered[0] < 0 or ordered[-1] >= sharded.n_rows or (np.diff(ordered) == 0).any()):
        raise ConfigurationError(f"positions must be distinct rows of the {sharded.n_rows:,} rows of {sharded.path}.")
    parts = get_backend(backend).map(_rows_at, sharded.shards, ordered, description="Gathering rows")
    rows = np.concatenate(parts) if parts else np.empty((0, sharded.dim), np.float32)
    found = np.empty_like(rows)
    found[order] = rows
    return found


def _shard_ids(shard: Shard) -> np.ndarray:
    ids = [chunk.ids for chunk in shard.iter_chunks()]
    return np.concatenate(ids) if ids else np.empty(0, np.int64)


def read_ids(sharded: ShardedSet, *, backend: str | Backend = "local") -> np.ndarray:
    """The ids of every row of the set, in row order (each shard reads its own)."""
    parts = get_backend(backend).map(_shard_ids, sharded.shards, description="Reading ids")
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def part_name(shard: Shard) -> str:
    """The file a shard's part of a per-shard output is written to: ``part-NNNNN.parquet``."""
    return f"part-{shard.number:05d}.parquet"


def write_parts(
    output: str | os.PathLike,
    work: Callable[..., tuple[str, int]],
    items: list[Any],
    *args: Any,
    manifest: str,
    document: Mapping[str, Any],
    backend: str | Backend = "local",
    progress: ProgressReporter = NULL_PROGRESS,
    description: str = "Writing shards",
) -> list[tuple[str, int]]:
    """A directory of one file per item, each written by ``work(item, *args, folder)`` where the backend runs it
    (returning the file's name and row count), and a JSON ``manifest`` of ``document`` plus the ``files`` and
    their ``rows``; the directory appears whole or not at all.

    ``output`` may replace an earlier directory holding the same ``manifest``. On Ray, it must be on a file
    system every node sees. Returns the names and row counts in item order.
    """
    with atomic_directory(output, replaceable=manifest) as staging:
        parts = get_backend(backend).map(work, items, *args, str(staging), progress=progress, description=description)
        for stray in staging.glob(".*.tmp"):  # left by a worker killed while writing (its task was retried)
            stray.unlink()
        files = [name for name, _ in parts]
        write_json({**document, "files": files, "rows": [n for _, n in parts]}, Path(staging) / manifest)
    return parts


def _columns_part(item: tuple[Shard, dict[str, np.ndarray]], folder: str) -> tuple[str, int]:
    """The shard's ids beside its slice of the columns, as one Parquet file."""
    shard, columns = item
    table = pa.table({ID_COLUMN: pa.array(_shard_ids(shard)), **columns})
    write_table(table, Path(folder) / part_name(shard))  # a retried task writes the same file again
    return part_name(shard), table.num_rows


def write_columns(
    sharded: ShardedSet,
    columns: Mapping[str, np.ndarray],
    output: str | os.PathLike,
    *,
    document: Mapping[str, Any] | None = None,
    backend: str | Backend = "local",
    progress: ProgressReporter = NULL_PROGRESS,
) -> list[str]:
    """Write per-row ``columns`` (one value a row of the set, in row order) as one Parquet file per shard, each
    with the shard's ids, into the directory ``output`` with a ``_columns.json`` manifest.

    Each shard's task reads its own ids and receives only its slice of the columns (labels of a clustering,
    scores), so the files line up with the shards and ``embedlab.load`` reads the directory in row order.

    Raises
    ------
    ConfigurationError
        When a column does not hold one value per row of the set.
    FileExistsError
        When ``output`` exists and is not an earlier output of this kind.
    """
    for name, values in columns.items():
        if len(values) != sharded.n_rows:
            raise ConfigurationError(f"column {name!r} has {len(values):,} values for {sharded.n_rows:,} rows.")
    items = [
        (
            shard,
            {name: np.asarray(values[shard.start : shard.start + shard.n_rows]) for name, values in columns.items()},
        )
        for shard in sharded.shards
    ]
    meta = {**(document or {}), "source": sharded.path, "columns": list(columns)}
    parts = write_parts(
        output, _columns_part, items, manifest=COLUMNS_MANIFEST, document=meta, backend=backend, progress=progress
    )
    return [name for name, _ in parts]
