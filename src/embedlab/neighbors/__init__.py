"""Neighbours: the search layer. One ``Searcher`` protocol (exact, HNSW, IVF, IVF-PQ on faiss, and every codec),
its parameters and result type, exact re-ranking, the convenience ``knn`` and the cached kNN graph, and recall."""

from embedlab.io.validation import unit_rows
from embedlab.neighbors._sharded import (
    GRAPH_MANIFEST,
    ExactShards,
    ShardedGraph,
    ShardedSearcher,
    ShardSearchers,
    knn_graph_shards,
)
from embedlab.neighbors._threshold import threshold_neighbors
from embedlab.neighbors.engine import (
    AUTO_EXACT_MAX_PAIRS,
    Method,
    Metric,
    graph_memory,
    knn,
    knn_graph,
    knn_memory,
    search_params,
)
from embedlab.neighbors.evaluation import recall_at_k, recall_per_query
from embedlab.neighbors.params import ExactParams, HNSWParams, IVFParams, IVFPQParams, SearchParams, Storage
from embedlab.neighbors.result import KnnResult
from embedlab.neighbors.searchers import (
    BaseSearcher,
    ExactSearcher,
    FaissSearcher,
    Searcher,
    merge_top_k,
    refine_l2,
    rerank,
    to_distances,
)

__all__ = [
    "AUTO_EXACT_MAX_PAIRS",
    "GRAPH_MANIFEST",
    "BaseSearcher",
    "ExactParams",
    "ExactSearcher",
    "ExactShards",
    "FaissSearcher",
    "HNSWParams",
    "IVFPQParams",
    "IVFParams",
    "KnnResult",
    "Method",
    "Metric",
    "SearchParams",
    "Searcher",
    "ShardSearchers",
    "ShardedGraph",
    "ShardedSearcher",
    "Storage",
    "graph_memory",
    "knn",
    "knn_graph",
    "knn_graph_shards",
    "knn_memory",
    "merge_top_k",
    "recall_at_k",
    "recall_per_query",
    "refine_l2",
    "rerank",
    "search_params",
    "threshold_neighbors",
    "to_distances",
    "unit_rows",
]
