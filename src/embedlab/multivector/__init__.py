"""Multi-vector (late-interaction) collections: exact Chamfer / MaxSim scoring, MUVERA fixed dimensional
encodings that turn each row into one vector for a single-vector index, and token pooling."""

from embedlab.io.multivector import MultiVectorSet, iter_multivector_batches, load_multivector
from embedlab.multivector._fde import MAX_FDE_DIM, MuveraEncoder, fde_dim
from embedlab.multivector._maxsim import maxsim_rerank, maxsim_scores, maxsim_search
from embedlab.multivector._pooling import POOLING_METHODS, pool_tokens

__all__ = [
    "MAX_FDE_DIM",
    "POOLING_METHODS",
    "MultiVectorSet",
    "MuveraEncoder",
    "fde_dim",
    "iter_multivector_batches",
    "load_multivector",
    "maxsim_rerank",
    "maxsim_scores",
    "maxsim_search",
    "pool_tokens",
]
