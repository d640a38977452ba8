"""Tuning an index to a target recall: a small grid of build configurations started from the data's intrinsic
dimension, a sweep of each one's search-time effort on tuning queries against exact ground truth, and the
configuration of least work per query (multiply-adds, counted) whose lower prediction bound on recall@k meets the
target, confirmed on validation queries (its effort stepped up until their bound meets the target too).

Work is counted rather than timed so that the same data and seed give the same index on every run: a short
batch of queries on two threads varies by a third in time from run to run. Speed is still measured and reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import faiss
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

__all__ = [
    "Built",
    "Candidate",
    "Measured",
    "build",
    "build_cost",
    "candidates",
    "confirm",
    "estimated_bytes",
    "measure",
    "multiply_adds",
    "sweep",
    "variants",
]

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
    graph_s: float  # the part of build_s spent on the graph, lists or codec (not on re-encoding)
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


def _graphs(M: int, target: float | None) -> list[tuple[int, int]]:
    """HNSW graphs ``(M, ef_construction)`` to try for ``target``, from the degree ``M`` the intrinsic dimension
    suggests, most promising first: below 0.95 a sparser graph next (the lowest beam width already overshoots
    low targets on a rich graph), from 0.95 a denser one, at 0.99 and above also a longer construction beam."""
    smaller, larger = max(8, M // 2), min(64, M * 3 // 2)
    if target is not None and target < 0.95:
        return [(M, 200), (smaller, 200)]
    if target is not None and target >= 0.99:
        return [(M, 200), (larger, 200), (M, 400)]
    return [(M, 200), (larger, 200), (smaller, 200)]


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

    An HNSW graph is built on the full vectors and also searched on 8-bit codes (:func:`variants`); only where
    the full vectors do not fit the budget is it built on the codes.

    Raises
    ------
    ConfigurationError
        When no configuration fits ``memory_budget`` (naming the smallest).
    """
    if codec is not None:
        return [Candidate(CodecParams(spec=codec), codec)]

    def fits(params: SearchParams) -> bool:
        return memory_budget is None or estimated_bytes(params, n, d) <= memory_budget

    graphs = []
    for M, ef_construction in _graphs(_hnsw_degree(intrinsic_dimension), target):
        flat, sq8 = (HNSWParams(M=M, ef_construction=ef_construction, storage=s) for s in ("flat", "sq8"))
        graphs += [flat] if fits(flat) else [sq8]
    grid: dict[str, list[SearchParams]] = {
        "hnsw": graphs,
        "ivf": [IVFParams(storage="flat"), IVFParams(storage="sq8")],
        "ivfpq": [IVFPQParams(m=m) for m in _pq_sizes(d)],
    }
    options = [*grid["hnsw"], *grid["ivf"], *grid["ivfpq"]] if method == "auto" else grid[method]
    fitting = [Candidate(p) for p in options if fits(p)]
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


def build_cost(candidate: Candidate) -> float:
    """The build of ``candidate`` in units comparable between candidates of one kind (a model, not a clock).

    HNSW insertion searches a beam of ``ef_construction`` and prunes ``M`` links per node (Malkov & Yashunin
    2018): faiss's build time on Fashion-MNIST and WordNet MiniLM grows linearly with ``ef_construction``, as
    about ``M^0.3``, and by 8-bit codes falls to about 0.6 (``benchmarks/bench_index.py``). Builds of other
    kinds count one unit each.
    """
    params = candidate.params
    if not isinstance(params, HNSWParams):
        return 1.0
    return params.ef_construction / 200 * (params.M / 16) ** 0.3 * {"flat": 1.0, "sq8": 0.6}[params.storage]


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
    else:
        searcher = FaissSearcher.build(
            base, candidate.params, base.metric, random_state=random_state, progress=progress
        )
    seconds = time.perf_counter() - started
    return _built(candidate, searcher, seconds, seconds, base)


