"""Deep clustering heads trained with torch on CPU: DEC, IDEC and N2D on raw vectors, SCAN, TEMI, CPP, TELL, ClAM
and SwAV on frozen embeddings, and optimal-transport pseudo-labels (Sinkhorn, P2OT, SP2OT). torch (and umap-learn
for N2D) are imported only when fitting: ``pip install "embedlab[deep]"``."""

from embedlab.cluster.deep.clam import ClAM
from embedlab.cluster.deep.cpp import CPP
from embedlab.cluster.deep.dec import DEC, IDEC
from embedlab.cluster.deep.n2d import N2D
from embedlab.cluster.deep.scan import SCAN
from embedlab.cluster.deep.sinkhorn import knn_affinity, partial_sinkhorn, progressive_mass, semantic_sinkhorn, sinkhorn
from embedlab.cluster.deep.swav import SwAV
from embedlab.cluster.deep.tell import TELL
from embedlab.cluster.deep.temi import TEMI

__all__ = [
    "CPP",
    "DEC",
    "IDEC",
    "N2D",
    "SCAN",
    "TELL",
    "TEMI",
    "ClAM",
    "SwAV",
    "knn_affinity",
    "partial_sinkhorn",
    "progressive_mass",
    "semantic_sinkhorn",
    "sinkhorn",
]
