"""Search: indexes of an embedding set tuned to a target recall, with an operating-point card, saved and served.

Every index is a :class:`~embedlab.neighbors.Searcher`; ``open_searcher`` opens an index or a compressed
collection from its directory alike.
"""

from embedlab.search._card import OperatingCard, OperatingPoint, Stratum
from embedlab.search._index import METHODS, Index, build_index
from embedlab.search._open import open_searcher

__all__ = ["METHODS", "Index", "OperatingCard", "OperatingPoint", "Stratum", "build_index", "open_searcher"]