def _built(
    candidate: Candidate, searcher: FaissSearcher | CodecSearcher, build_s: float, graph_s: float, base: Rows
) -> Built:
    if isinstance(searcher, CodecSearcher):
        return Built(candidate, searcher, build_s, graph_s, int(searcher.codes.nbytes), int(base.vectors.nbytes))
    rereads = searcher.params.rerank > 1 or base.metric == "l2"
    disk = int(base.vectors.nbytes) if rereads else 0
    return Built(candidate, searcher, build_s, graph_s, searcher.index_bytes, disk)


def variants(built: Built, base: Rows, *, random_state: np.random.Generator) -> Iterator[Built]:
    """``built``, then for an HNSW graph on full vectors the same graph over 8-bit codes (a pass over the rows,
    not a second build), whose smaller distances let a wider beam through in the same time."""
    yield built
    params = built.candidate.params
    if isinstance(params, HNSWParams) and params.storage == "flat":
        started = time.perf_counter()
        searcher = built.searcher.recoded("sq8", random_state=random_state)
        recoding = time.perf_counter() - started
        yield _built(Candidate(searcher.params), searcher, built.graph_s + recoding, built.graph_s, base)


def search_time_groups(built: Built, k: int) -> Iterator[list[SearchParams]]:
    """The search-time settings of a built configuration, in groups each ordered from least to most effort.

    HNSW sweeps ``ef_search``, IVF ``nprobe``, IVF-PQ ``nprobe`` once per re-ranking factor, a codec its
    re-ranking factor; none beyond a quarter of an exact scan's work.
    """
    params = built.searcher.params
    n = built.searcher.n_searchable
    most = max(k, int(_MAX_EFFORT * n))
    if isinstance(params, HNSWParams):
        least = k * params.rerank  # the candidates fetched: a narrower beam is widened to it
        yield [replace(params, ef_search=ef) for ef in (least, *(e for e in EF_SEARCH if least < e <= most))]
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


def _reset_counters() -> None:
    faiss.cvar.hnsw_stats.reset()
    faiss.cvar.indexIVF_stats.reset()


def multiply_adds(searcher: BaseSearcher, n_queries: int, k: int) -> float:
    """Work per query of the search of ``n_queries`` just run on ``searcher`` (counters reset before it).

    Counted in multiply-adds of ``d``-dimensional distances: the distances faiss computed (its HNSW and IVF
    counters), the coarse quantizer's ``nlist`` centroids and, for IVF-PQ, its look-up tables (``2^nbits``
    centroids per probed list) and one add per sub-quantizer code; the candidates re-ranked on full vectors;
    for a codec index, one operation per code byte scanned. An 8-bit code costs what a float distance does:
    on WordNet MiniLM (d = 384) faiss's 8-bit HNSW distances took 0.85-1.04x the float ones.
    """
    d = searcher.dim
    params = searcher.resolved_params(k)
    if isinstance(searcher, CodecSearcher):
        rescore = params.rescore or 0
        return searcher.n_searchable * searcher.codec.bytes_per_vector + min(rescore * k, searcher.n_searchable) * d
    reranked = min(k * params.rerank, searcher.n_searchable) * d if params.rerank > 1 else 0
    if isinstance(params, HNSWParams):
        return faiss.cvar.hnsw_stats.ndis / n_queries * d + reranked
    scanned = faiss.cvar.indexIVF_stats.ndis / n_queries
    coarse = params.nlist * d
    if isinstance(params, IVFPQParams):
        return coarse + params.nprobe * 2**params.nbits * d + scanned * params.m + reranked
    return coarse + scanned * d + reranked


@dataclass(frozen=True)
class Measured:
    """A configuration measured on the tuning queries."""

    params: SearchParams
    point: OperatingPoint
    per_query: np.ndarray


