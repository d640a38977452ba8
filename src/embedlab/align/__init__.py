"""Align: map one embedding model's space onto another's, so a model upgrade need not re-embed the corpus.

This sub-package owns the adapters (identity, Procrustes, low-rank, shared subspace, ridge, residual MLP)
between an OLD and a NEW model's embeddings of the same items, their JSON serialisation, applying one to a
whole set or store (:func:`apply_adapter`), the choice of adapter by cross-validation (:func:`fit_adapter`),
and the retrieval evaluation of what an adapter recovers of full re-embedding, with the backward-compatibility
criteria of BCT (:func:`evaluate_alignment`).
"""

from embedlab.align._adapters import (
    ADAPTER_TYPES,
    Adapter,
    IdentityAdapter,
    LowRankAdapter,
    MLPAdapter,
    ProcrustesAdapter,
    RidgeAdapter,
    SubspaceAdapter,
    adapter_from_dict,
    load_adapter,
)
from embedlab.align._apply import AdapterApplication, apply_adapter
from embedlab.align._fit import (
    DEFAULT_MIN_RECALL,
    Alignment,
    AlignmentEvaluation,
    CVScore,
    Direction,
    default_methods,
    evaluate_alignment,
    fit_adapter,
)

__all__ = [
    "ADAPTER_TYPES",
    "DEFAULT_MIN_RECALL",
    "Adapter",
    "AdapterApplication",
    "Alignment",
    "AlignmentEvaluation",
    "CVScore",
    "Direction",
    "IdentityAdapter",
    "LowRankAdapter",
    "MLPAdapter",
    "ProcrustesAdapter",
    "RidgeAdapter",
    "SubspaceAdapter",
    "adapter_from_dict",
    "apply_adapter",
    "default_methods",
    "evaluate_alignment",
    "fit_adapter",
    "load_adapter",
]
