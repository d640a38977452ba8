"""Tuning an index to a target recall: a small grid of build configurations started from the data's intrinsic
dimension, a sweep of each one's search-time effort on tuning queries against exact ground truth, and the
fastest configuration whose lower prediction bound on recall@k meets the target.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from embedlab._progress import ProgressReporter
from embedlab.compress import Codec, CodecParams, CodecSearcher
from embedlab.exceptions import ConfigurationError
from embedlab.io.validation import Rows
from embedlab.neighbors import (
    BaseSearcher,
    FaissSearcher,
    HNSWParams,
    IVFParams,
    IVFPQParams,
    KnnResult,
    SearchParams,
    rerank,
)
from embedlab.search._card import OperatingPoint, per_query_recall, prediction_bound

__all__ = ["Built", "Candidate", "Measured", "build", "candidates", "estimated_bytes", "measure", "sweep"]

logger = logging.getLogger(__name__)

#: HNSW beam widths tried, in order (those below k are skipped).
EF_SEARCH = tuple(sorted({round(10 * 1.2**i) for i in range(36)}))  # 10 to about 6,000, steps of 20%
#: IVF lists scanned per query, in order (up to nlist), steps of at most 25% beyond 4.
NPROBE = tuple(sorted({1, 2, 3} | {round(4 * 1.25**i) for i in range(30)}))
#: Candidates re-ranked per neighbour by IVF-PQ and codec indexes (None: a codec's own scores).
RERANK = (None, 2, 5, 10, 20, 50, 100)
#: No setting may do more work than this fraction of an exact scan: beam width and re-ranked candidates at most
#: this share of the rows, lists scanned at most this share of the lists (beyond it, exact search is the index).
_MAX_EFFORT = 0.25
#: Timed runs of each measured setting (the fastest counts).
_TIMED_RUNS = 3
#: Bytes of the graph per HNSW link (int32) and per node (level, offsets).
_LINK_BYTES, _NODE_BYTES = 4, 16


@dataclass(frozen=True)
class Candidate:
    """A build configuration: faiss index parameters, or a codec spec scanned in full."""

    params: SearchParams
    codec: str | None = None


@dataclass
class Built:
    """A built configuration, searchable with any of its search-time parameters."""

    candidate: Candidate
    searcher: FaissSearcher | CodecSearcher
    build_s: float
    memory_bytes: int
    disk_bytes: int


def _hnsw_degree(intrinsic_dimension: float) -> int:
    """HNSW degree for a set of this intrinsic dimension: more links where the neighbourhood graph is harder
    to navigate (Elliott & Clark 2024 find recall at fixed parameters falling as intrinsic dimension grows)."""
    if intrinsic_dimension < 10:
        return 16
    return 32 if intrinsic_dimension < 25 else 48


def estimated_bytes(params: SearchParams, n: int, d: int) -> int:
    """Bytes a faiss index of ``n`` rows of dimension ``d`` holds in memory (codes, graph, lists, centroids)."""
    if isinstance(params, HNSWParams):
        code = d if params.storage == "sq8" else 4 * d
        links = 2 * params.M + params.M / max(params.M - 1, 1)  # the bottom layer, then ~1/M of nodes per layer
        return int(n * (code + links * _LINK_BYTES + _NODE_BYTES))
    if isinstance(params, IVFPQParams):
        resolved = params.resolve(n, 1, d)
        return int(n * (resolved.m + 8) + 4 * d * (resolved.nlist + 256))
    if isinstance(params, IVFParams):
        resolved = params.resolve(n, 1, d)
        code = d if params.storage == "sq8" else 4 * d
        return int(n * (code + 8) + 4 * d * resolved.nlist)
    raise ConfigurationError(f"no memory estimate for {params.method!r}.")


def candidates(
    method: str,
    n: int,
    d: int,
    intrinsic_dimension: float,
    *,
    memory_budget: int | None,
    codec: str | None,
    target: float | None = None,
) -> list[Candidate]:
    """The build configurations to try for ``method``, most promising first, those over the budget left out.

    HNSW starts from the degree the intrinsic dimension suggests; below a target of 0.95 a sparser graph is
    tried next (the lowest beam width already overshoots low targets on a rich graph), from 0.95 on the 8-bit
    graph (cheaper distances, exact re-ranking) and then a denser one.

    Raises
    ------
    ConfigurationError
        When no configuration fits ``memory_budget`` (naming the smallest).
    """
    if codec is not None:
        return [Candidate(CodecParams(spec=codec), codec)]
    M = _hnsw_degree(intrinsic_dimension)
    smaller, larger = max(8, M // 2), min(64, M * 3 // 2)
    grid: dict[str, list[SearchParams]] = {
        "hnsw": [
            HNSWParams(M=M, ef_construction=200, storage="flat"),
            HNSWParams(M=M, ef_construction=200, storage="sq8"),
            HNSWParams(M=larger, ef_construction=200, storage="flat"),
            HNSWParams(M=smaller, ef_construction=200, storage="flat"),
        ],
        "ivf": [IVFParams(storage="flat"), IVFParams(storage="sq8")],
        "ivfpq": [IVFPQParams(m=m) for m in _pq_sizes(d)],
    }
    if target is not None and target < 0.95:
        grid["hnsw"] = [grid["hnsw"][0], grid["hnsw"][3], grid["hnsw"][1], grid["hnsw"][2]]
    if method == "auto":
        options = [*grid["hnsw"], *grid["ivf"], *grid["ivfpq"]]
    else:
        options = grid[method]
    if memory_budget is None:
        return [Candidate(p) for p in (grid["hnsw"] if method == "auto" else options)]
    fitting = [Candidate(p) for p in options if estimated_bytes(p, n, d) <= memory_budget]
    if not fitting:
        smallest = min(options, key=lambda p: estimated_bytes(p, n, d))
        raise ConfigurationError(
            f"no {method} index of {n:,} rows of dimension {d} fits a memory budget of {memory_budget:,} bytes; the "
            f"smallest, {smallest.to_dict()}, needs about {estimated_bytes(smallest, n, d):,}. Raise --memory-budget, "
            "or try --method ivfpq or a --codec."
        )
    if method == "auto":  # the fastest kind that fits: HNSW, else IVF, else IVF-PQ
        kind = fitting[0].params.method
        fitting = [c for c in fitting if c.params.method == kind]
    return fitting


def _pq_sizes(d: int) -> list[int]:
    """Sub-quantizer counts (bytes per vector) dividing ``d``, from d/2 down to d/16."""
    sizes = []
    for per in (2, 4, 8, 16):
        if d % per == 0 and d // per >= 1:
            sizes.append(d // per)
    return sizes or [1]


def build(candidate: Candidate, base: Rows, *, random_state: np.random.Generator, progress: ProgressReporter) -> Built:
    """Build one configuration on the prepared rows ``base`` and measure its bytes."""
    started = time.perf_counter()
    if candidate.codec is not None:
        codec = Codec(candidate.codec, metric=base.metric, random_state=int(random_state.integers(2**31 - 1)))
        codec.fit(base)
        searcher: FaissSearcher | CodecSearcher = CodecSearcher(codec, codec.encode(base), vectors=base.vectors)
        memory = int(searcher.codes.nbytes)
        disk = int(base.vectors.nbytes)
    else:
        searcher = FaissSearcher.build(
            base, candidate.params, base.metric, random_state=random_state, progress=progress
        )
        memory = searcher.index_bytes
        disk = int(base.vectors.nbytes) if searcher.params.rerank > 1 or base.metric == "l2" else 0
    return Built(candidate, searcher, time.perf_counter() - started, memory, disk)


def search_time_groups(built: Built, k: int) -> Iterator[list[SearchParams]]:
    """The search-time settings of a built configuration, in groups each ordered from least to most effort.

    HNSW sweeps ``ef_search``, IVF ``nprobe``, IVF-PQ ``nprobe`` once per re-ranking factor, a codec its
    re-ranking factor; none beyond a quarter of an exact scan's work.
    """
    params = built.searcher.params
    n = built.searcher.n_searchable
    most = max(k, int(_MAX_EFFORT * n))
    if isinstance(params, HNSWParams):
        yield [replace(params, ef_search=ef) for ef in EF_SEARCH if k <= ef <= most]
    elif isinstance(params, IVFPQParams | IVFParams):
        lists = max(1, int(_MAX_EFFORT * params.resolve(n, k, built.searcher.dim).nlist))
        probes = [p for p in NPROBE if p <= lists] + ([lists] if lists not in NPROBE else [])
        if isinstance(params, IVFPQParams):
            for factor in RERANK[1:]:
                if factor * k <= most:
                    yield [replace(params, nprobe=p, rerank_factor=factor) for p in probes]
        else:
            yield [replace(params, nprobe=p) for p in probes]
    elif isinstance(params, CodecParams):
        yield [replace(params, rescore=f) for f in RERANK if f is None or f * k <= most]


@dataclass(frozen=True)
class Measured:
    """A configuration measured on the tuning queries."""

    params: SearchParams
    point: OperatingPoint
    per_query: np.ndarray


def measure(
    searcher: BaseSearcher, base: Rows, queries: Rows, truth: KnnResult, k: int, target: float | None
) -> Measured:
    """Recall@k (exact distances of what was found, ties counted correct) and queries per second.

    The queries are searched ``_TIMED_RUNS`` times in one batch and the fastest run counts: a short batch on two
    threads varies by a third from run to run, which would otherwise decide between configurations.
    """
    seconds = []
    for _ in range(_TIMED_RUNS):
        started = time.perf_counter()
        found = searcher.search(queries, k)
        seconds.append(time.perf_counter() - started)
    qps = queries.n / max(min(seconds), 1e-9)
    distances = rerank(base.vectors, queries.vectors, found.indices, base.metric, k)[0]
    per_query = per_query_recall(distances, truth.distances)
    bound = prediction_bound(per_query)
    meets = target is not None and bound >= target
    point = OperatingPoint(found.params.to_dict(), float(per_query.mean()), bound, qps, meets)
    return Measured(found.params, point, per_query)


def sweep(built: Built, base: Rows, queries: Rows, truth: KnnResult, k: int, target: float | None) -> list[Measured]:
    """Each group of search-time settings in order of effort, until a setting meets the target (to the end of
    the group without a target, or when recall stops growing)."""
    measured: list[Measured] = []
    for group in search_time_groups(built, k):
        for params in group:
            point = measure(built.searcher.configure(params), base, queries, truth, k, target)
            measured.append(point)
            logger.info(
                "tuning %s: recall@%d %.4f (bound %.4f), %.0f qps",
                params,
                k,
                point.point.recall,
                point.point.recall_bound,
                point.point.qps,
            )
            if point.point.meets_target or point.point.recall >= 1.0:
                break
    return measured
