"""Search parameters as frozen values: one class per kind of index, held by every ``KnnResult`` it produced.

Unset fields (``None``) are resolved from the data and ``k`` when an index is built or searched
(:meth:`HNSWParams.resolve`, :meth:`IVFParams.resolve`); a result always carries the resolved values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, Literal

from embedlab._checks import check_choice, check_int
from embedlab.exceptions import ConfigurationError

__all__ = ["ExactParams", "HNSWParams", "IVFPQParams", "IVFParams", "SearchParams", "Storage"]

Storage = Literal["sq8", "flat"]
_STORAGES = ("sq8", "flat")
#: faiss takes search and build parameters as C ints: a larger value is refused here, not overflowed there.
_C_INT = 2**31 - 1


@dataclass(frozen=True)
class SearchParams:
    """Base of every parameter set: ``method`` names the search, ``to_dict`` gives a JSON-ready document."""

    method: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields, with ``method`` first."""
        return {"method": self.method, **asdict(self)}

    @property
    def rerank(self) -> int:
        """Candidates fetched per wanted neighbour and re-ranked by exact distance (1: none beyond ``k``)."""
        return 1

    def resolve(self, n: int, k: int, d: int) -> SearchParams:
        """The parameters with every unset field filled in for ``n`` rows of dimension ``d`` and ``k``."""
        del n, k, d
        return self


@dataclass(frozen=True)
class ExactParams(SearchParams):
    """Brute-force search: every row scored exactly (faiss's BLAS kernels)."""

    method: ClassVar[str] = "exact"


@dataclass(frozen=True)
class HNSWParams(SearchParams):
    """A faiss HNSW graph (Malkov & Yashunin 2018, "Efficient and robust approximate nearest neighbor search
    using Hierarchical Navigable Small World graphs", TPAMI).

    Parameters
    ----------
    M : int, default=32
        Graph degree (links per node on the upper layers; twice that on the bottom one).
    ef_construction : int, default=80
        Beam width while inserting.
    ef_search : int, optional
        Beam width while searching; by default ``max(4 k, 32)``; never below the ``k x rerank`` candidates
        fetched.
    storage : {"sq8", "flat"}, default="sq8"
        ``"sq8"`` keeps one byte per dimension and re-ranks twice the needed candidates by their exact
        distances; ``"flat"`` keeps float32 copies.
    """

    method: ClassVar[str] = "hnsw"
    M: int = 32
    ef_construction: int = 80
    ef_search: int | None = None
    storage: Storage = "sq8"

    def __post_init__(self) -> None:
        check_int(self.M, "M", 2, maximum=_C_INT)
        check_int(self.ef_construction, "ef_construction", maximum=_C_INT)
        if self.ef_search is not None:
            check_int(self.ef_search, "ef_search", maximum=_C_INT)
        check_choice(self.storage, "storage", _STORAGES)

    @property
    def rerank(self) -> int:
        return 2 if self.storage == "sq8" else 1

    def resolve(self, n: int, k: int, d: int) -> HNSWParams:
        """``ef_search`` filled in for ``k`` neighbours (at least the ``k x rerank`` candidates fetched)."""
        del n, d
        beam = max(4 * k, 32) if self.ef_search is None else self.ef_search
        return replace(self, ef_search=max(beam, k * self.rerank))


@dataclass(frozen=True)
class IVFParams(SearchParams):
    """A faiss inverted file: k-means lists, ``nprobe`` of them scanned per query (Jégou et al. 2011).

    Parameters
    ----------
    nlist : int, optional
        Lists; by default ``4 sqrt(n)``, and at least 39 rows per list.
    nprobe : int, optional
        Lists scanned per query; by default ``max(8, nlist / 16)``.
    storage : {"sq8", "flat"}, default="sq8"
        As for :class:`HNSWParams`.
    """

    method: ClassVar[str] = "ivf"
    nlist: int | None = None
    nprobe: int | None = None
    storage: Storage = "sq8"

    def __post_init__(self) -> None:
        for name in ("nlist", "nprobe"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, maximum=_C_INT)
        check_choice(self.storage, "storage", _STORAGES)

    @property
    def rerank(self) -> int:
        return 2 if self.storage == "sq8" else 1

    def resolve(self, n: int, k: int, d: int) -> IVFParams:
        """``nlist`` for ``n`` rows and ``nprobe`` filled in (never more lists than rows)."""
        del k, d
        lists = self.nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        check_int(lists, "nlist", maximum=n, why="the rows to index")
        return replace(self, nlist=lists, nprobe=min(lists, self.nprobe or max(8, lists // 16)))


@dataclass(frozen=True)
class IVFPQParams(SearchParams):
    """An inverted file of product-quantized residuals (Jégou et al. 2011, "Product quantization for nearest
    neighbor search", TPAMI), whose ``rerank_factor x k`` best candidates are re-ranked from the full vectors.

    Parameters
    ----------
    nlist, nprobe : int, optional
        As for :class:`IVFParams`.
    m : int, optional
        Sub-quantizers; by default ``d / 4`` lowered to a divisor of ``d``.
    nbits : int, optional
        Bits per sub-quantizer code: 8, or fewer where there are too few rows to train 256 centroids each
        (39 training rows per centroid, faiss's minimum).
    rerank_factor : int, default=10
        Candidates per wanted neighbour re-ranked exactly (the full vectors are kept, possibly memory-mapped).
    """

    method: ClassVar[str] = "ivfpq"
    nlist: int | None = None
    nprobe: int | None = None
    m: int | None = None
    nbits: int | None = None
    rerank_factor: int = 10

    def __post_init__(self) -> None:
        if self.nbits is not None:
            check_int(self.nbits, "nbits", 1, maximum=8)
        for name in ("nlist", "nprobe", "m"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, maximum=_C_INT)
        check_int(self.rerank_factor, "rerank_factor", maximum=_C_INT)

    @property
    def rerank(self) -> int:
        return self.rerank_factor

    def resolve(self, n: int, k: int, d: int) -> IVFPQParams:
        """``nlist``, ``nprobe`` as for :class:`IVFParams`, ``m`` for dimension ``d`` and ``nbits`` for ``n`` rows."""
        lists = IVFParams(nlist=self.nlist, nprobe=self.nprobe).resolve(n, k, d)
        m = self.m
        if m is None:
            m = max(1, d // 4)
            while d % m:
                m -= 1
        elif d % m:
            raise ConfigurationError(f"m must divide the dimension {d}, got {m}.")
        nbits = self.nbits or int(min(8, max(1, math.floor(math.log2(max(n, 2) / 39)))))
        return replace(self, nlist=lists.nlist, nprobe=lists.nprobe, m=m, nbits=nbits)
