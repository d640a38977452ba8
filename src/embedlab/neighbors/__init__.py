"""Neighbours: the one faiss-backed kNN engine, its result type, the cached kNN graph, and recall."""

from embedlab.neighbors.engine import AUTO_EXACT_MAX_PAIRS, Method, Metric, knn, knn_graph, unit_rows
from embedlab.neighbors.evaluation import recall_at_k
from embedlab.neighbors.result import KnnResult

__all__ = ["AUTO_EXACT_MAX_PAIRS", "KnnResult", "Method", "Metric", "knn", "knn_graph", "recall_at_k", "unit_rows"]
