"""embedlab: inspect, cluster, compress, search, compare and curate collections of learned embeddings."""

from embedlab.exceptions import (
    ConfigurationError,
    EmbeddingDataError,
    EmbedlabError,
    MissingDependencyError,
)
from embedlab.geometry import GeometryReport
from embedlab.geometry import inspect_geometry as inspect
from embedlab.io import EmbeddingSet, describe, iter_batches, load
from embedlab.neighbors import KnnResult, knn, knn_graph

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "EmbeddingDataError",
    "EmbeddingSet",
    "EmbedlabError",
    "GeometryReport",
    "KnnResult",
    "MissingDependencyError",
    "__version__",
    "describe",
    "inspect",
    "iter_batches",
    "knn",
    "knn_graph",
    "load",
]
