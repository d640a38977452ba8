"""Data layer: the EmbeddingSet, readers and streaming, the one input validator, and atomic writers."""

from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.readers import SourceInfo, iter_batches, load, open_source
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
    "SourceInfo",
    "ValidationReport",
    "as_float32_matrix",
    "atomic_directory",
    "atomic_path",
    "check_k",
    "check_vectors",
    "describe",
    "iter_batches",
    "load",
    "open_source",
    "row_hashes",
    "write_json",
    "write_table",
]
