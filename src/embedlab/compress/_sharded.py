"""Compression of a set on disk, shard by shard on any backend of :mod:`embedlab.scale`.

The codec is fitted once, on the rows it would sample from the whole set in memory (gathered from the shards
that hold them); then every shard's task reads its own rows and writes their codes (and, for rescoring, their
prepared vectors) into its own row range of the collection's files, which the driver created at full size.
Only the codec goes out and row counts come back; a retried task writes the same bytes to the same range. The
directory is a :class:`~embedlab.compress.CompressedCollection` like any other, and appears whole or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.utils import check_random_state

from embedlab._checks import check_choice
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.compress._codec import CODEC_METRICS, Codec, CompressMetric
from embedlab.compress._collection import _CODES, _ENCODE_ROWS, _IDS, _VECTORS, MANIFEST, CompressedCollection
from embedlab.compress._spec import CodecSpec, parse_spec
from embedlab.exceptions import EmbeddingDataError
from embedlab.io import atomic_directory
from embedlab.io.embedding_set import ID_COLUMN
from embedlab.io.readers import RawChunk
from embedlab.io.shards import Shard, ShardedSet, gather_rows, open_shards
from embedlab.io.validation import Rows, prepare
from embedlab.io.writers import write_table
from embedlab.scale import Backend, get_backend

__all__ = ["compress_shards"]


def _ids_name(shard: Shard) -> str:
    return f"ids-{shard.number:05d}.parquet"


def _allocate(path: Path, dtype: type, shape: tuple[int, int]) -> None:
    """An ``.npy`` file of ``shape`` (sparse on disk until written) for the shards' tasks to fill in place."""
    np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()


def _prepared_chunks(shard: Shard, metric: str) -> Iterator[tuple[RawChunk, Rows]]:
    """The shard's chunks and their rows validated for ``metric``; an invalid row names the file and rows."""
    for chunk in shard.iter_chunks(_ENCODE_ROWS):
        yield chunk, prepare(chunk.vectors, metric, name=f"{shard.name} (rows {chunk.start}-{chunk.stop - 1})")


def _training_rows(sharded: ShardedSet, positions: np.ndarray, metric: str, backend: Backend) -> Rows:
    """The validated rows at ``positions``; an invalid one is named by its file and rows, as the encoding would."""
    rows = gather_rows(sharded, positions, backend=backend)
    try:
        return prepare(rows, metric, name=f"{sharded.path} (training rows)")
    except EmbeddingDataError:
        for shard in sharded.shards:  # the error path only: find the shard, so the message names it
            for _ in _prepared_chunks(shard, metric):
                pass
        raise


def _encode_shard(shard: Shard, codec: Codec, keep_vectors: bool, folder: str) -> int:
    """Encode the shard's rows into its range of the collection's files; its ids into a file of its own."""
    root = Path(folder)
    codes = np.load(root / _CODES, mmap_mode="r+", allow_pickle=False)
    vectors = np.load(root / _VECTORS, mmap_mode="r+", allow_pickle=False) if keep_vectors else None
    ids = []
    for chunk, rows in _prepared_chunks(shard, codec.metric):
        codes[chunk.start : chunk.stop] = codec.encode(rows)
        if vectors is not None:
            vectors[chunk.start : chunk.stop] = rows.vectors
        ids.append(chunk.ids)
    codes.flush()
    if vectors is not None:
        vectors.flush()
    write_table(
        pa.table({ID_COLUMN: pa.array(np.concatenate(ids) if ids else np.empty(0, np.int64))}), root / _ids_name(shard)
    )
    return shard.n_rows


def _join_ids(folder: Path, shards: tuple[Shard, ...]) -> None:
    """The shards' id files streamed into the collection's one, in row order, then removed."""
    parts = [folder / _ids_name(shard) for shard in shards]
    with pq.ParquetWriter(folder / _IDS, pq.read_schema(parts[0])) as writer:
        for part in parts:
            writer.write_table(pq.read_table(part))
            part.unlink()


def compress_shards(
    data: str | os.PathLike | ShardedSet,
    spec: str | CodecSpec,
    output: str | os.PathLike,
    *,
    metric: CompressMetric = "cosine",
    keep_vectors: bool | None = None,
    queries: object | None = None,
    shard_rows: int | None = None,
    backend: str | Backend = "local",
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> CompressedCollection:
    """Fit a codec on a set on disk and write the compressed collection of all its rows to ``output``, shard by
    shard on ``backend``; what :meth:`CompressedCollection.build` and :meth:`~CompressedCollection.save` write
    from the set in memory, with the same seed.

    Memory: the codec's training sample (``max_train_rows`` rows) in the driver, one shard in each task; the
    codes are written to disk as they are made, then read back by the returned collection (``n x
    bytes_per_vector`` bytes; the full vectors stay memory-mapped).

    Parameters
    ----------
    data : path-like or ShardedSet
    spec : str or CodecSpec
        As for :meth:`CompressedCollection.build`.
    output : path-like
        The collection's directory (an earlier collection there is replaced).
    metric : {"cosine", "ip"}, default="cosine"
    keep_vectors : bool, optional
        Keep the prepared full vectors for rescoring; by default exactly when the spec has ``rescore``.
    queries : array-like, optional
        Sample queries for query-aware codecs (``leanvec-ood``).
    shard_rows : int, optional
        As for :func:`~embedlab.io.shards.open_shards`, when ``data`` is a path.
    backend : {"local", "ray"} or Backend, default="local"
        On Ray, ``output`` must be on a file system every node sees.
    random_state : int or None, default=0
    progress : ProgressReporter, optional
        Receives the shards done.

    Returns
    -------
    CompressedCollection
        Read back from ``output``.

    Raises
    ------
    ConfigurationError
        On a bad spec or parameters.
    EmbeddingDataError
        On invalid rows or an unreadable shard, naming the file and rows; nothing is written then.
    FileExistsError
        When ``output`` exists and is not an earlier collection.
    """
    check_choice(metric, "metric", CODEC_METRICS)
    sharded = data if isinstance(data, ShardedSet) else open_shards(data, shard_rows=shard_rows)
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    runner = get_backend(backend)
    codec = Codec(spec, metric=metric, random_state=random_state)
    rng = check_random_state(random_state)
    positions = codec.train_positions(sharded.n_rows, rng)
    codec.fit_sample(_training_rows(sharded, positions, metric, runner), queries, rng)
    keep = spec.rescore is not None if keep_vectors is None else keep_vectors
    with atomic_directory(output, replaceable=MANIFEST) as staging:
        _allocate(staging / _CODES, np.uint8, (sharded.n_rows, codec.bytes_per_vector))
        if keep:
            _allocate(staging / _VECTORS, np.float32, (sharded.n_rows, sharded.dim))
        runner.map(
            _encode_shard,
            sharded.shards,
            codec,
            keep,
            str(staging),
            progress=progress,
            description=f"Encoding {sharded.n_rows:,} rows with {spec.codes_spec}",
        )
        for stray in staging.glob(".*.tmp"):  # left by a worker killed while writing (its task was retried)
            stray.unlink()
        _join_ids(staging, sharded.shards)
        CompressedCollection.write_manifest(staging, codec, sharded.n_rows, has_vectors=keep)
    return CompressedCollection.open(output)
