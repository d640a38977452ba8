"""embedlab: inspect, cluster, compress, search, compare and curate collections of learned embeddings."""

from embedlab.exceptions import (
    ConfigurationError,
    EmbeddingDataError,
    EmbedlabError,
    MissingDependencyError,
)
from embedlab.io import EmbeddingSet, describe, iter_batches, load
from embedlab.neighbors import KnnResult, knn, knn_graph

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "EmbeddingDataError",
    "EmbeddingSet",
    "EmbedlabError",
    "KnnResult",
    "MissingDependencyError",
    "__version__",
    "describe",
    "iter_batches",
    "knn",
    "knn_graph",
    "load",
]
