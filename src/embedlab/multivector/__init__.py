"""Multi-vector (late-interaction) collections: exact Chamfer / MaxSim scoring, MUVERA fixed dimensional
encodings that turn each row into one vector for a single-vector index, token pooling, the two-stage search
(candidates, then MaxSim rerank) and a planner that sizes it for a target recall."""

from embedlab.io.multivector import MultiVectorSet, iter_multivector_batches, load_multivector
from embedlab.multivector._fde import MAX_FDE_DIM, MuveraEncoder, fde_dim
from embedlab.multivector._index import MULTIVECTOR_MANIFEST, MultiVectorIndex, build_multivector_index
from embedlab.multivector._maxsim import maxsim_rerank, maxsim_scores, maxsim_search
from embedlab.multivector._plan import DEFAULT_ENCODINGS, MultiVectorPlan, MultiVectorPlanPoint, plan_multivector
from embedlab.multivector._pooling import POOLING_METHODS, pool_tokens
from embedlab.multivector._search import MultiVectorSearcher, encode_rows, token_candidates

__all__ = [
    "DEFAULT_ENCODINGS",
    "MAX_FDE_DIM",
    "MULTIVECTOR_MANIFEST",
    "POOLING_METHODS",
    "MultiVectorIndex",
    "MultiVectorPlan",
    "MultiVectorPlanPoint",
    "MultiVectorSearcher",
    "MultiVectorSet",
    "MuveraEncoder",
    "build_multivector_index",
    "encode_rows",
    "fde_dim",
    "iter_multivector_batches",
    "load_multivector",
    "maxsim_rerank",
    "maxsim_scores",
    "maxsim_search",
    "plan_multivector",
    "pool_tokens",
    "token_candidates",
]
