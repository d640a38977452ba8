"""``plan_compression``: measure recall@k, bytes, encode time and query latency of many codecs on the user's
own data and queries, and recommend the cheapest one that meets a recall target or a byte budget."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import faiss
import numpy as np

from embedlab._checks import check_choice, check_int, check_positive
from embedlab._json import json_safe, split_timings
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.compress._codec import CODEC_METRICS, Codec, CompressMetric
from embedlab.compress._search import CodecSearcher
from embedlab.compress._spec import parse_spec
from embedlab.exceptions import ConfigurationError, EmbedlabError
from embedlab.io import EmbeddingSet
from embedlab.io.validation import Rows, prepare
from embedlab.neighbors import ExactSearcher, recall_at_k, rerank

__all__ = ["CompressionPlan", "PlanPoint", "default_codecs", "plan_compression"]

logger = logging.getLogger(__name__)

#: Rescoring multipliers tried, up to ``rescore_max``.
RESCORE_FACTORS = (2, 5, 10, 20, 50, 100)


def default_codecs(dim: int, *, query_aware: bool = False) -> list[str]:
    """The codec specs a plan sweeps for rows of dimension ``dim`` (those that fit it).

    From 4 bytes per dimension down to about one bit: float, scalar int8/int4 with and without PCA or
    LeanVec reduction, binary (sign and ITQ), PQ / OPQ at 1 and 2 dimensions per byte, 4-bit fast-scan PQ,
    and RaBitQ at 1, 2 and 4 bits. ``query_aware`` adds LeanVec-OOD, which needs sample queries.
    """
    specs = ["float32", "float16", "int8", "int4", "binary", "binary:itq", "rabitq:1", "rabitq:2", "rabitq:4"]
    for fraction in (2, 4):
        if dim % fraction == 0 and dim // fraction >= 8:
            reduced = dim // fraction
            specs += [f"pca:{reduced}+int8", f"pca:{reduced}+int4", f"leanvec:{reduced}+int8"]
            if query_aware:
                specs.append(f"leanvec-ood:{reduced}+int8")
    for per_byte in (8, 4):
        if dim % per_byte == 0:
            specs += [f"pq:{dim // per_byte}", f"opq:{dim // per_byte}"]
    for per_byte in (4, 2):
        if dim % per_byte == 0:
            specs.append(f"pqfs:{dim // per_byte}")
    return specs


@dataclass(frozen=True)
class PlanPoint:
    """One measured configuration: a codec, optionally with rescoring of ``rescore x k`` candidates.

    ``bytes_per_vector`` counts the codes held in memory; rescoring also reads the full vectors of the
    shortlisted rows from disk. ``query_ms`` is the mean time per query of a batched search (the shortlist
    search at the largest multiplier plus the rescoring, for rescoring points). ``encode_s`` is the time to fit
    the codec and encode every row. Both are wall-clock measurements: :meth:`to_dict` leaves them out (the plan
    puts them in its ``timings`` block) and nothing is chosen by them, so the same data and seed give the same
    plan.
    """

    codec: str
    bytes_per_vector: int
    recall_at_k: float
    rescore: int | None
    query_ms: float
    encode_s: float
    on_frontier: bool = False

    def to_dict(self) -> dict[str, Any]:
        """What was computed; the measured ``query_ms`` and ``encode_s`` are in :meth:`timings`."""
        return split_timings([json_safe(asdict(self))], *_TIMED)[0][0]

    def timings(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in _TIMED}


#: The wall-clock fields of a :class:`PlanPoint`.
_TIMED = ("query_ms", "encode_s")


@dataclass(frozen=True)
class CompressionPlan:
    """The measured points, their Pareto frontiers (fewest bytes for each recall, codes alone and with
    rescoring), and the recommendation.

    ``anchors`` are reference configurations of faiss measured on the same split (codes alone, never on a
    frontier and never recommended), for comparison. ``recommended`` is the point that meets the constraint
    at the fewest bytes (``target_recall``), or with the highest recall (``budget_bytes``), or None without a
    constraint. ``failures`` maps codec specs that
    could not be fitted on this data to the reason. ``evaluation_rows`` are the positions of the evaluation
    queries (in the given queries, or in the data when held out) and ``held_out_rows`` every row of the data
    kept out of the searched corpus, so that others can be measured on exactly the same split.
    """

    k: int
    n_rows: int
    dim: int
    n_queries: int
    queries: str
    metric: str
    points: list[PlanPoint]
    recommended: PlanPoint | None
    constraint: dict[str, Any]
    seconds: float
    failures: dict[str, str] = field(default_factory=dict)
    evaluation_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64), repr=False)
    held_out_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64), repr=False)
    anchors: list[PlanPoint] = field(default_factory=list)

    @property
    def frontier(self) -> list[PlanPoint]:
        """The points on the frontier: codes alone first, then rescored, each by bytes."""
        return sorted(
            (p for p in self.points if p.on_frontier),
            key=lambda p: (p.rescore is not None, p.bytes_per_vector, -p.recall_at_k),
        )

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "k": self.k,
                "n_rows": self.n_rows,
                "dim": self.dim,
                "n_queries": self.n_queries,
                "queries": self.queries,
                "metric": self.metric,
                "constraint": self.constraint,
                "recommended": None if self.recommended is None else self.recommended.to_dict(),
                "frontier": [point.to_dict() for point in self.frontier],
                "points": [point.to_dict() for point in self.points],
                "anchors": [point.to_dict() for point in self.anchors],
                "failures": self.failures,
                "timings": {
                    "seconds": self.seconds,
                    "points": [point.timings() for point in self.points],
                    "anchors": [point.timings() for point in self.anchors],
                },
            }
        )


def _mark_frontier(points: list[PlanPoint]) -> list[PlanPoint]:
    """Flag the points no other point of the same regime beats on both bytes and recall (at equal bytes and
    recall, on fewer candidates rescored).

    Codes alone and rescoring are separate regimes: rescoring also reads full vectors from disk, so a
    rescored point does not make a codes-only point obsolete.
    """
    marked = []
    for point in points:
        dominated = any(
            (other.rescore is None) == (point.rescore is None)
            and other.bytes_per_vector <= point.bytes_per_vector
            and other.recall_at_k >= point.recall_at_k
            and _cost(other) < _cost(point)
            for other in points
        )
        marked.append(PlanPoint(**{**asdict(point), "on_frontier": not dominated}))
    return marked


def _cost(point: PlanPoint) -> tuple[int, float, int]:
    """The order in which points are preferred: fewer bytes, higher recall, fewer candidates rescored. Counted,
    never timed, so that the choice is the same on every run."""
    return point.bytes_per_vector, -point.recall_at_k, point.rescore or 0


def _recommend(points: list[PlanPoint], budget_bytes: int | None, target_recall: float | None) -> PlanPoint | None:
    if target_recall is not None:
        feasible = [p for p in points if p.recall_at_k >= target_recall]
        if budget_bytes is not None:
            feasible = [p for p in feasible if p.bytes_per_vector <= budget_bytes]
        if not feasible:
            nearest = max(points, key=lambda p: (p.recall_at_k, -p.bytes_per_vector))
            within = "" if budget_bytes is None else f" within {budget_bytes} bytes per vector"
            raise ConfigurationError(
                f"No configuration reaches recall@k {target_recall:g}{within}. The nearest is {nearest.codec} "
                f"at {nearest.bytes_per_vector} bytes per vector with recall {nearest.recall_at_k:.4f}; lower the "
                "target, raise --rescore-max or the budget."
            )
        return min(feasible, key=_cost)
    if budget_bytes is not None:
        feasible = [p for p in points if p.bytes_per_vector <= budget_bytes]
        if not feasible:
            smallest = min(points, key=lambda p: (p.bytes_per_vector, -p.recall_at_k))
            raise ConfigurationError(
                f"No configuration fits {budget_bytes} bytes per vector. The smallest is {smallest.codec} at "
                f"{smallest.bytes_per_vector} bytes with recall {smallest.recall_at_k:.4f}; raise the budget."
            )
        return min(feasible, key=lambda p: (-p.recall_at_k, p.bytes_per_vector, p.rescore or 0))
    return None


def _split_queries(
    rows: Rows, queries: Rows | None, n_queries: int, rng: np.random.RandomState
) -> tuple[Rows, Rows, Rows, str, np.ndarray, np.ndarray]:
    """(corpus, evaluation queries, learning queries, description, evaluation rows, held-out rows).

    Without queries, ``2 n_queries`` rows are held out of the corpus: half evaluate, half teach query-aware
    codecs. Given queries are split the same way, so no codec is scored on the queries it learnt from.
    """
    if queries is None:
        if rows.n < 4 * n_queries:
            n_queries = max(1, rows.n // 4)
        held = rng.choice(rows.n, 2 * n_queries, replace=False)
        keep = np.ones(rows.n, dtype=bool)
        keep[held] = False
        described = f"{n_queries} rows held out of the data"
        corpus, evaluate, learn = rows.take(keep), rows.take(held[:n_queries]), rows.take(held[n_queries:])
        return corpus, evaluate, learn, described, held[:n_queries], held
    none = np.empty(0, dtype=np.int64)
    if queries.n < 2:
        return rows, queries, queries, "1 given query (also used to fit leanvec-ood)", np.zeros(1, np.int64), none
    order = rng.permutation(queries.n)
    half = queries.n // 2
    evaluate = order[: min(half, n_queries)]
    described = f"{evaluate.size} of the given queries"
    return rows, queries.take(evaluate), queries.take(order[half:]), described, evaluate, none


def plan_compression(
    data: EmbeddingSet | object,
    queries: object | None = None,
    *,
    k: int = 10,
    budget_bytes: int | None = None,
    target_recall: float | None = None,
    rescore_max: int = 10,
    codecs: Sequence[str] | None = None,
    anchors: Sequence[str] = (),
    n_queries: int = 1000,
    metric: CompressMetric = "cosine",
    random_state: int | None = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> CompressionPlan:
    """Sweep codecs and rescoring multipliers on ``data`` and recommend a configuration.

    Parameters
    ----------
    data : EmbeddingSet or array-like of shape (n, d)
    queries : array-like of shape (m, d), optional
        Sample queries; by default ``2 n_queries`` rows are held out of ``data`` (half to evaluate, half
        for query-aware codecs). Given queries are split in halves the same way.
    k : int, default=10
        Neighbours per query; recall@k is measured against exact inner-product search (ties counted correct).
    budget_bytes : int, optional
        Recommend the highest recall within this many code bytes per vector.
    target_recall : float, optional
        Recommend the fewest bytes reaching this recall@k (within ``budget_bytes`` if both are given).
    rescore_max : int, default=10
        Largest rescoring multiplier M tried (shortlists of M x k); 0 measures codes alone.
    codecs : sequence of str, optional
        Codec specs to sweep (without ``rescore``); :func:`default_codecs` by default.
    anchors : sequence of str, default=()
        faiss ``index_factory`` strings (``"SQ8"``, ``"PQ48"``, ``"LSH"``...) measured on the same corpus and
        queries, codes alone, as reference points (:attr:`CompressionPlan.anchors`).
    n_queries : int, default=1000
    metric : {"cosine", "ip"}, default="cosine"
    random_state : int or None, default=0
    progress : ProgressReporter
        One step per codec.

    Raises
    ------
    ConfigurationError
        On bad parameters, or a constraint no configuration meets (the message names the nearest point).
    """
    started = time.perf_counter()
    if target_recall is not None:
        check_positive(target_recall, "target_recall", upper=1.0)
    if budget_bytes is not None:
        check_int(budget_bytes, "budget_bytes")
    check_int(rescore_max, "rescore_max", 0)
    n_queries = check_int(n_queries, "n_queries")
    rng = np.random.RandomState(random_state)
    check_choice(metric, "metric", CODEC_METRICS)
    rows = prepare(data.vectors if isinstance(data, EmbeddingSet) else data, metric, name="data")
    given = None if queries is None else prepare(queries, metric, name="queries", dim=rows.dim)
    corpus, evaluate, learn, described, evaluation_rows, held_out_rows = _split_queries(rows, given, n_queries, rng)
    factors = [m for m in RESCORE_FACTORS if m <= rescore_max]
    shortlist = min(corpus.n, k * max(factors, default=1))
    # Recall is counted on inner products of the prepared rows (cosine: the unit rows), as the codecs rank.
    truth = ExactSearcher(corpus, "ip").search(evaluate, check_int(k, "k", maximum=corpus.n, why="the searched rows"))
    specs = list(codecs) if codecs is not None else default_codecs(rows.dim, query_aware=given is not None)
    points: list[PlanPoint] = []
    failures: dict[str, str] = {}
    with progress.task("compression plan", len(specs)) as advance:
        for text in specs:
            spec = parse_spec(text)
            if spec.rescore is not None:
                raise ConfigurationError(f"'{text}': list codecs without rescore; rescore_max sets the multipliers.")
            try:
                measured = _measure(
                    spec.codes_spec, corpus, evaluate, learn, truth.distances, k, factors, shortlist, random_state
                )
                points += measured
                logger.info(
                    "compression plan: %s, %d B, recall@%d %.4f (codes alone) to %.4f (rescored), %.1f s to fit",
                    text,
                    measured[0].bytes_per_vector,
                    k,
                    measured[0].recall_at_k,
                    measured[-1].recall_at_k,
                    measured[0].encode_s,
                )
            except EmbedlabError as error:
                failures[text] = str(error)
                logger.info("compression plan: %s skipped (%s)", text, error)
            advance(1)
    if not points:
        raise ConfigurationError(f"No codec could be fitted on this data: {failures}")
    anchor_points = []
    for factory in anchors:
        try:
            anchor_points.append(_measure_faiss(factory, corpus, evaluate, truth.distances, k))
        except RuntimeError as error:  # faiss reports a bad factory string or an untrainable index this way
            failures[f"faiss:{factory}"] = str(error).strip().splitlines()[-1]
    points = _mark_frontier(points)
    recommended = _recommend(points, budget_bytes, target_recall)
    return CompressionPlan(
        k=k,
        n_rows=corpus.n,
        dim=rows.dim,
        n_queries=evaluate.n,
        queries=described,
        metric=metric,
        points=points,
        recommended=recommended,
        constraint={"budget_bytes": budget_bytes, "target_recall": target_recall, "rescore_max": rescore_max},
        seconds=time.perf_counter() - started,
        failures=failures,
        evaluation_rows=evaluation_rows,
        held_out_rows=held_out_rows,
        anchors=anchor_points,
    )


def _measure_faiss(factory: str, corpus: Rows, evaluate: Rows, true_distances: np.ndarray, k: int) -> PlanPoint:
    """The codes-alone point of one faiss ``index_factory`` string under inner product, named ``faiss:<factory>``."""
    started = time.perf_counter()
    index = faiss.index_factory(corpus.dim, factory, faiss.METRIC_INNER_PRODUCT)
    index.train(corpus.vectors)
    index.add(corpus.vectors)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    _, top = index.search(evaluate.vectors, k)  # -1 where faiss finds fewer than k rows
    query_ms = 1000 * (time.perf_counter() - started) / evaluate.n
    recall = recall_at_k(rerank(corpus.vectors, evaluate.vectors, top, "ip", k)[0], true_distances)
    return PlanPoint(f"faiss:{factory}", int(index.sa_code_size()), recall, None, query_ms, encode_s)


def _measure(
    spec: str,
    corpus: Rows,
    evaluate: Rows,
    learn: Rows,
    true_distances: np.ndarray,
    k: int,
    factors: list[int],
    shortlist: int,
    random_state: int | None,
) -> list[PlanPoint]:
    """The points of one codec: its codes alone, then each rescoring multiplier."""
    started = time.perf_counter()
    codec = Codec(spec, metric=corpus.metric, random_state=random_state).fit(corpus, queries=learn)
    codes = codec.encode(corpus)
    encode_s = time.perf_counter() - started
    searcher = CodecSearcher(codec, codes)

    def recall_of(candidates: np.ndarray) -> float:
        return recall_at_k(rerank(corpus.vectors, evaluate.vectors, candidates, "ip", k)[0], true_distances)

    started = time.perf_counter()
    top = searcher.search(evaluate, k).indices
    codes_ms = 1000 * (time.perf_counter() - started) / evaluate.n
    points = [PlanPoint(spec, codec.bytes_per_vector, recall_of(top), None, codes_ms, encode_s)]
    if not factors:
        return points
    started = time.perf_counter()
    candidates = searcher.search(evaluate, shortlist).indices
    shortlist_ms = 1000 * (time.perf_counter() - started) / evaluate.n
    for factor in factors:
        started = time.perf_counter()
        recall = recall_of(candidates[:, : min(factor * k, shortlist)])
        rescore_ms = 1000 * (time.perf_counter() - started) / evaluate.n
        points.append(
            PlanPoint(
                f"{spec}+rescore:{factor}", codec.bytes_per_vector, recall, factor, shortlist_ms + rescore_ms, encode_s
            )
        )
    return points