def measure(
    searcher: BaseSearcher,
    base: Rows,
    queries: Rows,
    truth: KnnResult,
    k: int,
    target: float | None,
    *,
    runs: int = _TIMED_RUNS,
) -> Measured:
    """Recall@k (exact distances of what was found, ties counted correct), multiply-adds per query (counted) and
    queries per second (timed: the queries are searched ``runs`` times in one batch and the fastest run counts).
    """
    seconds = []
    for _ in range(runs):
        _reset_counters()
        started = time.perf_counter()
        found = searcher.search(queries, k)
        seconds.append(time.perf_counter() - started)
    qps = queries.n / max(min(seconds), 1e-9)
    distances = rerank(base.vectors, queries.vectors, found.indices, base.metric, k)[0]
    per_query = per_query_recall(distances, truth.distances)
    bound = prediction_bound(per_query)
    meets = target is not None and bound >= target
    work = multiply_adds(searcher, queries.n, k)
    point = OperatingPoint(found.params.to_dict(), float(per_query.mean()), bound, qps, meets, work)
    return Measured(found.params, point, per_query)


def _midpoint(low: SearchParams, high: SearchParams) -> SearchParams | None:
    """The setting halfway between two settings of a group in effort (its beam width or lists scanned), or
    None when no integer lies between them (or the group is a codec's re-ranking factors)."""
    if isinstance(low, CodecParams):
        return None
    name = _effort_name(low)
    a, b = getattr(low, name), getattr(high, name)
    return replace(low, **{name: (a + b) // 2}) if b - a > 1 else None


def sweep(built: Built, base: Rows, queries: Rows, truth: KnnResult, k: int, target: float | None) -> list[Measured]:
    """Each group of search-time settings in order of effort, until a setting meets the target (to the end of
    the group without a target, or at recall 1).

    Settings are timed once on the way; the gap between the last one short of the target and the first to meet
    it is bisected, and the setting kept is timed ``_TIMED_RUNS`` times.
    """
    searcher = built.searcher

    def point(params: SearchParams, runs: int = 1) -> Measured:
        measured = measure(searcher.configure(params), base, queries, truth, k, target, runs=runs)
        logger.info(
            "tuning %s: recall@%d %.4f (bound %.4f), %.0f multiply-adds a query, %.0f qps",
            params,
            k,
            measured.point.recall,
            measured.point.recall_bound,
            measured.point.multiply_adds,
            measured.point.qps,
        )
        return measured

    measured: list[Measured] = []
    for group in search_time_groups(built, k):
        short: Measured | None = None
        for params in group:
            reached = point(params)
            if not (reached.point.meets_target or reached.point.recall >= 1.0):
                measured.append(reached)
                short = reached
                continue
            while short is not None and target is not None:
                middle = _midpoint(short.params, reached.params)
                if middle is None:
                    break
                between = point(middle)
                if between.point.meets_target:
                    reached = between
                else:
                    measured.append(between)
                    short = between
            measured.append(point(reached.params, _TIMED_RUNS))
            break
    return measured


def _effort_name(params: SearchParams) -> str:
    """The search-time parameter a group of settings varies: beam width, lists scanned, or re-ranking."""
    return "ef_search" if isinstance(params, HNSWParams) else "rescore" if isinstance(params, CodecParams) else "nprobe"


def _effort(params: SearchParams) -> int:
    """A setting's search-time effort, comparable within its group."""
    return getattr(params, _effort_name(params)) or 0


def confirm(
    built: Built, base: Rows, queries: Rows, truth: KnnResult, k: int, target: float | None, chosen: SearchParams
) -> Measured:
    """The chosen setting measured on validation queries, its effort stepped up through its group until their
    own prediction bound meets the target too (or the group ends).

    The tuning queries chose the setting, so its tuning bound is optimistic by the selection; a second,
    independent set of queries confirming it makes a shortfall on fresh queries about as rare as the bound says.
    """
    searcher = built.searcher
    measured = measure(searcher.configure(chosen), base, queries, truth, k, target)
    if target is None or measured.point.meets_target:
        return measured
    name = _effort_name(chosen)
    group = next(g for g in search_time_groups(built, k) if replace(g[0], **{name: getattr(chosen, name)}) == chosen)
    for params in (p for p in group if _effort(p) > _effort(chosen)):
        logger.info("%s short on the validation queries (bound %.4f)", measured.params, measured.point.recall_bound)
        measured = measure(searcher.configure(params), base, queries, truth, k, target)
        if measured.point.meets_target or measured.point.recall >= 1.0:
            break
    return measured
