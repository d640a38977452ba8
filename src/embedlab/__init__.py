"""embedlab: inspect, cluster, compress, search, compare and curate collections of learned embeddings.

Public names are imported on first use (PEP 562), so ``import embedlab`` and the streaming readers stay light:
the geometry and neighbour modules, with scipy and faiss behind them, load only when asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from embedlab._version import __version__
from embedlab.exceptions import (
    ConfigurationError,
    EmbeddingDataError,
    EmbedlabError,
    MissingDependencyError,
    ResourceLimitError,
)

_LAZY = {
    "EmbeddingSet": ("embedlab.io", "EmbeddingSet"),
    "describe": ("embedlab.io", "describe"),
    "iter_batches": ("embedlab.io", "iter_batches"),
    "load": ("embedlab.io", "load"),
    "open_shards": ("embedlab.io", "open_shards"),
    "KnnResult": ("embedlab.neighbors", "KnnResult"),
    "knn": ("embedlab.neighbors", "knn"),
    "knn_graph": ("embedlab.neighbors", "knn_graph"),
    "GeometryReport": ("embedlab.geometry", "GeometryReport"),
    "inspect": ("embedlab.geometry", "inspect_geometry"),
    "ClusterReport": ("embedlab.cluster", "ClusterReport"),
    "find_clusters": ("embedlab.cluster", "find_clusters"),
    "CompressedCollection": ("embedlab.compress", "CompressedCollection"),
    "plan_compression": ("embedlab.compress", "plan_compression"),
    "Index": ("embedlab.search", "Index"),
    "build_index": ("embedlab.search", "build_index"),
    "compare_spaces": ("embedlab.compare", "compare_spaces"),
    "fit_adapter": ("embedlab.align", "fit_adapter"),
}

__all__ = [
    "ClusterReport",
    "CompressedCollection",
    "ConfigurationError",
    "EmbeddingDataError",
    "EmbeddingSet",
    "EmbedlabError",
    "GeometryReport",
    "Index",
    "KnnResult",
    "MissingDependencyError",
    "ResourceLimitError",
    "__version__",
    "build_index",
    "compare_spaces",
    "describe",
    "find_clusters",
    "fit_adapter",
    "inspect",
    "iter_batches",
    "knn",
    "knn_graph",
    "load",
    "open_shards",
    "plan_compression",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'embedlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from embedlab.align import fit_adapter
    from embedlab.cluster import ClusterReport, find_clusters
    from embedlab.compare import compare_spaces
    from embedlab.compress import CompressedCollection, plan_compression
    from embedlab.geometry import GeometryReport
    from embedlab.geometry import inspect_geometry as inspect
    from embedlab.io import EmbeddingSet, describe, iter_batches, load
    from embedlab.neighbors import KnnResult, knn, knn_graph
    from embedlab.search import Index, build_index
