"""Search: indexes of an embedding set tuned to a target recall, with an operating-point card, saved and served.

Every index is a :class:`~embedlab.neighbors.Searcher`; ``open_searcher`` opens an index or a compressed
collection from its directory alike. ``build_shard_indexes`` builds one index per shard of a set on disk, tuned
once on its first shard, for sharded search and kNN graphs on any backend.
"""

from embedlab.search._card import OperatingCard, OperatingPoint, Stratum
from embedlab.search._index import METHODS, Index, build_index
from embedlab.search._open import open_searcher
from embedlab.search._sharded import SHARD_INDEXES_MANIFEST, ShardIndexes, build_shard_graph, build_shard_indexes

__all__ = [
    "METHODS",
    "SHARD_INDEXES_MANIFEST",
    "Index",
    "OperatingCard",
    "OperatingPoint",
    "ShardIndexes",
    "Stratum",
    "build_index",
    "build_shard_graph",
    "build_shard_indexes",
    "open_searcher",
]
