"""Geometry: what is in an embedding set — intrinsic dimension, spectrum, anisotropy, hubness, duplicates,
outliers and label structure, each estimate with its sample size and, where it has one, its interval."""

from embedlab.geometry._estimate import IDEstimate
from embedlab.geometry.anisotropy import (
    Anisotropy,
    alignment,
    anisotropy,
    isoscore,
    mean_pairwise_cosine,
    partition_isotropy,
    spectral_entropy,
    uniformity,
)
from embedlab.geometry.duplicates import (
    ExactDuplicates,
    NearDuplicates,
    Outliers,
    exact_duplicates,
    knn_outliers,
    near_duplicates,
    similar_pairs,
)
from embedlab.geometry.hubness import HubnessReport, hubness, k_occurrence
from embedlab.geometry.inspect import GeometryReport, LIDSummary, SearchRisk, inspect_geometry, inspect_memory
from embedlab.geometry.intrinsic_dim import (
    gride,
    gride_curve,
    local_id,
    mle_id,
    mle_shards,
    pca_dimensions,
    twonn,
    twonn_decimation,
    twonn_shards,
)
from embedlab.geometry.labels import LabelReport, label_structure
from embedlab.geometry.loki import LabelMetric, label_positions, loki_predict
from embedlab.geometry.nullspace import AttributeRemoval, NullspaceProjection, remove_attribute
from embedlab.geometry.ood import NecoScore, OodScores, score_ood
from embedlab.geometry.spectrum import Spectrum, covariance_spectrum, effective_rank, power_law_slope

__all__ = [
    "Anisotropy",
    "AttributeRemoval",
    "ExactDuplicates",
    "GeometryReport",
    "HubnessReport",
    "IDEstimate",
    "LIDSummary",
    "LabelMetric",
    "LabelReport",
    "NearDuplicates",
    "NecoScore",
    "NullspaceProjection",
    "OodScores",
    "Outliers",
    "SearchRisk",
    "Spectrum",
    "alignment",
    "anisotropy",
    "covariance_spectrum",
    "effective_rank",
    "exact_duplicates",
    "gride",
    "gride_curve",
    "hubness",
    "inspect_geometry",
    "inspect_memory",
    "isoscore",
    "k_occurrence",
    "knn_outliers",
    "label_positions",
    "label_structure",
    "local_id",
    "loki_predict",
    "mean_pairwise_cosine",
    "mle_id",
    "mle_shards",
    "near_duplicates",
    "partition_isotropy",
    "pca_dimensions",
    "power_law_slope",
    "remove_attribute",
    "score_ood",
    "similar_pairs",
    "spectral_entropy",
    "twonn",
    "twonn_decimation",
    "twonn_shards",
    "uniformity",
]
