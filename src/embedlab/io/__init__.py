"""Data layer: the EmbeddingSet, readers and streaming, shards of a set on disk, the one input validator,
pairing two sets by id, and atomic writers."""

from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.pairing import PairedSets, pair_by_id
from embedlab.io.readers import SourceInfo, iter_batches, load, load_npy, open_source, read_id_file, reading_memory
from embedlab.io.shards import Shard, ShardedSet, gather_rows, open_shards
from embedlab.io.summary import Description, describe, row_hashes
from embedlab.io.validation import (
    InvalidRows,
    ValidationReport,
    as_float32_matrix,
    check_k,
    check_vectors,
)
from embedlab.io.writers import atomic_directory, atomic_path, write_json, write_table

__all__ = [
    "Description",
    "EmbeddingSet",
    "InvalidRows",
    "PairedSets",
    "Shard",
    "ShardedSet",
    "SourceInfo",
    "ValidationReport",
    "as_float32_matrix",
    "atomic_directory",
    "atomic_path",
    "check_k",
    "check_vectors",
    "describe",
    "gather_rows",
    "iter_batches",
    "load",
    "load_npy",
    "open_shards",
    "open_source",
    "pair_by_id",
    "read_id_file",
    "reading_memory",
    "row_hashes",
    "write_json",
    "write_table",
]
