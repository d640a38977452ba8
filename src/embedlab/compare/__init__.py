"""Compare: how alike two embedding spaces of the same items are -- similarity scores (CKA, mutual kNN, CKNNA,
SVCCA, Procrustes, retrieval overlap, similarity rank correlation) with a permutation null and a per-cluster
breakdown, relative representations and zero-shot stitching, and unit matching between dimensions."""

from embedlab.compare._compare import ClusterAgreement, Comparison, ScoreResult, compare_spaces
from embedlab.compare._relative import (
    AnchorMethod,
    StitchingResult,
    choose_anchors,
    relative_transform,
    zero_shot_stitching,
)
from embedlab.compare._scores import (
    cknna,
    linear_cka,
    mutual_knn_alignment,
    procrustes_distance,
    rbf_cka,
    retrieval_overlap,
    similarity_rank_correlation,
    svcca,
)
from embedlab.compare._units import SparseUnitRegression, UnitMatching, match_units, sparse_unit_regression

__all__ = [
    "AnchorMethod",
    "ClusterAgreement",
    "Comparison",
    "ScoreResult",
    "SparseUnitRegression",
    "StitchingResult",
    "UnitMatching",
    "choose_anchors",
    "cknna",
    "compare_spaces",
    "linear_cka",
    "match_units",
    "mutual_knn_alignment",
    "procrustes_distance",
    "rbf_cka",
    "relative_transform",
    "retrieval_overlap",
    "similarity_rank_correlation",
    "sparse_unit_regression",
    "svcca",
    "zero_shot_stitching",
]
