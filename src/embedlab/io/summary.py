"""describe: a streaming pass over an embeddings set, shard by shard on any backend, that counts what is in it,
valid or not."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from embedlab._checks import check_int
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.io.readers import id_keys
from embedlab.io.shards import Shard, ShardedSet, open_shards
from embedlab.scale import Backend, get_backend

__all__ = ["Description", "ShardCounts", "count_shard", "describe", "row_hashes"]

_HASH_SEED = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class Description:
    """What :func:`describe` found in a file.

    Attributes
    ----------
    path, format, vector_column, id_column : str or None
        Where and how the vectors are stored.
    n, dim : int
        Rows and dimension.
    dtype : str
        Element type on disk.
    norm_min, norm_mean, norm_median, norm_max : float
        Statistics of the Euclidean norms of the finite rows (NaN when none is finite).
    nan_inf_rows, zero_rows : int
        Rows with a NaN or Inf value; rows that are all zeros.
    duplicate_rows : int
        Rows whose vector equals (byte for byte) that of an earlier row.
    duplicate_groups : int
        Distinct vectors that occur more than once.
    duplicate_ids : int
        Rows whose id equals that of an earlier row.
    metadata_columns : tuple of str
    model : str or None
        The model recorded in the file, if any.
    """

    path: str
    format: str
    n: int
    dim: int
    dtype: str
    vector_column: str | None
    id_column: str | None
    norm_min: float
    norm_mean: float
    norm_median: float
    norm_max: float
    nan_inf_rows: int
    zero_rows: int
    duplicate_rows: int
    duplicate_groups: int
    duplicate_ids: int
    metadata_columns: tuple[str, ...]
    model: str | None

    def to_dict(self) -> dict:
        """JSON-ready dictionary of every field."""
        document = asdict(self)
        document["metadata_columns"] = list(self.metadata_columns)
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in document.items()}


def row_hashes(vectors: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's bytes: equal rows get equal hashes.

    Vectorised over rows (a polynomial hash of the row's 32-bit words, modulo 2**64), so hashing a million
    384-d rows takes a fraction of a second. Different rows collide with probability about 2**-64 per pair.

    Parameters
    ----------
    vectors : numpy.ndarray of shape (n, d), float32

    Returns
    -------
    numpy.ndarray of shape (n,), uint64

    Examples
    --------
    >>> import numpy as np
    >>> h = row_hashes(np.array([[1, 2], [3, 4], [1, 2]], dtype=np.float32))
    >>> bool(h[0] == h[2]), bool(h[0] == h[1])
    (True, False)
    """
    words = np.ascontiguousarray(vectors, dtype=np.float32).view(np.uint32)
    acc = np.full(words.shape[0], _HASH_SEED, dtype=np.uint64)
    multiplier = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            acc = (acc ^ words[:, j].astype(np.uint64)) * multiplier
            acc ^= acc >> np.uint64(29)
    return acc


@dataclass(frozen=True)
class ShardCounts:
    """What one shard adds to a description: counts, and the per-row values merged in shard order."""

    nan_inf_rows: int
    zero_rows: int
    norms: np.ndarray
    hashes: np.ndarray
    id_keys: np.ndarray | None


def count_shard(shard: Shard, batch_size: int = 65_536) -> ShardCounts:
    """Bad values, norms of the finite rows, row hashes and id keys of one shard, streamed by batch."""
    norms, hashes, keys = [], [], []
    nan_inf = zero = 0
    for chunk in shard.iter_chunks(batch_size):
        finite = np.isfinite(chunk.vectors).all(axis=1)
        nan_inf += int((~finite).sum())
        with np.errstate(invalid="ignore"):  # a signalling NaN (a damaged file holds any bit pattern) is counted above
            zero += int((~chunk.vectors.any(axis=1)).sum())
        kept = chunk.vectors[finite]
        norms.append(np.sqrt(np.einsum("ij,ij->i", kept, kept, dtype=np.float64)))
        hashes.append(row_hashes(chunk.vectors))
        if shard.id_column is not None:
            keys.append(id_keys(chunk.ids))
    return ShardCounts(
        nan_inf,
        zero,
        np.concatenate(norms) if norms else np.empty(0, np.float64),
        np.concatenate(hashes) if hashes else np.empty(0, np.uint64),
        (np.concatenate(keys) if keys else np.empty(0, np.uint64)) if shard.id_column is not None else None,
    )


def describe(
    path: str | os.PathLike | ShardedSet,
    *,
    column: str | None = None,
    id_column: str | None = None,
    batch_size: int = 65_536,
    backend: str | Backend = "local",
    progress: ProgressReporter = NULL_PROGRESS,
) -> Description:
    """Count rows, norms, NaN/Inf, zero and duplicate vectors and duplicate ids, shard by shard.

    Unlike :func:`embedlab.load`, this never fails on bad values: it counts them, so it is the first thing
    to run on a file that does not load. Each shard (:func:`~embedlab.io.shards.open_shards`) is counted where
    the backend runs it; the driver merges the counts, the norms (float64, so that no square overflows) and the
    row and id hashes (8 bytes each a row), so the result is the same on every backend.

    Parameters
    ----------
    path : path-like or ShardedSet
        Any format :func:`embedlab.load` reads, or its shards (opened with the shard size or memory budget
        wanted).
    column, id_column : str, optional
        Vector and id columns; auto-detected when omitted (for a path).
    batch_size : int, default=65536
        Rows read at a time; memory stays near one batch plus 24 bytes a row.
    backend : {"local", "ray"} or Backend, default="local"
        Where the shards are counted (:mod:`embedlab.scale`).
    progress : ProgressReporter, optional
        Receives the shards counted.

    Returns
    -------
    Description
    """
    batch_size = check_int(batch_size, "batch_size")
    sharded = (
        path
        if isinstance(path, ShardedSet)
        else open_shards(path, column=column, id_column=id_column, allow_empty=True)
    )
    path = sharded.path
    info = sharded.info
    counts = get_backend(backend).map(
        count_shard, sharded.shards, batch_size, progress=progress, description=f"Reading {os.path.basename(str(path))}"
    )
    all_norms = np.concatenate([c.norms for c in counts]) if counts else np.empty(0)
    dup_rows, dup_groups = _repeats(np.concatenate([c.hashes for c in counts]) if counts else np.empty(0, np.uint64))
    dup_ids, _ = _repeats(np.concatenate([c.id_keys for c in counts])) if info.id_column is not None else (0, 0)
    stats = (
        (float(all_norms.min()), float(all_norms.mean()), float(np.median(all_norms)), float(all_norms.max()))
        if all_norms.size
        else (float("nan"),) * 4
    )
    return Description(
        path=str(path),
        format=info.format,
        n=info.n_rows,
        dim=info.dim,
        dtype=info.dtype,
        vector_column=info.vector_column,
        id_column=info.id_column,
        norm_min=stats[0],
        norm_mean=stats[1],
        norm_median=stats[2],
        norm_max=stats[3],
        nan_inf_rows=sum(c.nan_inf_rows for c in counts),
        zero_rows=sum(c.zero_rows for c in counts),
        duplicate_rows=dup_rows,
        duplicate_groups=dup_groups,
        duplicate_ids=dup_ids,
        metadata_columns=info.metadata_columns,
        model=info.provenance.get("model"),
    )


def _repeats(keys: np.ndarray) -> tuple[int, int]:
    """(rows equal to an earlier row, distinct values occurring more than once)."""
    if keys.size == 0:
        return 0, 0
    _, counts = np.unique(keys, return_counts=True)
    return int(keys.size - counts.size), int((counts > 1).sum())
