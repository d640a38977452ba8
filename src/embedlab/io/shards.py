"""Shards: a set on disk cut into pieces that are each opened by path where they are processed.

A shard is a row range of a ``.npy`` file (read through the file, never loaded whole), consecutive row groups
of a Parquet file, an Arrow IPC file, or a Lance fragment. A :class:`Shard` is a few hundred bytes: it is what
travels to a worker, never the rows. Row numbers are those of the whole set, so ids and positions agree with
:func:`embedlab.load` of the same path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from embedlab._checks import check_int
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.readers import Part, RawChunk, SourceInfo, open_source
from embedlab.scale import Backend, get_backend

__all__ = ["SHARD_BYTES", "Shard", "ShardedSet", "gather_rows", "open_shards"]

#: Float32 bytes of vectors a shard holds by default (rows per shard = this / (4 dim)).
SHARD_BYTES = 256 * 2**20


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
        # a Lance fragment is read through its dataset; every other part is a file of its own
        target = self.path if self.format == "lance" else self.part.file
        source = open_source(target, column=self.column, id_column=self.id_column)
        if source.info.dim != self.dim:
            raise EmbeddingDataError(
                f"{self.name}: vectors of dimension {source.info.dim}, unlike the set's {self.dim}; every shard must "
                "hold vectors of one dimension."
            )
        yield from source.iter_chunks(batch_size, self.part)

    def read(self) -> RawChunk:
        """All the shard's rows as one chunk (what a worker holds while it works on them)."""
        empty = RawChunk(np.empty((0, self.dim), np.float32), np.empty(0, np.int64), None, self.start)
        return next(self.iter_chunks(max(self.n_rows, 1)), empty)


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
        Rows per shard; by default as many as 256 MiB of float32 vectors hold.
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
    default = SHARD_BYTES // (4 * max(info.dim, 1))
    rows = check_int(shard_rows, "shard_rows") if shard_rows is not None else max(1, default)
    shards = tuple(
        Shard(number, str(path), info.format, part, info.vector_column, info.id_column, info.dim)
        for number, part in enumerate(source.parts(rows))
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
