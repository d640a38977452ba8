"""``plan_multivector``: how many candidates, which encoding and how much pooling a target recall of exact MaxSim
needs on the user's own documents and queries, with the bytes and the work each costs (counted, so that the same
inputs give the same plan) and the query time measured beside them."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from embedlab._checks import check_int, check_positive
from embedlab._json import json_safe, split_timings
from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.compress import CompressedCollection
from embedlab.exceptions import ConfigurationError
from embedlab.io.embedding_set import EmbeddingSet
from embedlab.io.multivector import MultiVectorSet
from embedlab.multivector._fde import MAX_FDE_DIM, MuveraEncoder, fde_dim
from embedlab.multivector._maxsim import maxsim_rerank, maxsim_search
from embedlab.multivector._pooling import pool_tokens
from embedlab.multivector._search import MultiVectorSearcher, encode_rows, token_candidates
from embedlab.neighbors import ExactSearcher, Searcher, recall_at_k

__all__ = ["DEFAULT_ENCODINGS", "MultiVectorPlan", "MultiVectorPlanPoint", "plan_multivector"]

logger = logging.getLogger(__name__)

#: (k_sim, d_proj, repetitions) swept by default: the paper's grid around its recommended settings.
DEFAULT_ENCODINGS: tuple[tuple[int, int, int], ...] = ((3, 16, 10), (4, 16, 20), (5, 16, 20), (5, 32, 20), (6, 16, 20))
#: Candidates reranked, per query.
DEFAULT_CANDIDATES = (10, 20, 50, 100, 200, 500, 1000)
#: The codec name of encodings searched as they are.
FLOAT32 = "float32"
#: Tokens each query token retrieves in the single-vector heuristic.
DEFAULT_PER_TOKEN = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class MultiVectorPlanPoint:
    """One measured configuration of the two-stage search.

    Attributes
    ----------
    method : {"muvera", "tokens", "single"}
        MUVERA encodings; the single-vector heuristic over token vectors; or the one vector per document the
        caller gave (``single_vectors``, e.g. mean-pooled embeddings).
    pool_factor : int
        Token pooling of the documents reranked (1: none).
    candidates : float
        Documents reranked per query (the mean union size for ``"tokens"``).
    maxsim_recall : float
        Recall@k of the exact MaxSim top-k over the unpooled documents (tie-aware).
    bytes_per_document : float
        float32 bytes stored per document: its encoding (or single vector) plus the token vectors reranked
        (the heuristic's token index is those tokens).
    multiply_adds : float
        Work per query, counted: the first stage's inner products (every document's encoding or single vector,
        or every token for ``"tokens"``) plus the MaxSim reranking of the candidates (query tokens x their
        tokens x dimension, at the mean token counts).
    query_ms : float
        Mean time per query of the whole pipeline (encoding, candidates, rerank), queries in one batch. Measured:
        :meth:`to_dict` leaves it out (the plan's ``timings`` block holds it) and nothing is chosen by it.
    k_sim, d_proj, repetitions, dim : int or None
        The encoding (``dim`` its dimension; the single vector's for ``"single"``).
    codec : str or None
        The codec spec the encodings were searched under (``"float32"``: as they are).
    per_token : int or None
        For ``"tokens"``: document tokens retrieved per query token.
    relevance_recall : float or None
        Share of queries whose relevant document is among the k found, when ``relevant`` was given.
    """

    method: str
    pool_factor: int
    candidates: float
    maxsim_recall: float
    bytes_per_document: float
    multiply_adds: float
    query_ms: float
    k_sim: int | None = None
    d_proj: int | None = None
    repetitions: int | None = None
    dim: int | None = None
    per_token: int | None = None
    relevance_recall: float | None = None
    codec: str | None = None

    def to_dict(self) -> dict:
        """What was computed; the measured ``query_ms`` is in the plan's ``timings`` block."""
        return split_timings([json_safe(asdict(self))], "query_ms")[0][0]


@dataclass(frozen=True)
class MultiVectorPlan:
    """The sweep, what reaches the target, and the recommendation.

    Attributes
    ----------
    k, target_recall : int, float
    points : tuple of MultiVectorPlanPoint
    recommended : MultiVectorPlanPoint or None
        Among the points reaching the target: the fewest bytes per document, then the fewest multiply-adds per
        query; None when no point reaches it.
    frontier : tuple of MultiVectorPlanPoint
        The points no other beats on recall, bytes and multiply-adds at once.
    candidates_needed : dict
        For each configuration (``"muvera k_sim=5 d_proj=16 R=20 pool=1"``, ``"tokens pool=1"``, ...), the
        fewest candidates swept that reach the target recall, or None.
    exact_query_ms : float
        Time per query of exact MaxSim over every document (the baseline the pipeline saves); measured, in the
        ``timings`` block of :meth:`to_dict` with each point's ``query_ms`` (in the order of ``points``).
    exact_relevance_recall : float or None
        Relevance recall of exact MaxSim itself, when ``relevant`` was given.
    n_documents, n_queries, n_tokens : int
    """

    k: int
    target_recall: float
    points: tuple[MultiVectorPlanPoint, ...]
    recommended: MultiVectorPlanPoint | None
    frontier: tuple[MultiVectorPlanPoint, ...]
    candidates_needed: dict[str, float | None]
    exact_query_ms: float
    exact_relevance_recall: float | None
    n_documents: int
    n_queries: int
    n_tokens: int
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        computed = ("points", "recommended", "frontier", "exact_query_ms")
        return json_safe(
            {
                **{k: v for k, v in asdict(self).items() if k not in computed},
                "points": [p.to_dict() for p in self.points],
                "recommended": None if self.recommended is None else self.recommended.to_dict(),
                "frontier": [p.to_dict() for p in self.frontier],
                "timings": {
                    "exact_query_ms": self.exact_query_ms,
                    "points": [{"query_ms": p.query_ms} for p in self.points],
                },
            }
        )


def _label(point: MultiVectorPlanPoint) -> str:
    if point.method == "muvera":
        codec = "" if point.codec in (None, FLOAT32) else f" codec={point.codec}"
        return f"muvera k_sim={point.k_sim} d_proj={point.d_proj} R={point.repetitions}{codec} pool={point.pool_factor}"
    return f"{point.method} pool={point.pool_factor}"


def _relevance(found: np.ndarray, relevant: np.ndarray | None, documents: MultiVectorSet) -> float | None:
    if relevant is None:
        return None
    ids = np.where(found >= 0, documents.ids[np.maximum(found, 0)], None)
    return float(np.mean([relevant[i] in set(ids[i].tolist()) for i in range(found.shape[0])]))


def _frontier(points: Sequence[MultiVectorPlanPoint]) -> tuple[MultiVectorPlanPoint, ...]:
    def beaten(p: MultiVectorPlanPoint) -> bool:
        return any(
            q.maxsim_recall >= p.maxsim_recall
            and q.bytes_per_document <= p.bytes_per_document
            and q.multiply_adds <= p.multiply_adds
            and (q.maxsim_recall, -q.bytes_per_document, -q.multiply_adds)
            != (p.maxsim_recall, -p.bytes_per_document, -p.multiply_adds)
            for q in points
        )

    return tuple(sorted((p for p in points if not beaten(p)), key=lambda p: p.bytes_per_document))


def _encoding_searcher(encoded: EmbeddingSet, codec: str, random_state: int) -> tuple[Searcher, float]:
    """A searcher of the encodings under ``codec``, and its bytes per document."""
    if codec == FLOAT32:
        return ExactSearcher(encoded.vectors, "ip"), 4.0 * encoded.dim
    collection = CompressedCollection.build(encoded, codec, metric="ip", random_state=random_state)
    return collection.searcher(), float(collection.codec.bytes_per_vector)


def plan_multivector(
    documents: MultiVectorSet,
    queries: MultiVectorSet,
    *,
    k: int = 10,
    target_recall: float = 0.9,
    encodings: Sequence[tuple[int, int, int]] = DEFAULT_ENCODINGS,
    pool_factors: Sequence[int] = (1, 2, 3, 4),
    candidates: Sequence[int] = DEFAULT_CANDIDATES,
    codecs: Sequence[str] = (FLOAT32,),
    per_token: Sequence[int] | None = DEFAULT_PER_TOKEN,
    single_vectors: tuple[EmbeddingSet, EmbeddingSet] | None = None,
    relevant: Sequence | np.ndarray | None = None,
    random_state: int = 0,
    progress: ProgressReporter = NULL_PROGRESS,
) -> MultiVectorPlan:
    """Measure the two-stage multi-vector search on the user's documents and queries and recommend a setting.

    The ground truth is exact MaxSim top-``k`` over the unpooled ``documents``. For every token pooling factor
    (Clavié et al. 2024) and MUVERA encoding (Dhulipala et al. 2024), the queries' encodings retrieve
    ``max(candidates)`` documents once by exact inner product; each candidate count's recall is then the
    recall of exact MaxSim reranking of its first candidates. The single-vector heuristic (each query token's
    nearest document tokens, the union of their documents) and, when given, one vector per document
    (``single_vectors``: documents and queries, e.g. mean-pooled embeddings) are measured beside them: the
    paper's claim is that MUVERA needs 2-5x fewer candidates than the heuristic at equal recall.

    Parameters
    ----------
    documents, queries : MultiVectorSet
    k : int, default=10
    target_recall : float, default=0.9
        Recall@k of exact MaxSim that the recommendation must reach.
    encodings : sequence of (k_sim, d_proj, repetitions)
    pool_factors : sequence of int
    candidates : sequence of int
        Candidate counts swept (each at least ``k``).
    codecs : sequence of str, default=("float32",)
        Codec specs of :mod:`embedlab.compress` the encodings are searched under (``"float32"``: as they are),
        e.g. ``"int8"`` or ``"pca:512+int8"``: fewer bytes per document for more candidates.
    per_token : sequence of int or None
        The heuristic's tokens per query token; None skips it.
    single_vectors : (EmbeddingSet, EmbeddingSet), optional
        One vector per document and per query (same rows and order as ``documents`` and ``queries``).
    relevant : sequence, optional
        The id of each query's relevant document: relevance recall is reported beside MaxSim recall.
    random_state : int, default=0
        Seeds the encodings and k-means pooling.
    progress : ProgressReporter, optional

    Returns
    -------
    MultiVectorPlan

    Raises
    ------
    ConfigurationError
        On ``k`` of at least the number of documents, an empty sweep, a target outside (0, 1], encodings
        over :data:`MAX_FDE_DIM`, or ``single_vectors`` / ``relevant`` that do not match the rows.
    """
    k = check_int(k, "k")
    target_recall = check_positive(target_recall, "target_recall")
    if target_recall > 1:
        raise ConfigurationError(f"target_recall must be in (0, 1], got {target_recall}.")
    if k >= len(documents):
        raise ConfigurationError(f"k={k} must be below the {len(documents):,} documents.")
    counts = sorted({min(check_int(c, "candidates"), len(documents)) for c in candidates if c >= k})
    if not counts:
        raise ConfigurationError(f"candidates must hold counts of at least k={k}.")
    for k_sim, d_proj, repetitions in encodings:
        if fde_dim(k_sim, repetitions, d_proj) > MAX_FDE_DIM:
            raise ConfigurationError(f"the encoding {(k_sim, d_proj, repetitions)} exceeds {MAX_FDE_DIM:,} dimensions.")
    relevant_ids = None if relevant is None else np.asarray(relevant, dtype=object)
    if relevant_ids is not None and relevant_ids.shape != (len(queries),):
        raise ConfigurationError(f"relevant must hold one document id per query ({len(queries)}).")
    if single_vectors is not None and (len(single_vectors[0]), len(single_vectors[1])) != (
        len(documents),
        len(queries),
    ):
        raise ConfigurationError("single_vectors must hold one vector per document and one per query.")

    began = time.perf_counter()
    truth = maxsim_search(queries, documents, k)
    exact_ms = 1000 * (time.perf_counter() - began) / len(queries)
    exact_relevance = _relevance(truth.indices, relevant_ids, documents)

    query_tokens = queries.n_tokens / len(queries)

    def reranking(candidates: float, reranked: MultiVectorSet) -> float:
        """Multiply-adds of MaxSim over ``candidates`` documents of ``reranked`` at its mean token count."""
        return candidates * query_tokens * (reranked.n_tokens / len(reranked)) * reranked.dim

    def measure(found: np.ndarray, seconds: float, **fields) -> MultiVectorPlanPoint:
        scored = maxsim_rerank(queries, documents, found, k)  # exact unpooled scores of what was found
        return MultiVectorPlanPoint(
            maxsim_recall=recall_at_k(scored.distances, truth.distances),
            query_ms=1000 * seconds / len(queries),
            relevance_recall=_relevance(found, relevant_ids, documents),
            **fields,
        )

    points: list[MultiVectorPlanPoint] = []
    steps = len(pool_factors) * (len(encodings) * len(codecs) + (per_token is not None)) + (single_vectors is not None)
    with progress.task("Planning multi-vector search", steps) as advance:
        for factor in pool_factors:
            pooled = pool_tokens(documents, factor, random_state=random_state)
            token_bytes = 4 * documents.dim * pooled.n_tokens / len(pooled)
            for k_sim, d_proj, repetitions in encodings:
                encoder = MuveraEncoder(k_sim, d_proj, repetitions, random_state=random_state).fit(pooled)
                encoded = encode_rows(encoder, pooled)
                for codec in codecs:
                    searcher, code_bytes = _encoding_searcher(encoded, codec, random_state)
                    search = MultiVectorSearcher(pooled, encoder, candidates=counts[-1], searcher=searcher)
                    started = time.perf_counter()
                    order = search.candidate_positions(queries)
                    first_stage = time.perf_counter() - started
                    for count in counts:
                        started = time.perf_counter()
                        found = maxsim_rerank(queries, pooled, order[:, :count], k).indices
                        seconds = first_stage * count / counts[-1] + time.perf_counter() - started
                        points.append(
                            measure(
                                found,
                                seconds,
                                method="muvera",
                                pool_factor=factor,
                                candidates=float(count),
                                bytes_per_document=code_bytes + token_bytes,
                                multiply_adds=len(pooled) * encoder.n_features_out_ + reranking(count, pooled),
                                k_sim=k_sim,
                                d_proj=d_proj,
                                repetitions=repetitions,
                                dim=encoder.n_features_out_,
                                codec=codec,
                            )
                        )
                    advance(1)
            if per_token is not None:
                index = ExactSearcher(pooled.vectors, "ip")
                for n in per_token:
                    started = time.perf_counter()
                    pool = token_candidates(pooled, queries, n, searcher=index)
                    found = maxsim_rerank(queries, pooled, pool, k).indices
                    seconds = time.perf_counter() - started
                    union = float((pool >= 0).sum(axis=1).mean())
                    points.append(
                        measure(
                            found,
                            seconds,
                            method="tokens",
                            pool_factor=factor,
                            candidates=union,
                            bytes_per_document=token_bytes,
                            multiply_adds=query_tokens * pooled.n_tokens * pooled.dim + reranking(union, pooled),
                            per_token=n,
                        )
                    )
                advance(1)
        if single_vectors is not None:
            doc_vectors, query_vectors = single_vectors
            unpooled_bytes = 4 * documents.dim * documents.n_tokens / len(documents)
            index = ExactSearcher(doc_vectors.vectors, "cosine")
            for count in counts:
                started = time.perf_counter()
                pool = index.search(query_vectors.vectors, count).indices
                found = maxsim_rerank(queries, documents, pool, k).indices
                points.append(
                    measure(
                        found,
                        time.perf_counter() - started,
                        method="single",
                        pool_factor=1,
                        candidates=float(count),
                        bytes_per_document=4 * doc_vectors.dim + unpooled_bytes,
                        multiply_adds=len(documents) * doc_vectors.dim + reranking(count, documents),
                        dim=doc_vectors.dim,
                    )
                )
            advance(1)

    needed: dict[str, float | None] = {}
    for point in points:
        label = _label(point)
        if point.maxsim_recall >= target_recall:
            best = needed.get(label)
            needed[label] = point.candidates if best is None else min(best, point.candidates)
        else:
            needed.setdefault(label, None)
    reaching = [p for p in points if p.maxsim_recall >= target_recall]
    recommended = min(reaching, key=lambda p: (p.bytes_per_document, p.multiply_adds)) if reaching else None
    logger.info("planned %d configurations; recommended %s", len(points), recommended)
    return MultiVectorPlan(
        k=k,
        target_recall=target_recall,
        points=tuple(points),
        recommended=recommended,
        frontier=_frontier(points),
        candidates_needed=needed,
        exact_query_ms=exact_ms,
        exact_relevance_recall=exact_relevance,
        n_documents=len(documents),
        n_queries=len(queries),
        n_tokens=documents.n_tokens,
        settings={
            "encodings": [list(e) for e in encodings],
            "pool_factors": list(pool_factors),
            "candidates": counts,
            "codecs": list(codecs),
        },
    )
