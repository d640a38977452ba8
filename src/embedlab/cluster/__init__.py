"""Cluster: what groups an embedding set holds, how many, and what they are called — k-means on faiss,
hierarchical k-means, density and graph clustering, deep clustering heads, the choice of k, cluster metrics,
cluster-wise stability and cluster names."""

from embedlab.cluster._density import (
    GaussianMixtureClusterer,
    HDBSCANClusterer,
    WardClusterer,
    gmm_bic_curve,
    reduce_dimensions,
)
from embedlab.cluster._graph import LeidenClusterer
from embedlab.cluster._hierarchical import HierarchicalKMeans, KMeansLevel
from embedlab.cluster._kmeans import ClusterMetric, KMeans, MiniBatchKMeans
from embedlab.cluster._kmedoids import KMedoids
from embedlab.cluster._report import METHODS, NAMINGS, ClusterReport, clustering_memory, find_clusters
from embedlab.cluster._select_k import (
    CRITERIA,
    DEFAULT_K_VALUES,
    FLAT_SILHOUETTE,
    MIN_STABILITY,
    Granularity,
    KCurve,
    KSelection,
    select_k,
)
from embedlab.cluster._sharded import SHARDED_METHODS, ShardedClusters, cluster_shards, nearest_centers
from embedlab.cluster._stability import STABLE_JACCARD, ClusterStability, cluster_stability
from embedlab.cluster._stream import StreamedClusters, kmeans_stream
from embedlab.cluster.metrics import (
    CalibrationReport,
    ExternalScores,
    InternalScores,
    SizeDistribution,
    calibration_error,
    external_scores,
    hungarian_accuracy,
    internal_scores,
    match_clusters,
    size_distribution,
)
from embedlab.cluster.naming import closest_members, ctfidf_keywords, medoids

__all__ = [
    "CRITERIA",
    "DEFAULT_K_VALUES",
    "FLAT_SILHOUETTE",
    "METHODS",
    "MIN_STABILITY",
    "NAMINGS",
    "SHARDED_METHODS",
    "STABLE_JACCARD",
    "CalibrationReport",
    "ClusterMetric",
    "ClusterReport",
    "ClusterStability",
    "ExternalScores",
    "GaussianMixtureClusterer",
    "Granularity",
    "HDBSCANClusterer",
    "HierarchicalKMeans",
    "InternalScores",
    "KCurve",
    "KMeans",
    "KMeansLevel",
    "KMedoids",
    "KSelection",
    "LeidenClusterer",
    "MiniBatchKMeans",
    "ShardedClusters",
    "SizeDistribution",
    "StreamedClusters",
    "WardClusterer",
    "calibration_error",
    "closest_members",
    "cluster_shards",
    "cluster_stability",
    "clustering_memory",
    "ctfidf_keywords",
    "external_scores",
    "find_clusters",
    "gmm_bic_curve",
    "hungarian_accuracy",
    "internal_scores",
    "kmeans_stream",
    "match_clusters",
    "medoids",
    "nearest_centers",
    "reduce_dimensions",
    "select_k",
    "size_distribution",
]
